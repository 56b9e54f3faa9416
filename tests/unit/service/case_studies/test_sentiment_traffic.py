"""The story's client side of the server's HTTP API: batches of predictions with their gold
labels kept apart, feedback, and a reviewer working through the queue (against a fake server
speaking the same JSON; the integration test runs the real one)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from keelwork.errors import KeelworkError
from keelwork.service.case_studies.sentiment_traffic import BATCH, Sent, Stream


class FakeServer:
    """Answers 'positive' when the text holds 'good', else 'negative'; keeps what it got."""

    def __init__(self, queue: list[str] | None = None) -> None:
        self.lock = threading.Lock()
        self.instances: list[dict[str, Any]] = []
        self.labels: dict[str, Any] = {}
        self.queue = list(queue or [])
        self.verdicts: dict[str, Any] = {}
        self.skipped: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path
        with self.lock:
            if path == "/v1/models/m:predict":
                start = len(self.instances)
                self.instances += body["instances"]
                ids = [f"p{start + i}" for i in range(len(body["instances"]))]
                answers = ["positive" if "good" in i["text"] else "negative"
                           for i in body["instances"]]
                return httpx.Response(200, json={"predictions": answers, "prediction_ids": ids,
                                                 "model_version": "1"},
                                      headers={"x-model-version": "1"})
            if path == "/v1/feedback":
                self.labels.update({x["prediction_id"]: x["label"] for x in body["labels"]})
                return httpx.Response(200, json={"stored": len(body["labels"])})
            if path == "/v1/review/next":
                item = {"prediction_id": self.queue[0]} if self.queue else None
                return httpx.Response(200, json={"reviewer": "r", "item": item})
            if path in ("/v1/review/label", "/v1/review/skip"):
                pid = self.queue.pop(0)
                assert body["prediction_id"] == pid
                if path.endswith("label"):
                    self.verdicts[pid] = body["label"]
                else:
                    self.skipped.append(pid)
                return httpx.Response(200, json={"prediction_id": pid})
        return httpx.Response(404, json={"error": path})


def test_send_keeps_gold_labels_apart_and_feeds_back_a_share() -> None:
    server = FakeServer()
    rows = [(f"good {i}" if i % 2 else f"bad {i}", "positive") for i in range(3 * BATCH + 5)]
    seen: list[tuple[int, int]] = []
    with Stream("http://story", "m", transport=httpx.MockTransport(server)) as stream:
        sent = stream.send(rows, lambda d, n: seen.append((d, n)), label_share=0.5)
    assert len(sent.gold) == len(rows) and sent.refused == 0
    assert all(set(i) == {"text"} for i in server.instances)   # the label is never sent
    assert sent.accuracy() == pytest.approx(sum(1 for t, _ in rows if "good" in t) / len(rows))
    assert seen[-1] == (len(rows), len(rows)) and len(seen) == 4
    # half of each batch's answers got their truth, under the ids the server gave
    assert len(server.labels) == 3 * (BATCH // 2) + round(5 * 0.5)
    assert all(sent.gold[p] == lab for p, lab in server.labels.items())
    assert set(sent.version.values()) == {"1"}


def test_a_refused_batch_is_counted_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"error": "contract"})

    with Stream("http://story", "m", transport=httpx.MockTransport(refuse)) as stream:
        sent = stream.send([("x", "negative")] * 3)
    assert sent.refused == 3 and sent.accuracy() is None


def test_feedback_refused_raises_with_the_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "key"})

    with Stream("http://story", "m", transport=httpx.MockTransport(refuse)) as stream, \
            pytest.raises(KeelworkError, match="answered 401"):
        stream.feedback({"p1": "positive"})


def test_the_reviewer_judges_every_item_until_the_queue_is_empty() -> None:
    server = FakeServer(queue=["p1", "p2", "p3"])
    gold = {"p1": "positive", "p3": "negative"}
    with Stream("http://story", "m", transport=httpx.MockTransport(server)) as stream:
        counts = stream.review_all(lambda item: gold.get(item["prediction_id"]))
    assert counts == {"labelled": 2, "skipped": 1}
    assert server.verdicts == gold and server.skipped == ["p2"]


def test_sent_accuracy_over_chosen_ids() -> None:
    sent = Sent(gold={"a": "x", "b": "y", "c": "x"}, answer={"a": "x", "b": "x", "c": "x"})
    assert sent.accuracy() == pytest.approx(2 / 3)
    assert sent.accuracy(["a", "c"]) == 1.0
    assert sent.accuracy([]) is None


def test_the_server_gets_the_story_store_and_no_outside_anchor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keelwork.service.case_studies import sentiment_traffic

    monkeypatch.setenv("KEELWORK_AUDIT_ANCHOR", str(tmp_path / "someone-elses-anchor.json"))
    monkeypatch.setenv("KEELWORK_STORAGE_URL", "sqlite:///someone-elses.db")
    started: list[dict[str, str]] = []

    class Exited:
        def __init__(self, argv: list[str], **kw: Any) -> None:
            started.append(kw["env"])

        def poll(self) -> int:
            return 1

    monkeypatch.setattr(sentiment_traffic.subprocess, "Popen", Exited)
    monkeypatch.setattr(sentiment_traffic, "stop_server", lambda proc: None)
    with pytest.raises(KeelworkError, match="exited"), sentiment_traffic.serve(
            tmp_path, user="rev", storage_url="sqlite:///story.db"):
        pass
    [env] = started
    assert env["KEELWORK_STORAGE_URL"] == "sqlite:///story.db"
    assert env["KEELWORK_USER"] == "rev" and "KEELWORK_AUDIT_ANCHOR" not in env
