"""A flag or an alias changed while `keel serve --workers 2` runs (or `--engine ray` with two
replicas on PostgreSQL, or `--engine granian`: its fast port's worker and keelwork's app beside
it, asked in turn) reaches both within 1 s of its commit: from then on every answer, on
fresh connections spread over the two processes, comes from the version the change names. Each
change is made in this process through the public use-cases (``put_flags``, ``delete_flag``,
the registry's ``set_alias``), and the clock starts when the call starts: before the commit, not
after a CLI's start-up, so the time measured is an upper bound of the propagation."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from fleet import alive, stop
from journey import keel
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.service.flag_admin import delete_flag, put_flags
from keelwork.spec.settings import load_settings
from live_server import (
    ADDER_SPEC,
    FIXTURES,
    engine_spec,
    start_fast_engine,
    start_server,
    stop_server,
)

#: Answers in a row, each on a new connection, that must all come from the new version.
IN_A_ROW = 24
#: The bound the issue sets, from the commit to the last worker serving the change.
WITHIN_S = 1.0


def _version(base: str) -> int:
    with httpx.Client(base_url=base, timeout=10) as c:  # a new connection: any worker
        r = c.post("/v1/models/adder:predict", json={"instances": [{"a": 1, "b": 2}]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [3.0]
    return int(r.json()["model_version"])


def _settled(bases: list[str], version: int, since: float, limit_s: float = 15.0) -> float:
    """Seconds from ``since`` until the first of IN_A_ROW answers in a row from ``version``
    (asking each of ``bases`` in turn)."""
    first: float | None = None
    row = asked = 0
    while row < IN_A_ROW:
        at = time.monotonic()
        assert at - since < limit_s, f"version {version} not served everywhere in {limit_s} s"
        asked += 1
        if _version(bases[asked % len(bases)]) == version:
            first = at if row == 0 else first
            row += 1
        else:
            row = 0
    assert first is not None
    return first - since


@pytest.mark.parametrize("engine", ["workers", pytest.param("ray", marks=pytest.mark.postgres),
                                    "granian"])
def test_flag_and_alias_changes_reach_both_workers_within_a_second(
        tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    url: str | None = None
    if engine == "ray":
        pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install "
                            "'keelwork[ray]'")
        url = request.getfixturevalue("pg_database")
    if engine == "granian":
        pytest.importorskip("granian", reason="granian is not installed: pip install "
                            "'keelwork[granian]'")
    (tmp_path / "keel.yaml").write_text(engine_spec(ADDER_SPEC.format(fx=FIXTURES), engine, url))
    if engine == "granian":
        proc, base, app = start_fast_engine(tmp_path, engine)
        bases = [base, app]
    else:
        proc, base = start_server(tmp_path, engine)
        bases = [base]
    try:
        # version 2 of the same function, registered while the workers serve version 1
        keel(tmp_path, "models", "register", "adder", "fakes:total", "--runtime", "python",
             "--options", f'{{"path": "{FIXTURES}"}}')
        assert {_version(bases[i % len(bases)]) for i in range(IN_A_ROW)} == {1}
        settings = load_settings().model_copy(update={"storage_url": None})
        took: dict[str, float] = {}

        flag = tmp_path / "all-v2.yaml"
        flag.write_text("name: all-v2\nmodel: adder\nrules: [{percentage: 100, serve: \"2\"}]\n")
        started = time.monotonic()
        put_flags(tmp_path, flag, by="ops", settings=settings)
        took["flag put"] = _settled(bases, 2, started)
        started = time.monotonic()
        delete_flag(tmp_path, "all-v2", by="ops", settings=settings)
        took["flag deleted"] = _settled(bases, 1, started)

        with open_registry(tmp_path, url) as registry:
            started = time.monotonic()
            registry.set_alias("adder", 2, "champion", actor="ops", reason="propagation test")
            took["alias moved"] = _settled(bases, 2, started)
        print(took)
        assert all(s < WITHIN_S for s in took.values()), took
        assert alive(proc.pid)
    finally:
        if engine == "granian":
            stop(proc, timeout=60)
        else:
            stop_server(proc, engine)
