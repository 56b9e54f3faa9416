"""`keel serve --engine ray` (its default, named here: `--version-deployments`) on a PostgreSQL
store: each model version is served by a Serve deployment of its own, batched by Ray's
`@serve.batch`.

Two gateway replicas serve (keel.yaml's `server.replicas.min: 2`), and each version deployment
runs two replicas too, as Serve's own status has them (keel serve logs it); the predictions are
answered by the version deployment (the `slow` model leaves a mark naming its process: neither
gateway replica's), one deployment per version whichever replicas use it (the store records
both replicas' uses of each); ray #42593 in the version deployment: eight requests batched with
one that makes the model raise are answered, the poisoned one fails alone; a version replica
SIGKILLed while it holds calls loses no request (each it held is sent again to another
replica, or answered 503 with Retry-After); the CPU the model
used there is in the gateway's /metrics; a version registered and promoted while serving gets a
deployment of its own and answers; a gateway replica SIGKILLed while its requests wait on a
version deployment: those requests are answered 503 with Retry-After, the rest 200; every
acknowledged prediction is in the log exactly once; SIGTERM stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from fleet import (
    HEADER,
    MARKED_MODELS,
    MARKS_VARIABLE,
    alive,
    load,
    logged,
    poisoned_batch,
    replica_pid,
    stop,
    tracebacks,
)
from journey import keel
from keelwork.adapters.engines.ray_versions import REGISTERED
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.registry_store import open_registry
from live_server import ADDER_SPEC, FIXTURES, free_port

pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install 'keelwork[ray]'")

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]


def _poisoned_batch(base: str, marks: Path) -> list[str]:
    """Eight good requests and a poisoned one, batched together by the version deployment:
    eight 200, one 500 of its own; a client that gives up mid-batch breaks nothing. Returns
    the acknowledged prediction ids."""
    acked, bad = poisoned_batch(base, marks)
    assert "poison" in bad.text, bad.text
    return acked


def _model_cpu(base: str, model: str) -> float:
    body = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(body)
               for sample in family.samples
               if sample.name == "keelwork_model_cpu_seconds_total"
               and sample.labels.get("model") == model)


def _uses(db: object) -> dict[str, set[str]]:
    with db.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(text("select app, replica from version_uses")).all()
    out: dict[str, set[str]] = {}
    for app, replica in rows:
        out.setdefault(str(app), set()).add(str(replica))
    return out


def _processes(title: str) -> list[int]:
    """The pids whose command line (Ray's process title) holds ``title``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def _kill_a_version_replica_mid_call(base: str, marks: Path, app: str) -> list[str]:
    """One of the `slow` version deployment's two replicas is SIGKILLed while it holds calls
    (the model marks each call with its pid and takes 0.5 s): each request it held is sent
    again and answered by another replica, or answered 503 with Retry-After; never a 500 or a
    dropped connection. Returns the acknowledged ids."""
    replicas = set(_processes(f"ServeReplica:{app}:"))
    assert len(replicas) == 2, replicas
    for mark in marks.iterdir():
        mark.unlink()

    def holders() -> set[int]:
        return {int(m.name.split("-")[0]) for m in marks.iterdir()} & replicas

    with ThreadPoolExecutor(6) as pool:
        sent = [pool.submit(httpx.post, f"{base}/v1/models/slow:predict",
                            json={"instances": [{"a": 1, "b": b}]}, timeout=60)
                for b in range(6)]
        deadline = time.monotonic() + 10
        while not holders():
            assert time.monotonic() < deadline, "no call reached a version replica"
            time.sleep(0.01)
        victim = sorted(holders())[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic_ns()
        answers = [f.result() for f in sent]
    assert not alive(victim)
    refused = [a for a in answers if a.status_code == 503]
    assert all(a.status_code == 200 for a in answers if a not in refused), \
        [a.text for a in answers]
    for r in refused:
        assert r.headers.get("retry-after") and "lost during the call" in r.json()["error"], \
            r.text
    # The calls the victim held ran again elsewhere (marks after the kill, by another pid).
    again = {int(m.name.split("-")[0]) for m in marks.iterdir()
             if int(m.name.split("-")[1]) > killed_at}
    assert len(answers) > len(refused) and again and victim not in again, (again, victim)
    print(f"version replica killed mid-call: {len(answers) - len(refused)} answered, "
          f"{len(refused)} 503")
    return [i for a in answers if a.status_code == 200 for i in a.json()["prediction_ids"]]


def _kill_a_gateway_replica_mid_call(base: str, marks: Path, victim: int) -> list[str]:
    """A gateway replica SIGKILLed while its requests wait on the `slow` version's deployment
    (the model running: its marks say so): each such request is answered 503 with Retry-After
    by the ingress (keelwork's error, rule `replica_lost`), the others 200; never a 500 or a
    dropped connection. Sixteen requests over two gateway replicas, all of them past the
    ingress before the kill (the first reached the model 0.2 s before). Ray's router may have
    sent none to the victim (the kill then proves nothing): then the other replica, which
    answered, is the next victim, three tries at most. Returns the acknowledged ids."""
    acked: list[str] = []
    for _ in range(3):
        for mark in marks.iterdir():
            mark.unlink()
        with ThreadPoolExecutor(16) as pool:
            sent = [pool.submit(httpx.post, f"{base}/v1/models/slow:predict",
                                json={"instances": [{"a": 1, "b": b}]}, timeout=60)
                    for b in range(16)]
            deadline = time.monotonic() + 30
            while not list(marks.iterdir()):
                assert time.monotonic() < deadline, "no call reached the version deployment"
                time.sleep(0.01)
            time.sleep(0.2)  # the model's first call takes 0.5 s; the rest wait meanwhile
            os.kill(victim, signal.SIGKILL)
            answers = [f.result() for f in sent]
        assert not alive(victim)
        lost = [a for a in answers if a.status_code != 200]
        for r in lost:
            assert r.status_code == 503 and r.headers.get("retry-after") == "1" \
                and r.json()["details"][0]["rule"] == "replica_lost", r.text
        acked += [i for a in answers if a.status_code == 200 for i in a.json()["prediction_ids"]]
        print(f"gateway replica killed mid-call: {len(answers) - len(lost)} answered, "
              f"{len(lost)} 503")
        if lost:
            return acked
        victim = replica_pid(answers[0].headers[HEADER])  # every one answered by the other
    pytest.fail("no request was in flight on the killed gateway replica in 3 tries")


def test_one_deployment_per_version_batched_by_serve(tmp_path: Path, pg_database: str) -> None:
    spec = ADDER_SPEC.replace("contract:", MARKED_MODELS).format(fx=FIXTURES)
    (tmp_path / "keel.yaml").write_text(spec + f"storage: {{url: '{pg_database}'}}\n"
                                        "server: {replicas: {min: 2}}\n")
    db = make_engine(pg_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    marks = tmp_path / "marks"
    marks.mkdir()
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(tmp_path / "keel.yaml"), "--engine", "ray", "--version-deployments",
             "--port", str(port), "--no-access-log"],
            stdout=err, stderr=err, env={**os.environ, MARKS_VARIABLE: str(marks)})
    tags: set[str] = set()
    started = time.monotonic()
    try:
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() - started < 150, "not ready in 150 s"
            try:
                ready = httpx.get(f"{base}/v2/health/ready", timeout=2)
            except httpx.TransportError:
                ready = None
            if ready is not None and ready.status_code == 200:
                break
            time.sleep(0.3)
        print(f"ready after {time.monotonic() - started:.1f} s")

        acked: list[str] = []
        load(base, 2.0, acked, header=HEADER, tags=tags)
        assert len(acked) > 20, len(acked)
        gateways = {replica_pid(t) for t in tags}
        assert len(gateways) == 2, tags

        # The model runs in the version deployment's process, not in a gateway replica.
        r = httpx.post(f"{base}/v1/models/slow:predict",
                       json={"instances": [{"a": 1, "b": 1}]}, timeout=30)
        assert r.status_code == 200 and r.json()["predictions"] == [2.0], r.text
        acked += r.json()["prediction_ids"]
        ran = {int(m.name.split("-")[0]) for m in marks.iterdir()}
        assert len(ran) == 1 and not ran & gateways and all(alive(p) for p in ran), \
            (ran, gateways)
        # The replicas run at keel serve's own priority (this test's), not 15 steps below it
        # as Ray starts its workers (keelwork.adapters.engines.ray_serve.WORKER_NICENESS).
        assert {os.getpriority(os.PRIO_PROCESS, p) for p in gateways | ran} == \
            {os.getpriority(os.PRIO_PROCESS, 0)}
        for mark in marks.iterdir():
            mark.unlink()

        # One application per version, used by both gateway replicas (and, as they were just
        # registered, by keel serve's keeper, which deployed them ahead).
        uses = _uses(db)
        assert set(uses) == {f"live--version--{m}-v1" for m in ("adder", "slow", "picky")}, uses
        assert all(len(replicas - {REGISTERED}) == 2 for replicas in uses.values()), uses
        # Each version deployment runs keel.yaml's server.replicas, as the gateway does: keel
        # serve's keeper logs Serve's status of each application it created once it runs.
        deadline = time.monotonic() + 30
        while "live--version--slow-v1 is running" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(0.2)
        for m in ("adder", "slow", "picky"):
            assert (f"live--version--{m}-v1 is running: {m}-v1 with 2 running replicas"
                    in log.read_text(errors="replace")), log.read_text(errors="replace")[-4000:]

        acked += _poisoned_batch(base, marks)
        acked += _kill_a_version_replica_mid_call(base, marks, "live--version--slow-v1")
        # The CPU the model used in the version replica is counted by the gateway's /metrics.
        assert _model_cpu(base, "picky") > 0

        # Version 2, registered and promoted while serving: a deployment of its own.
        keel(tmp_path, "models", "register", "adder", "fakes:total", "--runtime", "python",
             "--options", f'{{"path": "{FIXTURES}"}}')
        with open_registry(tmp_path, pg_database) as registry:
            registry.set_alias("adder", 2, "champion", actor="ops", reason="versions test")
        deadline = time.monotonic() + 60
        versions: set[int] = set()
        while versions != {2}:
            assert time.monotonic() < deadline, f"version 2 never answered alone: {versions}"
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda _: httpx.post(
                    f"{base}/v1/models/adder:predict",
                    json={"instances": [{"a": 1, "b": 2}]}, timeout=60), range(4)))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            acked += [i for a in answers for i in a.json()["prediction_ids"]]
            versions = {int(a.json()["model_version"]) for a in answers}
            time.sleep(0.2)
        assert "live--version--adder-v2" in _uses(db)
        assert "deploying live--version--adder-v2" in log.read_text(errors="replace")

        acked += _kill_a_gateway_replica_mid_call(base, marks, sorted(gateways)[0])

        # Every acknowledged prediction is in the shared log, exactly once.
        stored = logged(db, acked)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions not logged"
        assert len(set(acked)) == len(acked) and all(stored[i] == 1 for i in acked)
    finally:
        stop(proc, 60)
    try:
        assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
        assert not [t for t in tags if alive(replica_pid(t))], "a replica outlived keel serve"
        # (Ray Serve's own router race while a replica dies is logged with a traceback;
        # fleet.tracebacks leaves that one out, and only that one)
        assert not tracebacks(log.read_text(errors="replace")), \
            log.read_text(errors="replace")[-4000:]
        print(f"whole run {time.monotonic() - started:.1f} s")
    finally:
        db.dispose()
