"""The granian engine's configuration from keel.yaml."""

from __future__ import annotations

from pathlib import Path

from keelwork.service.granian_serving import granian_config
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import ResolvedSpec

SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y"}
contract:
  inputs: [{name: a, type: float}]
"""


def _resolved(text: str) -> ResolvedSpec:
    return ResolvedSpec(spec=parse_spec(text, env={}), path=Path("keel.yaml"),
                        project_dir=Path("."))


def test_guards_max_concurrency_bounds_the_requests_granian_takes_at_once() -> None:
    bounded = _resolved(SPEC + "guards: {max_concurrency: 32}\n")
    config = granian_config(bounded, host="127.0.0.1", port=8080, target="m:app",
                            log_level="info")
    assert config.max_in_flight == 32 and config.log_level == "warning"
    default = granian_config(_resolved(SPEC), host="127.0.0.1", port=8080,
                             target="m:app", log_level="debug")
    assert default.max_in_flight == 256 and default.log_level == "debug"
