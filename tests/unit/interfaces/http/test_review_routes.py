"""``/review`` and ``/v1/review``: the page shows the stored item escaped, with the model's
answer, confidence and why; verdicts need the page's CSRF header (from the page) or a key with
the ``review`` scope (with keys on), are attributed to the key's name whatever the body says,
land in the label store at once and are audited; refusals have their own statuses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.interfaces.http.auth import install_problem_handler
from keelwork.interfaces.http.review_routes import COOKIE, CSRF_HEADER, review_router
from keelwork.service.review_desk import ReviewDesk
from review_project import ReviewProject, review_project

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ReviewProject]:
    got = review_project(tmp_path, [{"text": f"it crashes {HOSTILE}"}, {"text": "how to?"},
                                    {"text": "love it"}],
                         reasons=["uncertain", "random", "guard:out_of_distribution"])
    yield got
    got.engine.dispose()


def _client(p: ReviewProject, keys: ApiKeyStore | None = None, *,
            required: bool = False, desk: bool = True) -> TestClient:
    app = FastAPI()
    install_problem_handler(app)
    d = ReviewDesk(p.resolved, p.engine, p.audit, "server-user") if desk else None
    app.include_router(review_router(d, keys, require_api_key=required))
    return TestClient(app)


def _token(html: str) -> str:
    found = re.search(r'data-csrf="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def test_the_page_shows_the_stored_item_escaped_with_why_and_confidence(
        project: ReviewProject) -> None:
    page = _client(project).get("/review")
    assert page.status_code == 200
    assert project.ids[0] in page.text and "it crashes" in page.text
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert "the model was unsure" in page.text and "30%" in page.text  # 1 - 0.7
    assert "<kbd>1</kbd>bug" in page.text and "<kbd>3</kbd>praise" in page.text
    assert "server-user" in page.text and "has no API keys" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "default-src 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert "http://" not in page.text and "https://" not in page.text  # no external asset


def test_a_verdict_from_the_page_needs_its_csrf_header_and_becomes_the_label(
        project: ReviewProject) -> None:
    client = _client(project)
    token = _token(client.get("/review").text)
    pid = project.ids[0]
    body = {"prediction_id": pid, "label": "question"}
    assert client.post("/review/label", json=body).status_code == 403
    assert client.post("/review/label", json=body,
                       headers={CSRF_HEADER: "0" * 32}).status_code == 403
    assert client.post("/review/label", content=b"prediction_id=x",
                       headers={CSRF_HEADER: token,
                                "content-type": "application/x-www-form-urlencoded"}
                       ).status_code == 415
    assert LabelStore(project.engine).get(pid) is None  # nothing was written by the refusals
    done = client.post("/review/label", json=body, headers={CSRF_HEADER: token})
    assert done.status_code == 200 and done.json()["reviewer"] == "server-user"
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and (stored.label, stored.source) == ("question",
                                                                    "review:server-user")
    [entry] = project.audit.query(action="review.label")
    assert (entry.actor, entry.target, entry.details["via"]) == ("server-user", pid, "page")
    # The next page shows the next item; a skip passes on it.
    nxt = client.get("/review").text
    assert project.ids[1] in nxt and "a random sample" in nxt and "not scored" in nxt
    assert client.post("/review/skip", json={"prediction_id": project.ids[1]},
                       headers={CSRF_HEADER: token}).status_code == 200
    assert "out_of_distribution guard flagged" in client.get("/review").text


def test_refusals_have_their_statuses(project: ReviewProject) -> None:
    client = _client(project)
    url = "/v1/review/label"
    unknown = client.post(url, json={"prediction_id": "nope", "label": "bug"})
    assert unknown.status_code == 404 and "not in the review queue" in unknown.json()["error"]
    bad = client.post(url, json={"prediction_id": project.ids[0], "label": "purple"})
    assert bad.status_code == 422 and "purple" in bad.text
    assert client.post(url, json={"prediction_id": project.ids[0]}).status_code == 400
    assert client.post(url, json={"prediction_id": project.ids[0],
                                  "label": "bug"}).status_code == 200
    again = client.post(url, json={"prediction_id": project.ids[0], "label": "bug"})
    assert again.status_code == 409 and "judged" in again.json()["error"]
    project.erase(project.ids[2])
    gone = client.post(url, json={"prediction_id": project.ids[2], "label": "bug"})
    assert gone.status_code == 410 and "no longer in the log" in gone.json()["error"]
    assert LabelStore(project.engine).get(project.ids[2]) is None
    for body in (b"x" * 20_000, iter([b"x" * 10_000] * 2)):  # with a length, and chunked
        big = client.post(url, content=body, headers={"content-type": "application/json"})
        assert big.status_code == 413 and "at most 16384 bytes" in big.json()["error"]


def test_a_verdict_on_an_item_that_is_done_is_refused_with_409(project: ReviewProject) -> None:
    store = ApiKeyStore(project.engine)
    store.ensure_schema()
    ana = store.create(scopes=["review"], name="ana", created_by="t").plaintext
    bob = store.create(scopes=["review"], name="bob", created_by="t").plaintext
    client = _client(project, store)
    url, pid = "/v1/review/label", project.ids[0]
    assert client.post(url, json={"prediction_id": pid, "label": "question"},
                       headers={"x-api-key": ana}).status_code == 200
    late = client.post(url, json={"prediction_id": pid, "label": "praise"},
                       headers={"x-api-key": bob})
    assert late.status_code == 409 and "verdict it wants already" in late.json()["error"]
    assert late.json()["details"][0]["rule"] == "review_done"
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and (stored.label, stored.source) == ("question", "review:ana")


def test_with_keys_the_reviewer_is_the_keys_name(project: ReviewProject) -> None:
    store = ApiKeyStore(project.engine)
    store.ensure_schema()
    ana = store.create(scopes=["review"], name="ana", created_by="t").plaintext
    viewer = store.create(scopes=["read"], name="viewer", created_by="t").plaintext
    client = _client(project, store)
    form = client.get("/review")
    assert form.status_code == 401 and 'action="/review/login"' in form.text
    assert project.ids[0] not in form.text  # nothing of the queue without a key
    assert client.get("/v1/review/next").status_code == 401
    refused = client.post("/review/login", data={"key": viewer}, follow_redirects=False)
    assert refused.status_code == 403 and "lacks the <code>review</code> scope" in refused.text
    assert viewer not in refused.text
    login = client.post("/review/login", data={"key": ana}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/review" in cookie
    page = client.get("/review")
    assert page.status_code == 200 and "Reviewing as <b>ana</b>" in page.text
    assert ana not in page.text
    # The body's "reviewer" is ignored: the key says who judges.
    done = client.post("/review/label", json={"prediction_id": project.ids[0], "label": "bug",
                                              "reviewer": "mallory"},
                       headers={CSRF_HEADER: _token(page.text)})
    assert done.status_code == 200 and done.json()["reviewer"] == "ana"
    stored = LabelStore(project.engine).get(project.ids[0])
    assert stored is not None and stored.source == "review:ana"
    # The cookie is for the page only: the JSON API wants the key in a header.
    client.cookies.clear()
    client.cookies.set(COOKIE, ana)
    assert client.get("/v1/review/next").status_code == 401
    api = client.get("/v1/review/next", headers={"x-api-key": ana}).json()
    assert api["reviewer"] == "ana" and api["item"]["prediction_id"] == project.ids[1]
    assert client.get("/v1/review/next",
                      headers={"x-api-key": viewer}).status_code == 403


def test_without_a_review_section_the_routes_say_so(project: ReviewProject) -> None:
    client = _client(project, desk=False)
    page = client.get("/review")
    assert page.status_code == 404 and "no &#x27;review&#x27; section" in page.text
    assert client.get("/v1/review/next").status_code == 404
