"""Journey: a fresh ``keel init`` project with SLOs and prices is served, gets traffic, and a
person opens ``/dashboard``: first without keys, then with keys on (the key form, a read key
by header and through the form's cookie, a predict key refused, a revoked key refused), and
``keel dashboard grafana`` writes its Grafana dashboard.

keel init -> slos + cost in keel.yaml -> keel serve -> predictions -> GET /dashboard ->
keel keys create --scope read -> GET /dashboard (401 form) -> POST /dashboard/login ->
GET /dashboard (cookie) -> keel keys revoke -> GET /dashboard (401) -> keel dashboard grafana.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from journey import keel, set_section
from live_server import running_server

REVIEWS = ["A wonderful film, I loved every minute of it.", "Dull, slow and far too long.",
           "The acting was superb and the story moving.", "I want my two hours back."]


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.slow
def test_dashboard_journey(tmp_path: Path) -> None:
    keel(tmp_path, "init", "proj")
    project = tmp_path / "proj"
    spec = project / "keel.yaml"
    text = set_section(spec.read_text(), "slos", "slos:\n  availability: 0.999\n"
                       "  latency_p99_ms: 250\n")
    spec.write_text(set_section(text, "cost", "cost:\n  per_1k_predictions: 0.5\n"))
    keel(project, "spec", "validate")

    with running_server(project) as base, httpx.Client(base_url=base, timeout=30) as http:
        for i in range(40):
            r = http.post("/v1/models/sentiment:predict",
                          json={"instances": [{"review": REVIEWS[i % len(REVIEWS)]}]})
            assert r.status_code == 200, r.text
        bad = http.post("/v1/models/sentiment:predict", json={"instances": [{"review": ""}]})
        assert bad.status_code == 422  # refused by the contract: counted apart, not an error

        page = http.get("/dashboard")  # no key exists yet: keys are off
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        said = _text(page.text)
        assert "sentiment" in said and "41 requests, last 24 h" in said
        assert "Availability" in said and "Latency p99" in said
        assert "not configured" in said  # guard hits
        snap = http.get("/dashboard.json").json()
        (version,) = snap["models"][0]["versions"]
        assert (version["requests"], version["answered"], version["invalid"]) == (41, 40, 1)
        assert version["errors"] == 0 and version["p99"] is not None
        assert version["cost"] == pytest.approx(40 * 0.5 / 1000)  # since this server started
        assert snap["models"][0]["slos"][0]["events"] == 40

        read = keel(project, "keys", "create", "--scope", "read", "--name", "viewer")
        key = read.stdout.strip()
        predict = keel(project, "keys", "create", "--scope", "predict", "--name", "app")
        predict_key = predict.stdout.strip()
        assert key.startswith("kw_") and predict_key.startswith("kw_")

        # Another process made the keys: this server sees that keys are on within the key
        # store's cache bound (5 s), as for POST /v1/feedback.
        deadline = time.monotonic() + 15
        while (form := http.get("/dashboard")).status_code == 200:
            assert time.monotonic() < deadline, "keys never turned on"
            time.sleep(0.5)
        assert form.status_code == 401 and 'action="/dashboard/login"' in form.text
        assert "sentiment" not in form.text
        assert http.get("/dashboard.json").status_code == 401
        assert http.get("/dashboard", headers={"Authorization": f"Bearer {key}"}
                        ).status_code == 200
        refused = http.get("/dashboard", headers={"x-api-key": predict_key})
        assert refused.status_code == 403 and "lacks the <code>read</code> scope" in refused.text

        wrong = http.post("/dashboard/login", data={"key": predict_key + "x"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert predict_key not in wrong.text
        login = http.post("/dashboard/login", data={"key": key}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/dashboard"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/dashboard" in cookie
        viewed = http.get("/dashboard")  # the client keeps the cookie, as a browser does
        assert viewed.status_code == 200 and "sentiment" in viewed.text
        assert key not in viewed.text and key not in login.text
        assert http.get("/v2/health/ready").status_code == 200  # other routes: no cookie use

        key_id = key.split("_")[1]
        keel(project, "keys", "revoke", key_id)
        deadline = time.monotonic() + 15  # revoked by another process: within the cache bound
        while (gone := http.get("/dashboard")).status_code == 200:
            assert time.monotonic() < deadline, "a revoked key kept working"
            time.sleep(0.5)
        assert gone.status_code == 401 and "not valid" in gone.text
        http.post("/dashboard/logout")
        assert "keel_dashboard" not in http.cookies
    log = (project / "server.log").read_text()
    assert key not in log and predict_key not in log

    keel(project, "dashboard", "grafana", "--out", "grafana.json")
    board = json.loads((project / "grafana.json").read_text())
    assert [p["title"] for p in board["panels"] if p["type"] == "row"] == ["Model sentiment"]
