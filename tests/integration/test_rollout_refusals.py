"""``keel rollout`` as an operator types it: a refused command changes nothing, and a retry is
judged like a start (the challenger's declared tests, the champion now)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from journey import keel
from rollout_project import make_project, open_project, register

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The rollout project with versions 1 (champion), 2 and 3, and a tests file for
    ``scorer`` that was never run (every challenger is gated)."""
    spec = make_project(tmp_path, interval="1h")
    marker = '    artifact: "faulty_models:good"\n'
    spec.write_text(spec.read_text().replace(marker, marker + "    tests: t.yaml\n", 1))
    (tmp_path / "t.yaml").write_text(
        "kind: keel-tests\nversion: 1\ntests:\n  - name: one\n    kind: minimum\n"
        "    cases: [{input: {a: 1.0, b: 1}, min_score: 0}]\n")
    service = open_project(spec)
    try:
        assert [register(service, "good_twin") for _ in range(2)] == [2, 3]
        service.registry.set_alias("scorer", 1, "champion")
    finally:
        asyncio.run(service.close())
    return tmp_path


def _champion(project: Path) -> int:
    shown = json.loads(keel(project, "models", "show", "scorer@champion", "--json").stdout)
    return int(shown["version"])


def _refused(project: Path, *args: str) -> str:
    done = keel(project, *args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return " ".join(done.stderr.split())


def _rollout(project: Path, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(keel(project, "rollout", *args, "--json").stdout)
    return out


def test_a_refused_start_changes_nothing(project: Path) -> None:
    """``keel rollout start --from 3`` refused for its --interval, or because a rollout
    was active, had already moved the champion alias to 3 (served to everyone)."""
    why = _refused(project, "rollout", "start", "scorer", "--to", "2", "--from", "3",
                   "--interval", "soon", "--skip-tests")
    assert "positive duration" in why and _champion(project) == 1
    _rollout(project, "start", "scorer", "--to", "2", "--skip-tests")
    why = _refused(project, "rollout", "start", "scorer", "--to", "2", "--from", "3",
                   "--skip-tests")
    assert "already has an active rollout" in why and _champion(project) == 1
    assert _rollout(project, "abort", "scorer")["rollout"]["phase"] == "aborted"
    assert _champion(project) == 1


def test_a_retry_is_gated_on_tests_and_runs_against_the_champion_now(project: Path) -> None:
    """``keel rollout retry`` skipped the tests gate a start applies; it also kept the
    champion stored at the start although the alias had been moved since the abort."""
    _rollout(project, "start", "scorer", "--to", "2", "--skip-tests")
    _rollout(project, "abort", "scorer")
    why = _refused(project, "rollout", "retry", "scorer")
    assert "Cannot retry the rollout of version 2 of 'scorer'" in why
    assert "--skip-tests" in why
    assert _rollout(project, "status", "scorer")["rollout"]["phase"] == "aborted"

    keel(project, "models", "alias", "scorer", "3", "champion")
    retried = _rollout(project, "retry", "scorer", "--skip-tests", "--reason", "hotfix")
    assert retried["rollout"]["phase"] == "progressing"
    assert (retried["rollout"]["champion"], retried["rollout"]["challenger"]) == (3, 2)
    reason = retried["events"][-1]["reason"]
    assert reason.startswith("hotfix; tests skipped (--skip-tests): ")
    assert "champion now version 3 (the rollout had 1)" in reason
    assert _champion(project) == 3
    audit = json.loads(keel(project, "audit", "show", "--action", "rollout.retry",
                            "--json").stdout)
    entries = audit["entries"] if isinstance(audit, dict) else audit
    assert len(entries) == 1 and "tests skipped" in entries[0]["details"]["reason"]
