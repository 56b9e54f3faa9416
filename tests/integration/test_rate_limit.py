"""``guards.rate_limit``: 429 with Retry-After past the limit, per key, tenant or IP, and one
limit for several servers on one store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.rate_limit_store import RateLimitStore
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.rate_limits import SYNC_S, RateLimiter
from keelwork.spec import load_spec
from keelwork.spec.guard_settings import RateLimit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: limited, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
guards:
  rate_limit: {{requests_per_second: {rate}, burst: {burst}, per: {per}}}
storage:
  url: "{url}"
"""
BODY = {"instances": [{"a": 1.0, "b": 2}]}


def _app(project: Path, url: str, rate: float, burst: int, per: str) -> TestClient:
    project.mkdir(parents=True, exist_ok=True)
    (project / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, rate=rate, burst=burst,
                                                   per=per, url=url))
    return TestClient(build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False))


def test_past_the_burst_a_caller_gets_429_with_retry_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    with _app(tmp_path / "p", url, rate=1, burst=3, per="tenant") as client:
        got = [client.post("/v1/models/adder:predict", json=BODY,
                           headers={"x-tenant-id": "acme"}) for _ in range(5)]
        assert [r.status_code for r in got] == [200, 200, 200, 429, 429]
        refused = got[-1]
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["details"][0]["rule"] == "rate_limit"
        # Another tenant has its own bucket.
        other = client.post("/v1/models/adder:predict", json=BODY,
                            headers={"x-tenant-id": "globex"})
        assert other.status_code == 200
        # Each 429 is counted under the model asked for (shown on the dashboard); a model
        # keel.yaml does not name is refused all the same but grows no series.
        assert client.post("/v2/models/nosuch/infer", json={},
                           headers={"x-tenant-id": "acme"}).status_code == 429
        metrics = client.get("/metrics").text
        assert ('keelwork_guard_hits_total{action="reject",guard="rate_limit",model="adder"} '
                '2.0') in metrics
        assert 'model="nosuch"' not in metrics
        page = client.get("/dashboard.json").json()
        adder = next(m for m in page["models"] if m["name"] == "adder")
        assert adder["guard_hits"] == {"rate_limit": 2.0}
        time.sleep(1.05)  # one token back
        assert client.post("/v1/models/adder:predict", json=BODY,
                           headers={"x-tenant-id": "acme"}).status_code == 200


def test_two_servers_on_one_store_share_one_limit_under_load(tmp_path: Path,
                                                             store_url: str) -> None:
    rate, burst, seconds = 20.0, 5, 4.0
    allowed: list[int] = [0, 0]
    clients = [_app(tmp_path / f"s{i}", store_url, rate, burst, "ip") for i in range(2)]

    def hammer(i: int, client: TestClient) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = client.post("/v1/models/adder:predict", json=BODY)
            assert r.status_code in (200, 429), r.text
            allowed[i] += r.status_code == 200
            time.sleep(0.002)

    with clients[0] as c0, clients[1] as c1:
        time.sleep(2 * SYNC_S)  # both servers have started their sync loops
        threads = [threading.Thread(target=hammer, args=(i, c)) for i, c in enumerate((c0, c1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = sum(allowed)
    # One limit: rate x T + burst, within the stated tolerance (each server's stale share for
    # about one sync interval, plus each server's first burst before they meet).
    expected = rate * seconds + burst
    tolerance = 2 * (rate * SYNC_S * 2 + burst)
    assert expected - tolerance <= total <= expected + tolerance, (allowed, expected)
    assert min(allowed) > 0  # both servers got a share


@pytest.mark.parametrize("servers", [1, 3])
def test_shares_converge_with_a_fake_clock(tmp_path: Path, servers: int) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    store = RateLimitStore(engine)
    store.ensure_schema()
    now = [0.0]
    limiters = [RateLimiter(RateLimit(requests_per_second=10, burst=2), store,
                            clock=lambda: now[0], wall=lambda: 1e9 + now[0])
                for _ in range(servers)]
    allowed = 0
    for tick in range(2000):  # 20 s in steps of 10 ms; every server sees 100 requests/s
        now[0] = tick / 100.0
        allowed += sum(lim.take("ip:1.2.3.4") is None for lim in limiters)
        if tick % 50 == 49:
            for lim in limiters:
                lim.sync()
    engine.dispose()
    assert 10 * 20 <= allowed <= 10 * 20 + 2 * servers + 10 * SYNC_S * servers, allowed
