"""Serving a scratch project for a drill and driving load at it.

:func:`start_server` runs ``keel serve`` as a process of its own (a real server, as users run
it, on a free loopback port; one worker, so that SIGKILL reaches the process that serves);
:class:`Load` is a pool of client threads posting real rows (the project's reference data) and
recording, for every request, when it was sent, its status, the
version that answered, the prediction ids it acknowledged and the rule of a refusal.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.errors import DrillUnavailable
from keelwork.service.drills.scratch import Scratch
from keelwork.spec.contract import ContractSection, FieldSpec
from keelwork.spec.model import ResolvedSpec

#: Rows of the reference data the clients cycle through.
MAX_ROWS = 256


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it was sent (monotonic), its status (0: no answer), the version that
    answered ("" when the answer names none), the prediction ids it acknowledged and, for a
    4xx answer, the rule its first error detail names."""

    sent: float
    status: int
    version: str
    ids: tuple[str, ...] = ()
    rule: str = ""


def drill_rows(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Real rows to send: the contract's inputs of the reference data (``monitoring.reference``),
    else rows made from the contract (each checked against it).

    Raises:
        DrillUnavailable: keel.yaml declares no contract inputs, or no row can be made that
            passes the contract (a tensor field, a pattern) and there is no reference data.
    """
    from keelwork.adapters.data.readers import read_table

    reference = resolved.spec.monitoring.reference
    names = [f.name for f in resolved.spec.contract.inputs]
    if not names:
        raise DrillUnavailable("no rows to send: keel.yaml declares no contract.inputs")
    if not reference:
        return contract_rows(resolved.spec.contract)
    table = read_table(resolved.resolve_path(reference), columns=names)
    rows: list[dict[str, Any]] = table.slice(0, MAX_ROWS).to_pylist()
    return rows


def contract_rows(contract: ContractSection) -> list[dict[str, Any]]:
    """Rows made from the contract: each field's low end, middle and high end (categories in
    turn), checked against the contract.

    Raises:
        DrillUnavailable: a field's type cannot be made up (a tensor), or a row fails the
            contract.
    """
    from keelwork.core.contracts.record import compile_contract

    rows: list[dict[str, Any]] = [{}, {}, {}]
    for f in contract.inputs:
        for i, row in enumerate(rows):
            row[f.name] = _made_up(f, i)
    validator = compile_contract(contract)
    for row in rows:
        if problems := validator.validate(row):
            p = problems[0]
            raise DrillUnavailable(f"no rows to send: set monitoring.reference (a row made "
                                   f"from the contract fails it at '{p.path}': {p.rule})")
    return rows


def _made_up(f: FieldSpec, i: int) -> Any:
    if f.type in ("float", "integer"):
        low = f.min if f.min is not None else (f.max - 2 if f.max is not None else 0.0)
        high = f.max if f.max is not None else low + 2
        value = (low, (low + high) / 2, high)[i]
        return float(value) if f.type == "float" else (math.floor if i == 2 else math.ceil)(value)
    if f.type == "boolean":
        return i % 2 == 0
    if f.type == "category" and f.categories:
        return f.categories[i % len(f.categories)]
    if f.type in ("string", "text"):
        return "keel check drill"[: f.max_length].ljust(f.min_length or 0, "x")
    raise DrillUnavailable(f"no rows to send: set monitoring.reference (a '{f.type}' field, "
                           f"'{f.name}', cannot be made up)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(scratch: Scratch, timeout_s: float) -> tuple[subprocess.Popen[bytes], str]:
    """``keel serve`` of ``scratch`` on a free loopback port, once ready; its log is
    ``server.log`` in the scratch directory.

    Raises:
        DrillUnavailable: it exited, or was not ready within ``timeout_s`` (it is killed).
    """
    import httpx

    port = free_port()
    log = scratch.root / "server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(scratch.spec_path), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--log-level", "warning", "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=err, env=scratch.env, cwd=scratch.root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DrillUnavailable("keel serve of the scratch copy exited: "
                                   + (log_tail(log)[-1:] or ["(nothing logged)"])[0][-300:])
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise DrillUnavailable(f"keel serve of the scratch copy was not ready in {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server :func:`start_server` started (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(log: Path, lines: int = 5) -> list[str]:
    """The last ``lines`` lines of a server's log (each cut to 300 characters)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line[-300:] for line in text.strip().splitlines()[-lines:]]


def rule_of(body: bytes) -> str:
    """The rule of the first detail of an error body (``{"details": [{"rule": ...}]}``); ""
    when the body is not one."""
    import orjson

    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    details = parsed.get("details") if isinstance(parsed, dict) else None
    first = details[0] if isinstance(details, list) and details else None
    rule = first.get("rule") if isinstance(first, dict) else None
    return rule if isinstance(rule, str) else ""


@dataclass
class Load:
    """``clients`` threads posting ``rows`` one at a time to model ``model`` of ``base``.

    Use as a context manager: the threads run while the block runs. ``answers`` is guarded
    by ``lock``.
    """

    base: str
    model: str
    rows: list[dict[str, Any]]
    clients: int = 4
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client, args=(w,), daemon=True)
                         for w in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def _client(self, worker: int) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=10) as c:
            i = worker
            while not self._stop.is_set():
                row = self.rows[i % len(self.rows)]
                i += self.clients
                sent = time.monotonic()
                try:
                    r = c.post(f"/v1/models/{self.model}:predict", json={"instances": [row]})
                except httpx.TransportError:
                    with self.lock:
                        self.answers.append(Answer(sent, 0, ""))
                    time.sleep(0.05)
                    continue
                ids: tuple[str, ...] = ()
                if r.status_code == 200:
                    ids = tuple(r.json().get("prediction_ids") or ())
                rule = rule_of(r.content) if 400 <= r.status_code < 500 else ""
                with self.lock:
                    self.answers.append(Answer(sent, r.status_code,
                                               r.headers.get("x-model-version", ""), ids, rule))

    def wait_for(self, done: Any, timeout_s: float) -> bool:
        """Wait until ``done(answers)`` is true (polled every 50 ms); False after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(self.snapshot()):
                return True
            time.sleep(0.05)
        return False


__all__ = ["Answer", "Load", "contract_rows", "drill_rows", "free_port", "log_tail",
           "rule_of", "start_server", "stop_server"]
