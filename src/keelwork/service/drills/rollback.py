"""The rollback drill: on a scratch copy, a copy of the champion is deployed as a canary (a
new version of the same model, half the traffic), the service is put under steady load, the
canary is rolled back (``keel rollout abort``'s path: the store, from another process), and
the drill reports the failed requests (must be 0) and how long after the rollback the canary
still answered (must be under a second).

A request counts by when it was *sent*: one sent before the rollback may rightly be answered
by the canary however late its answer comes; every request sent a second after it must be
answered by the champion.

A refusal by a guard or the contract (403, 422 or 429 naming a rule, such as
``out_of_distribution`` refusing the rarest reference rows by design) is the service working,
not a failed request: refusals are counted apart (``facts.refused``, by rule). Transport
errors, 5xx and any other 4xx are failures. An answer that names no version (most refusals)
says nothing about which version serves and is left out of the versions seen.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import DrillUnavailable
from keelwork.service.check_item import CheckItem
from keelwork.service.drills.live import (
    Answer,
    Load,
    drill_rows,
    log_tail,
    start_server,
    stop_server,
)
from keelwork.service.drills.scratch import scratch_project
from keelwork.spec.model import ResolvedSpec

if TYPE_CHECKING:
    from keelwork.service.rollout.operations import RolloutOps

NAME = "rollback_drill"
#: Longest a rolled-back canary may still answer requests sent after the rollback.
VISIBLE_S = 1.0
#: How long the load runs on after the rollback (past VISIBLE_S, to see who answers then).
AFTER_S = 1.5
#: The statuses of a refusal by a guard or the contract (when the answer names a rule).
REFUSAL_STATUSES = frozenset({403, 422, 429})


def rollback_drill(resolved: ResolvedSpec, store_url: str, *,
                   timeout_s: float = 60.0) -> CheckItem:
    """Run the drill on the first model of keel.yaml (see the module's docstring).

    Args:
        resolved: The user's keel.yaml (never modified).
        store_url: The user's store (only read: copied into the scratch store).
        timeout_s: Bound on the server's start and on each wait for traffic.

    Returns:
        pass, fail with the facts, or not_checked with the reason.
    """
    try:
        rows = drill_rows(resolved)
        model = resolved.spec.models[0]
        with scratch_project(resolved, store_url) as scratch:
            proc, base = start_server(scratch, timeout_s)
            try:
                item = _drill(scratch.root, scratch.url, model.name, model.allow_unsafe_pickle,
                              base, rows, timeout_s)
            finally:
                stop_server(proc)
            if item.status == "fail":  # the scratch directory goes: keep what the server said
                item.facts["server_log_tail"] = log_tail(scratch.root / "server.log")
            return item
    except DrillUnavailable as exc:
        return CheckItem(NAME, "not_checked", exc.message, "see docs/check.md")


def _drill(root: Path, url: str, name: str, unsafe: bool, base: str,
           rows: list[dict[str, Any]], timeout_s: float) -> CheckItem:
    from keelwork.service.registration import register_model
    from keelwork.service.rollout.operations import open_rollout_ops
    from keelwork.spec.model import RolloutSection

    ops = open_rollout_ops(root, url, user="keel-check")
    try:
        champion = ops.registry.resolve(name)
        blob = ops.registry.artifact_path(champion)
        artifact = blob if blob is not None else champion.artifact_uri.removeprefix("python:")
        canary = register_model(ops.registry, name, artifact, champion.runtime,
                                allow_unsafe_pickle=unsafe, verify=False,
                                options=dict(champion.options), created_by="keel-check").version
        # Half the traffic, and no step of its own before the rollback.
        ops.start(name, canary, RolloutSection(steps=[50, 100], interval="1d",
                                               min_requests=10**9), actor="keel-check")
        with Load(base, name, rows) as load:
            if not load.wait_for(lambda seen: any(a.version == str(canary) for a in seen[-200:]),
                                 timeout_s):
                raise DrillUnavailable(f"the canary (version {canary}) never answered in "
                                       f"{timeout_s:.0f} s")
            time.sleep(0.5)
            rolled_at = time.monotonic()
            roll_back(ops, name)
            time.sleep(AFTER_S)
        return verdict(load.snapshot(), rolled_at, str(canary), str(champion.version))
    finally:
        ops.close()


def roll_back(ops: RolloutOps, name: str) -> None:
    """Roll the canary back as ``keel rollout abort`` does."""
    ops.act(name, "abort", actor="keel-check", reason="keel check: rollback drill")


def refused(answer: Answer) -> bool:
    """Whether ``answer`` is a refusal by a guard or the contract (see the module's
    docstring): 403, 422 or 429 naming a rule of its own (not the generic ``error``)."""
    return answer.status in REFUSAL_STATUSES and answer.rule not in ("", "error")


def verdict(seen: list[Answer], rolled_at: float, canary: str, champion: str) -> CheckItem:
    """The drill's result from every request it sent (``rolled_at``: when the rollback was
    made, on the same monotonic clock as :attr:`Answer.sent`)."""
    refusals = [a for a in seen if refused(a)]
    failed = [a for a in seen if not 200 <= a.status < 300 and not refused(a)]
    late = max((a.sent - rolled_at for a in seen if a.version == canary and a.sent > rolled_at),
               default=0.0)
    later = [a for a in seen if a.sent > rolled_at + VISIBLE_S]
    after = sorted({a.version for a in later if a.version})
    statuses = Counter(str(a.status) for a in failed)  # "0": no answer at all
    facts: dict[str, Any] = {
        "requests": len(seen), "failed": len(failed), "failed_by_status": dict(statuses),
        "refused": len(refusals), "refused_by_rule": dict(Counter(a.rule for a in refusals)),
        "canary": canary, "champion": champion,
        "canary_last_answer_after_rollback_ms": round(late * 1000),
        "versions_answering_after_1s": after}
    problems = []
    if failed:
        problems.append(f"{len(failed)} of {len(seen)} requests failed")
    if late >= VISIBLE_S:
        problems.append(f"the canary still answered a request sent {late:.2f} s after the "
                        "rollback")
    if after and after != [champion]:
        problems.append(f"versions {', '.join(after)} answered a second after the rollback")
    if later and not any(200 <= a.status < 300 for a in later):
        problems.append("no request sent a second after the rollback was answered: nothing "
                        "shows the champion serving")
    if problems:
        return CheckItem(NAME, "fail", "; ".join(problems), "keel check --json: facts has the "
                         "failed requests by status and the end of the server's log; "
                         "see docs/rollouts.md", facts)
    kept = (f" ({len(refusals)} refused by a guard or the contract)"
            if refusals else "")
    return CheckItem(NAME, "pass", f"{len(seen)} requests, none failed{kept}; the canary's "
                     f"last answer was to a request sent {late * 1000:.0f} ms after the "
                     "rollback", facts=facts)


__all__ = ["NAME", "REFUSAL_STATUSES", "refused", "roll_back", "rollback_drill", "verdict"]
