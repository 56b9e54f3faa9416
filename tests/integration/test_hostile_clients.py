"""A live ``keel serve`` against hostile clients, on SQLite and PostgreSQL (issue 13), on the
default engine and on ``--engine granian`` (issue 19: its Rust front answers predict on the
fast port; keelwork's whole app answers the rest on the admin port).

Each test runs what a hostile client (or a careless operator) would do and checks the server's
resources stay within stated bounds: its memory (RSS of each process of the server's tree), the
number of ``/metrics`` series, the rows and bytes it stores, the time a connection is held and
the lines it logs. On granian, every predict goes to the fast port and everything else to the
admin port, as a client of that engine sends them; requests to routes that do not exist go to
both.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from fleet import stop
from keelwork.service.registration import register_model
from live_server import start_fast_engine, start_server

pytestmark = pytest.mark.slow

#: Versions registered of the model; each holds ~20 MB of arrays once loaded.
VERSIONS = 8
MAX_LOADED = 2
MAX_BODY = 65_536
READ_TIMEOUT_S = 1.0
HEAD_TIMEOUT_S = 2.0
MAX_REJECTED = 4096
#: guards.max_connections: connections each server process holds open at once.
MAX_CONNECTIONS = 12
LIVE = "/v2/health/live"  # served on either port

SPEC = """\
service: {{name: hostile, owners: [t@example.com]}}
models:
  - name: knn
    runtime: sklearn
    options: {{feature_names: [f0, f1, f2, f3]}}
contract:
  inputs: [{{name: f0, type: float}}, {{name: f1, type: float}}, {{name: f2, type: float}},
           {{name: f3, type: float}}]
guards:
  require_api_key: true
  max_loaded_versions: {max_loaded}
  max_body_bytes: {max_body}
  body_read_timeout_s: {timeout}
  header_read_timeout_s: {head}
  max_connections: {conns}
storage: {{url: "{url}", max_rejected_input_bytes: {max_rejected}}}
"""


def _knn(path: Path) -> None:
    """A 1-NN classifier over 500,000 points: about 20 MB of arrays in memory per version."""
    import numpy as np
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    x = np.random.default_rng(0).random((500_000, 4))
    model = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(x, x[:, 0] > 0.5)
    sio.dump(model, path)


@pytest.fixture(scope="module")
def knn_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("knn") / "knn.skops"
    _knn(path)
    return path


class Server:
    """A served project: ``base`` serves keelwork's whole app, ``fast`` the predict routes
    (the same URL on the default engine; granian's fast port on ``--engine granian``)."""

    def __init__(self, project: Path, proc: subprocess.Popen[bytes], base: str, fast: str,
                 keys: dict[str, str], url: str) -> None:
        self.project, self.proc, self.base, self.fast, self.url = project, proc, base, fast, url
        self.keys = keys
        self.client = httpx.Client(base_url=base, timeout=30)
        self.fast_client = httpx.Client(base_url=fast, timeout=30)

    def headers(self, scope: str = "predict") -> dict[str, str]:
        return {"x-api-key": self.keys[scope]}

    def rss_mb(self) -> dict[int, float]:
        """Resident memory of each process of the server's tree, by pid (MB)."""
        found: dict[int, float] = {}
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        found[pid] = int(line.split()[1]) / 1024
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        assert found, "no VmRSS"
        return found

    def series(self) -> int:
        page = self.client.get("/metrics").text
        return sum(len(f.samples) for f in text_string_to_metric_families(page))

    def log_lines(self) -> list[str]:
        return [line for line in (self.project / "server.log").read_text().splitlines()
                if line.strip()]

    def rows(self, sql: str) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()


@pytest.fixture
def versions() -> int:
    """Versions of the model to register (a test needing many overrides it)."""
    return 1


@pytest.fixture(params=["uvicorn", "granian"])
def engine(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    if name != "uvicorn":
        pytest.importorskip(name, reason=f"{name} is not installed (pip install "
                                         f"'keelwork[{name}]')")
    return name


@pytest.fixture
def server(tmp_path: Path, store_url: str, versions: int, engine: str,
           knn_artifact: Path) -> Iterator[Server]:
    if sys.platform != "linux":
        pytest.skip("reads the server's RSS from /proc")
    from keelwork.adapters.stores.api_keys import ApiKeyStore
    from keelwork.adapters.stores.registry_store import open_registry

    (tmp_path / "keel.yaml").write_text(SPEC.format(
        max_loaded=MAX_LOADED, max_body=MAX_BODY, timeout=READ_TIMEOUT_S, head=HEAD_TIMEOUT_S,
        conns=MAX_CONNECTIONS, url=store_url,
        max_rejected=MAX_REJECTED))
    registry = open_registry(tmp_path, store_url)
    for v in range(1, versions + 1):
        register_model(registry, "knn", knn_artifact, "sklearn", source_dir=tmp_path,
                          aliases=["champion"] if v == 1 else ())
    registry.close()
    db = create_engine(store_url)
    store = ApiKeyStore(db)
    store.ensure_schema()
    keys = {s: store.create(scopes=[s], name=f"{s}-key", created_by="t").plaintext
            for s in ("predict", "admin")}
    db.dispose()
    if engine == "uvicorn":
        proc, base = start_server(tmp_path)
        fast = base
    else:
        proc, fast, base = start_fast_engine(tmp_path, engine)
    s = Server(tmp_path, proc, base, fast, keys, store_url)
    try:
        yield s
    finally:
        s.client.close()
        s.fast_client.close()
        if engine == "uvicorn":
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        else:
            stop(proc, timeout=60)


ROW = {"f0": 0.1, "f1": 0.2, "f2": 0.3, "f3": 0.4}
INSTANCE = {"instances": [ROW]}


@pytest.mark.parametrize("versions", [VERSIONS])
def test_versions_load_only_for_keys_and_memory_stays_bounded(server: Server) -> None:
    c, fast = server.client, server.fast_client
    for client in (c, fast):
        assert client.post("/v1/models/knn:predict", json=INSTANCE,
                           headers=server.headers()).status_code == 200
    base = server.rss_mb()

    def grown() -> dict[int, float]:
        return {pid: mb - base[pid] for pid, mb in server.rss_mb().items() if pid in base}

    # without a key: nothing loads, whatever the route
    for v in range(2, VERSIONS + 1):
        for path in (f"/v2/models/knn/versions/{v}", f"/v1/models/knn@{v}"):
            assert c.get(path).status_code == 401
        r = fast.post("/v1/models/knn:predict", json=INSTANCE, headers={"x-keel-model-ref": str(v)})
        assert r.status_code == 401
    assert max(grown().values()) < 10, grown()
    # with a key, every version three times over, by every route that names one
    for _ in range(3):
        for v in range(2, VERSIONS + 1):
            assert c.get(f"/v2/models/knn/versions/{v}",
                         headers=server.headers()).status_code == 200
            r = c.post(f"/v1/models/knn@{v}:predict", json=INSTANCE, headers=server.headers())
            assert r.status_code == 200 and r.json()["model_version"] == v
            r = fast.post("/v1/models/knn:predict", json=INSTANCE,
                          headers={**server.headers(), "x-keel-model-ref": str(v)})
            assert r.status_code == 200 and r.json()["model_version"] == v
    time.sleep(1.5)  # unloads hand their memory back together, shortly after
    # In each process: the champion + at most MAX_LOADED others (20 MB each) + slack;
    # unbounded would be 140 MB
    assert max(grown().values()) < (MAX_LOADED + 1) * 20 + 30, f"RSS grew (MB): {grown()}"
    for client in (c, fast):
        assert client.post("/v1/models/knn:predict", json=INSTANCE,
                           headers=server.headers()).json()["model_version"] == 1


def _key(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=12))


def test_client_text_adds_no_series_and_refusals_are_stored_bounded(server: Server) -> None:
    c, fast, rng = server.client, server.fast_client, random.Random(5)
    h = server.headers()
    assert fast.post("/v1/models/knn:predict", json=INSTANCE, headers=h).status_code == 200
    bad = {"instances": [{**ROW, "bad": 1}]}
    assert fast.post("/v1/models/knn:predict", json=bad, headers=h).status_code == 422
    before = server.series()
    for _ in range(25):  # 10,000 random keys, 400 a request (under the 64 KB body limit)
        body = {"instances": [{**ROW, **{_key(rng): 1 for _ in range(400)}}]}
        r = fast.post("/v1/models/knn:predict", json=body, headers=h)
        assert r.status_code == 422, r.text
    for client in {server.base: c, server.fast: fast}.values():
        for _ in range(100):  # unknown models, refs, routes, methods, header names
            client.post(f"/v1/models/{_key(rng)}:predict", json=INSTANCE, headers=h)
            client.post(f"/v1/models/knn@{_key(rng)}:predict", json=INSTANCE, headers=h)
            client.get(f"/v2/models/knn/versions/{rng.randint(100, 10**9)}", headers=h)
            client.request(rng.choice(["PUT", "PATCH"]), f"/{_key(rng)}", headers=h)
            r = client.post("/v1/models/knn:predict", json=INSTANCE,
                            headers={**h, f"x-{_key(rng)}": _key(rng)})
            assert r.status_code == 200, r.text
    assert server.series() - before <= 4, "client text became metric series"
    # a 500-deep instance (plus keys) is stored as bounded JSON, not a repr
    deep: Any = 1
    for _ in range(500):
        deep = {"d": deep}
    r = fast.post("/v1/models/knn:predict", json={"instances": [{**ROW, "deep": deep}]},
                  headers=h)
    assert r.status_code == 422
    stored = server.rows("SELECT pl.inputs, pl.request_meta FROM predictions p JOIN "
                         "prediction_payloads pl ON pl.id = p.id WHERE p.status = 'rejected'")
    assert len(stored) == 27
    for inputs, meta in stored:
        assert len(inputs.encode()) <= MAX_REJECTED
        assert isinstance(json.loads(inputs), dict)
        assert len(meta.encode()) <= 2 * MAX_REJECTED + 1024
    # 5,000 unknown prediction ids in one feedback: at most 1,000 kept (the default bound)
    labels = [{"prediction_id": f"ghost-{i}", "label": 1} for i in range(1300)]
    r = c.post("/v1/feedback", json={"labels": labels}, headers=server.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["unknown_not_kept"] == 300
    assert server.rows("SELECT count(*) FROM unknown_labels")[0][0] == 1000


def _raw(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any], bool]:
    """Status and JSON body of the response, and whether the server closed the connection
    (read until it does, or 5 s pass)."""
    data = b""
    sock.settimeout(5)
    closed = False
    while True:
        try:
            part = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset: closed with our unread bytes in its buffer
            closed = True
            break
        if not part:
            closed = True
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), json.loads(body), closed


def _send(sock: socket.socket, conn: h11.Connection, path: str, headers: dict[str, str],
          body: bytes, pause_s: float) -> None:
    """A POST whose headers go in one write and its body ``pause_s`` later in another."""
    head = [("host", "x"), ("content-type", "application/json"),
            ("content-length", str(len(body))), *headers.items()]
    sock.sendall(conn.send(h11.Request(method="POST", target=path, headers=head)))
    time.sleep(pause_s)
    if body:
        sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))


def _status(sock: socket.socket, conn: h11.Connection) -> tuple[int | None, bool]:
    """The answer's status (None: the connection ended first) and whether the connection
    ends with it (the answer says ``connection: close``, or the server closed it)."""
    status = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(sock.recv(65536))
            except OSError:  # reset
                conn.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, h11.MUST_CLOSE in (conn.our_state, conn.their_state) or \
                isinstance(event, h11.ConnectionClosed)


def test_a_kept_alive_connection_outlives_a_refusal_sent_before_its_body(
        server: Server) -> None:
    """Clients write a request's headers and its body apart, and reuse the connection. A
    refusal decided from the headers (an unknown model: 404, no key: 401) then goes out
    before the body has come; the connection must still serve the client's next request.
    A body over the limit is never read: that refusal must say the connection ends with it
    (granian's front used to drop such connections without a word, and the client's next
    request on it was reset)."""
    body = json.dumps(INSTANCE).encode()
    for base in {server.base, server.fast}:
        for path, headers, expected in (("/v1/models/nosuch:predict", server.headers(), 404),
                                        ("/v1/models/knn:predict", {}, 401)):
            sock, conn = _raw(base), h11.Connection(h11.CLIENT)
            _send(sock, conn, path, headers, body, 0.05)
            assert _status(sock, conn) == (expected, False), (base, path)
            conn.start_next_cycle()
            _send(sock, conn, "/v1/models/knn:predict", server.headers(), body, 0)
            assert _status(sock, conn) == (200, False), (base, path, "the next request")
            sock.close()
    for base in {server.base, server.fast}:  # a body over the limit: only its headers sent
        sock, conn = _raw(base), h11.Connection(h11.CLIENT)
        sock.sendall(conn.send(h11.Request(method="POST", target="/v1/models/knn:predict",
                                           headers=[("host", "x"),
                                                    ("content-length", str(MAX_BODY + 1)),
                                                    *server.headers().items()])))
        assert _status(sock, conn) == (413, True), base
        sock.close()


def test_bodies_are_bounded_in_size_and_time_on_every_route(server: Server) -> None:
    key = server.keys["admin"]
    for method, path, base in (("POST", "/v1/feedback", server.base),
                               ("POST", "/v1/models/knn:predict", server.fast),
                               ("PUT", "/v1/admin/flags/f", server.base)):
        # chunked: 3 MB offered, refused once 64 KB are in, before the rest is read
        sock = _raw(base)
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     .encode())
        chunk = b"[" + b" " * 16_000
        sent = 0
        try:
            while sent < 3_000_000:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: what we want
        status, chunked, closed = _answer(sock)
        sock.close()
        assert status == 413, chunked
        assert closed  # the server does not read (or keep) the rest
        # the same with a Content-Length: the same message
        r = httpx.request(method, base + path, content=b"[" + b" " * MAX_BODY + b"]",
                          headers={"x-api-key": key, "content-type": "application/json"},
                          timeout=30)
        assert r.status_code == 413
        assert f"limit of {MAX_BODY} bytes (guards.max_body_bytes)" in r.json()["error"]
        assert chunked["error"] == r.json()["error"], path
    # a body trickling in (1 byte every 0.3 s) is cut at the read deadline: 408, closed
    for path, base in (("/v1/feedback", server.base), ("/v1/models/knn:predict", server.fast)):
        _trickle(base, path, key)
    # all of it logged nothing beyond start-up warnings
    assert len(server.log_lines()) <= 5, server.log_lines()


def test_connections_without_a_whole_head_in_time_are_closed(server: Server) -> None:
    """Slowloris: connections that send nothing, that send their headers a line at a time,
    or that do so for their next request after an answer on a kept-alive connection, are
    closed guards.header_read_timeout_s after they opened (or after that answer), on every
    port, while real clients are answered; none is closed much before it."""
    opened: dict[tuple[str, str], tuple[socket.socket, float]] = {}
    for base in {server.base, server.fast}:
        for kind in ("silent", "trickle", "next head"):
            sock = _raw(base)
            if kind == "next head":
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.settimeout(5)
                assert sock.recv(65536).startswith(b"HTTP/1.1 "), base
            if kind != "silent":
                sock.sendall(b"POST /v1/models/knn:predict HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            opened[(base, kind)] = (sock, time.monotonic())
    closed_after: dict[tuple[str, str], float] = {}
    while len(closed_after) < len(opened) and time.monotonic() - min(
            t for _, t in opened.values()) < HEAD_TIMEOUT_S + 6:
        time.sleep(0.25)
        for (base, kind), (sock, started) in opened.items():
            if (base, kind) in closed_after:
                continue
            try:
                if kind != "silent":
                    sock.send(b"x-slow: 1\r\n")
                ended = sock.recv(65536) == b""
            except BlockingIOError:
                ended = False
            except OSError:  # reset
                ended = True
            if ended:
                closed_after[(base, kind)] = time.monotonic() - started
        r = server.fast_client.post("/v1/models/knn:predict", json=INSTANCE,
                                    headers=server.headers())
        assert r.status_code == 200, r.text  # real clients are answered meanwhile
    for sock, _ in opened.values():
        sock.close()
    assert set(closed_after) == set(opened), f"held past the deadline: {closed_after}"
    for where, after in closed_after.items():
        assert HEAD_TIMEOUT_S - 0.5 < after < HEAD_TIMEOUT_S + 1.5, (where, after)


def test_a_request_head_of_a_megabyte_is_refused_without_being_held(server: Server) -> None:
    """Headers without end (1 MB sent, as fast as the socket takes them): refused with 431
    and the connection closed, on every port, and the server's memory does not grow by
    them (uvicorn's httptools protocol used to take them all)."""
    before = server.rss_mb()
    line = b"x-pad: " + b"a" * 1000 + b"\r\n"
    for base in {server.base, server.fast}:
        for _ in range(5):
            sock = _raw(base)
            with contextlib.suppress(OSError):  # closed while we were still sending
                sock.sendall(b"POST /v1/models/knn:predict HTTP/1.1\r\nHost: x\r\n")
                for _ in range(1000):
                    sock.sendall(line)
            sock.settimeout(5)
            answer = b""
            with contextlib.suppress(OSError):
                while part := sock.recv(65536):
                    answer += part
            sock.close()
            assert answer.startswith(b"HTTP/1.1 431"), (base, answer[:200])
            assert b"connection: close" in answer.lower(), base
    grown = {pid: mb - before.get(pid, 0.0) for pid, mb in server.rss_mb().items()}
    assert max(grown.values()) < 20, f"RSS grew (MB): {grown}"
    r = server.fast_client.post("/v1/models/knn:predict", json=INSTANCE,
                                headers=server.headers())
    assert r.status_code == 200, r.text


def _get(sock: socket.socket, timeout: float = 5.0) -> tuple[int | None, bool]:
    """``GET LIVE`` on ``sock``: the answer's status (None: none) and whether it closes."""
    conn = h11.Connection(h11.CLIENT)
    sock.settimeout(timeout)
    sock.sendall(conn.send(h11.Request(method="GET", target=LIVE, headers=[("host", "x")]))
                 + conn.send(h11.EndOfMessage()))
    return _status(sock, conn)


def test_connections_past_max_connections_wait_or_are_refused(server: Server,
                                                               engine: str) -> None:
    """guards.max_connections: each port's process serves that many kept-alive connections at
    once. One more is answered 503 and closed at once on uvicorn (keelwork's app, and the
    admin port of granian), without its request; granian's front does not accept it until a
    held one closes, then answers it. The held ones are served throughout, and real clients
    after."""
    server.client.close()  # (their pooled connections would count)
    server.fast_client.close()
    time.sleep(0.3)
    for base in sorted({server.base, server.fast}):
        waits = engine == "granian" and base == server.fast
        held = [_raw(base) for _ in range(MAX_CONNECTIONS)]
        for sock in held:
            assert _get(sock) == (200, False), base
        answered = time.monotonic()
        extra = _raw(base)
        if waits:
            extra.sendall(b"GET " + LIVE.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            extra.settimeout(0.5)
            with pytest.raises(TimeoutError):  # in the listen backlog, not accepted
                extra.recv(65536)
            held.pop().close()
            closed = time.monotonic()
            extra.settimeout(1.0)  # accepted now: its request, sent already, is answered
            assert extra.recv(65536).startswith(b"HTTP/1.1 200"), base
            # (answered because one closed, not because the head deadline closed others)
            assert time.monotonic() - closed < 0.5 < HEAD_TIMEOUT_S - (closed - answered)
        else:
            status, closes = _get(extra)
            assert (status, closes) == (503, True), base
        extra.close()
        for sock in held:  # the held connections are still served
            assert _get(sock)[0] == 200, base
            sock.close()
    server.client = httpx.Client(base_url=server.base, timeout=30)
    server.fast_client = httpx.Client(base_url=server.fast, timeout=30)
    r = server.fast_client.post("/v1/models/knn:predict", json=INSTANCE,
                                headers=server.headers())
    assert r.status_code == 200, r.text
    assert any("guards.max_connections: 12" in line for line in server.log_lines()), \
        "the refusals were not logged"


def _trickle(base: str, path: str, key: str) -> None:
    sock = _raw(base)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode())
    started = time.monotonic()
    sock.settimeout(0.3)
    data = b""
    while time.monotonic() - started < 10 and b"\r\n\r\n" not in data:
        try:
            sock.sendall(b" ")
            data += sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
    held = time.monotonic() - started
    sock.settimeout(2)
    with contextlib.suppress(OSError):
        while part := sock.recv(65536):  # the body, until the server closes
            data += part
    sock.close()
    assert data.startswith(b"HTTP/1.1 408"), (path, data[:200])
    assert held < READ_TIMEOUT_S + 1.5, path
    assert b"guards.body_read_timeout_s" in data, path


def test_a_billion_laughs_keel_yaml_is_refused_at_once(tmp_path: Path) -> None:
    lines = ["service: {name: x, owners: [a@example.com]}", "models:",
             "  - {name: m, runtime: python, artifact: 'a:b', options: {",
             '      a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"],']
    lines += [f"      a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "],"
              for i in range(1, 10)]
    (tmp_path / "keel.yaml").write_text("\n".join(lines) + "\n      last: 1}}\n")
    assert (tmp_path / "keel.yaml").stat().st_size < 1024
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
                          str(tmp_path / "keel.yaml")], capture_output=True, timeout=60)
    assert run.returncode != 0
    assert time.monotonic() - started < 20
    out = (run.stdout + run.stderr).decode()
    assert "YAML aliases" in out and "10000 nodes" in out
