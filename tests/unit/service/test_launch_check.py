"""``keelwork.service.launch_check``: the ``reference`` item on a project never served (its
store has no monitoring tables yet) fails naming the command that stores one, and passes once
one is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.monitor_store import MonitorStore
from keelwork.service.launch_check import run_checks
from keelwork.spec import load_spec
from keelwork.spec.settings import Settings

SPEC = """\
service: {name: chk, owners: [t@example.com], on_call: {contact: "oncall@example.com"}}
models:
  - {name: adder, runtime: python, artifact: "fakes:total"}
  - {name: other, runtime: python, artifact: "fakes:total"}
contract:
  inputs: [{name: a, type: float}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    (tmp_path / "keel.yaml").write_text(SPEC)
    return tmp_path


def _reference_item(project: Path) -> dict[str, object]:
    items = run_checks(load_spec(project / "keel.yaml"), Settings(), drills=False,
                       notify=False)
    [item] = [i.as_dict() for i in items if i.name == "reference"]
    return item


def test_a_project_never_served_has_no_reference_and_is_told_how_to_store_one(
        project: Path) -> None:
    assert not (project / ".keel" / "keel.db").exists()
    item = _reference_item(project)
    assert item["status"] == "fail", item
    assert item["detail"] == ("no monitoring reference stored for adder, other: drift and "
                              "quality have nothing to compare with")
    assert item["fix"] == ("keel monitor reference --model adder ; "
                           "keel monitor reference --model other")


def test_a_stored_reference_passes_and_only_the_missing_model_is_named(project: Path) -> None:
    resolved = load_spec(project / "keel.yaml")
    engine = make_engine(resolved.storage_url)
    store = MonitorStore(engine)
    store.ensure_schema()
    store.put_reference("adder", 1, "reference.csv", {"columns": {}})
    item = _reference_item(project)
    assert item["status"] == "fail" and item["fix"] == "keel monitor reference --model other"
    store.put_reference("other", 1, "reference.csv", {"columns": {}})
    engine.dispose()
    assert _reference_item(project)["status"] == "pass"
