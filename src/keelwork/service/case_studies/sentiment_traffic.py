"""The story's server and the traffic it gets, over the server's public HTTP API.

:func:`serve` runs ``keel serve`` as a process of its own (a real server, as users run it, on
a free loopback port) and stops it when the block ends. :class:`Stream` sends tweets to
``POST /v1/models/NAME:predict`` in batches from a few client threads, keeps each prediction's
id with the tweet's gold label, and sends ground truth to ``POST /v1/feedback``;
:func:`review_all` plays the reviewer at ``/v1/review/next`` and ``/v1/review/label``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.errors import KeelworkError
from keelwork.service.drills.live import free_port, log_tail, stop_server
from keelwork.spec.settings import child_environment, env_name

#: Instances per predict request.
BATCH = 20
#: Client threads sending requests at once.
CLIENTS = 4
#: Labels per feedback request.
FEEDBACK_BATCH = 500

#: ``progress(done, total)``.
Progress = Callable[[int, int], None]


def _quiet(done: int, total: int) -> None:
    """No progress shown."""


@contextmanager
def serve(project: Path, *, user: str, storage_url: str,
          timeout_s: float = 90.0) -> Iterator[str]:
    """``keel serve`` of ``project`` on a free loopback port; yields its base URL once ready.

    Args:
        project: The project directory (its keel.yaml).
        user: The server's ``user`` setting: with API keys off, the reviewer of the page and
            the review API.
        storage_url: The server's store (the ``storage_url`` setting); the server gets no
            ``audit_anchor`` setting of this process's environment.
        timeout_s: How long it may take to be ready.

    Raises:
        KeelworkError: the server exited or was not ready in time (its log's last line named).
    """
    import httpx

    port = free_port()
    log = project / "server.log"
    env = child_environment(drop=(env_name("audit_anchor"),),
                            **{env_name("user"): user, env_name("storage_url"): storage_url})
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(project / "keel.yaml"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--log-level", "warning", "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=project)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise KeelworkError("keel serve of the story's project exited: "
                                    + (log_tail(log)[-1:] or ["(nothing logged)"])[0])
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise KeelworkError(f"keel serve of the story's project was not ready in "
                                    f"{timeout_s:.0f} s; see {log}.")
            time.sleep(0.1)
        yield base
    finally:
        stop_server(proc)


@dataclass
class Sent:
    """What a stream got back: per prediction id, the gold label and the answer."""

    gold: dict[str, str] = field(default_factory=dict)
    answer: dict[str, str] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)
    refused: int = 0

    def accuracy(self, ids: Sequence[str] | None = None) -> float | None:
        """Share of answers equal to the gold label (over ``ids``, default all)."""
        chosen = list(self.gold) if ids is None else list(ids)
        if not chosen:
            return None
        return sum(self.answer[i] == self.gold[i] for i in chosen) / len(chosen)


class Stream:
    """Tweets sent to one model of a running server.

    Args:
        base: The server's base URL.
        model: The model name.
        transport: An httpx transport to send through (tests: ``httpx.MockTransport``).
    """

    def __init__(self, base: str, model: str, *, transport: Any = None) -> None:
        import httpx

        self.model = model
        self._http = httpx.Client(base_url=base, timeout=30, transport=transport,
                                  limits=httpx.Limits(max_connections=CLIENTS))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _one(self, rows: Sequence[tuple[str, str]]) -> Sent:
        r = self._http.post(f"/v1/models/{self.model}:predict",
                            json={"instances": [{"text": t} for t, _ in rows]})
        out = Sent()
        if r.status_code != 200:
            out.refused += len(rows)
            return out
        body = r.json()
        version = r.headers.get("x-model-version", str(body.get("model_version", "")))
        for pid, answer, (_, gold) in zip(body["prediction_ids"], body["predictions"], rows,
                                          strict=True):
            out.gold[pid], out.answer[pid], out.version[pid] = gold, str(answer), version
        return out

    def send(self, rows: Sequence[tuple[str, str]], progress: Progress = _quiet,
             *, label_share: float = 0.0, on_batch: Callable[[Sent], None] | None = None
             ) -> Sent:
        """Send ``rows`` (text, gold label) in batches of :data:`BATCH` from
        :data:`CLIENTS` threads.

        Args:
            rows: The tweets with their gold labels (the label is not sent with them).
            progress: Called after each batch.
            label_share: Send the gold label of this share of each batch's answers as
                feedback right after the batch (0: none).
            on_batch: Called with each batch's answers.

        Returns:
            Every answer, with its gold label.
        """
        batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
        total = Sent()
        done = 0

        def one(batch: Sequence[tuple[str, str]]) -> Sent:
            got = self._one(batch)
            if label_share > 0:
                ids = list(got.gold)
                self.feedback({i: got.gold[i] for i in ids[:round(len(ids) * label_share)]})
            return got

        with ThreadPoolExecutor(CLIENTS) as pool:
            for got in pool.map(one, batches):
                total.gold.update(got.gold)
                total.answer.update(got.answer)
                total.version.update(got.version)
                total.refused += got.refused
                done += sum(1 for _ in got.gold) + got.refused
                if on_batch is not None:
                    on_batch(got)
                progress(done, len(rows))
        return total

    def feedback(self, labels: dict[str, str]) -> int:
        """Send ground truth for these prediction ids; returns how many were stored.

        Raises:
            KeelworkError: the server refused a feedback request.
        """
        items = list(labels.items())
        stored = 0
        for i in range(0, len(items), FEEDBACK_BATCH):
            chunk = [{"prediction_id": p, "label": lab} for p, lab in items[i:i + FEEDBACK_BATCH]]
            r = self._http.post("/v1/feedback", json={"labels": chunk})
            if r.status_code != 200:
                raise KeelworkError(f"POST /v1/feedback answered {r.status_code}: {r.text[:300]}")
            stored += int(r.json().get("stored", 0))
        return stored

    def review_all(self, verdict: Callable[[dict[str, Any]], str | None],
                   progress: Progress = _quiet, total: int = 0) -> dict[str, int]:
        """Judge every item the review queue gives (``GET /v1/review/next``) with
        ``verdict(item)``: a label is recorded (``POST /v1/review/label``), None skips it.

        Returns:
            How many items were ``labelled`` and ``skipped``.

        Raises:
            KeelworkError: the server refused a verdict.
        """
        counts = {"labelled": 0, "skipped": 0}
        while True:
            r = self._http.get("/v1/review/next")
            if r.status_code != 200:
                raise KeelworkError(f"GET /v1/review/next answered {r.status_code}: "
                                    f"{r.text[:300]}")
            item = r.json().get("item")
            if not item:
                return counts
            label = verdict(item)
            if label is None:
                r = self._http.post("/v1/review/skip",
                                    json={"prediction_id": item["prediction_id"]})
                counts["skipped"] += 1
            else:
                r = self._http.post("/v1/review/label",
                                    json={"prediction_id": item["prediction_id"],
                                          "label": label})
                counts["labelled"] += 1
            if r.status_code != 200:
                raise KeelworkError(f"the review API answered {r.status_code}: {r.text[:300]}")
            progress(sum(counts.values()), total)


__all__ = ["BATCH", "CLIENTS", "Progress", "Sent", "Stream", "serve"]
