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


def test_guards_max_connections_bounds_the_connections_granian_holds() -> None:
    """granian's front holds at most guards.max_connections connections (the RSGI app bounds
    the requests on them by guards.max_concurrency: test_rsgi_app); a bound fitted to the
    machine's open-file limit replaces the field's."""
    bounded = _resolved(SPEC + "guards: {max_connections: 32, max_concurrency: 8}\n")
    config = granian_config(bounded, host="127.0.0.1", port=8080, target="m:app",
                            log_level="info")
    assert config.max_connections == 32 and config.log_level == "warning"
    default = granian_config(_resolved(SPEC), host="127.0.0.1", port=8080,
                             target="m:app", log_level="debug")
    assert default.max_connections == 1024 and default.log_level == "debug"
    fitted = granian_config(_resolved(SPEC), host="127.0.0.1", port=8080, target="m:app",
                            log_level="info", max_connections=200)
    assert fitted.max_connections == 200
