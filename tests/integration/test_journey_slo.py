"""Journey: a fresh ``keel init`` project gets SLOs, and their rules pass the real promtool.

keel init -> add slos to keel.yaml -> keel spec validate -> keel slo rules --out -> promtool
check rules + test rules -> keel runbook (every alert's runbook_url is a file) -> keel slo
export --format openslo.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from journey import keel, set_section
from prom import run, tool


@pytest.mark.slow
def test_slos_from_init_to_promtool(tmp_path: Path) -> None:
    promtool = tool("promtool")
    keel(tmp_path, "init", "proj")
    project = tmp_path / "proj"
    spec = project / "keel.yaml"
    spec.write_text(set_section(spec.read_text(), "slos",
                                "slos:\n  availability: 0.999\n  latency_p99_ms: 250\n"))
    keel(project, "spec", "validate")

    bad = set_section(spec.read_text(), "slos", "slos:\n  latency_p99_ms: 300\n")
    spec.with_name("bad.yaml").write_text(bad)
    refused = keel(project, "spec", "validate", "bad.yaml", check=False)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "slos.latency_p99_ms (line" in said
    assert "nearest are 250 and 500 (ms)" in said

    keel(project, "slo", "rules", "--out", "rules")
    out = project / "rules"
    assert "SUCCESS" in run(promtool, "check", "rules", "availability.rules.yml",
                            "latency_p99.rules.yml", cwd=out)
    for test in ("availability.test.yml", "latency_p99.test.yml"):  # the 30-day window
        assert "SUCCESS" in run(promtool, "test", "rules", test, cwd=out)

    keel(project, "runbook")
    links = set(re.findall(r"runbook_url: (\S+)", (out / "availability.rules.yml").read_text()))
    assert len(links) == 4 and all((project / link).is_file() for link in links)
    text = (project / "runbooks" / "KeelworkAvailabilityBurnFast.md").read_text()
    assert "keel log tail --model sentiment --status error" in text

    keel(project, "slo", "export", "--format", "openslo", "--out", "openslo.yaml")
    assert "kind: SLO" in (project / "openslo.yaml").read_text()
