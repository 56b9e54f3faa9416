"""Admin flag routes: validation with field paths, effective at once, audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.core.flags import FlagContext
from keelwork.interfaces.http.flag_routes import flag_router
from keelwork.service.flags.source import FlagSource


class ListAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    def append(self, *, actor: str, action: str, target: str, details: Any = None) -> None:
        self.entries.append((actor, action, target))


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[TestClient, FlagSource, ListAudit]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    audit = ListAudit()
    store = FlagStore(engine, audit)
    store.ensure_schema()
    source = FlagSource([], store)
    source.reload()
    app = FastAPI()
    app.include_router(flag_router(source, store, ["sentiment"]))
    with TestClient(app) as client:
        yield client, source, audit
    engine.dispose()


def test_put_takes_effect_before_the_answer_and_delete_reverts(
        parts: tuple[TestClient, FlagSource, ListAudit]) -> None:
    client, source, audit = parts
    r = client.put("/v1/admin/flags/eu", json={"model": "sentiment", "rules": [
        {"headers": {"X-Region": ["eu"]}, "serve": "challenger"}]})
    assert r.status_code == 200, r.text
    chosen = source.current.choose("sentiment", FlagContext(None, {"x-region": "eu"}))
    assert chosen is not None and chosen.ref == "challenger"
    listed = client.get("/v1/admin/flags").json()
    assert [f["name"] for f in listed["flags"]] == ["eu"] and listed["broken"] == []
    assert client.delete("/v1/admin/flags/eu").status_code == 204
    assert source.current.choose("sentiment", FlagContext(None, {"x-region": "eu"})) is None
    assert client.delete("/v1/admin/flags/eu").status_code == 404
    assert audit.entries == [("admin-api", "flag.put", "eu"), ("admin-api", "flag.delete", "eu")]


@pytest.mark.parametrize(("body", "path"), [
    ({"model": "sentiment", "rules": [{"serve": "2"}]}, "rules.0"),
    ({"model": "sentiment", "rules": [{"percentage": 150, "serve": "2"}]},
     "rules.0.percentage"),
    ({"model": "other", "rules": []}, "model"),
    ({"name": "not-eu", "model": "sentiment"}, "name"),
    ({"model": "sentiment", "colour": "red"}, "colour"),
])
def test_bad_flags_get_422_naming_the_field(parts: tuple[TestClient, FlagSource, ListAudit],
                                            body: dict[str, Any], path: str) -> None:
    client, source, audit = parts
    r = client.put("/v1/admin/flags/eu", json=body)
    assert r.status_code == 422, r.text
    assert path in [d["path"] for d in r.json()["details"]]
    assert audit.entries == [] and source.current.flags == []


def test_not_json_is_400(parts: tuple[TestClient, FlagSource, ListAudit]) -> None:
    client, _, _ = parts
    assert client.put("/v1/admin/flags/eu", content=b"{").status_code == 400
