"""The Mosec engine's adapter (``keel serve --engine mosec``): the options handed to Mosec, the
missing-extra hint, the daemons' stop, and the refusal that makes Mosec's coordinator answer
keelwork's JSON error body byte for byte (that part needs Mosec: skipped without it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from keelwork.adapters.engines.daemons import stop_daemon
from keelwork.adapters.engines.mosec_front import (
    MosecConfig,
    mosec_argv,
    predict_route,
    require_mosec,
)
from keelwork.errors import MissingExtraError


def _config(**extra: object) -> MosecConfig:
    return MosecConfig(models=["m"], max_batch_size={"m": 32}, host="127.0.0.1", port=8123,
                       handler="pkg.mod:factory", work_dir=Path("/tmp/w"), **extra)  # type: ignore[arg-type]


def test_mosec_reads_where_to_listen_and_never_waits_for_a_batch() -> None:
    argv = mosec_argv(_config(timeout_ms=4000, max_body_bytes=1000))
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options == {"--address": "127.0.0.1", "--port": "8123", "--path": "/tmp/w",
                       "--timeout": "4000", "--wait": "0", "--max-request-size": "1000",
                       "--log-level": "error"}
    assert predict_route("adder") == "/v1/models/adder:predict"


def test_without_mosec_the_engine_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mosec", None)  # import mosec raises ImportError
    with pytest.raises(MissingExtraError, match=r"keelwork\[mosec\]"):
        require_mosec()


def test_a_daemon_is_terminated_then_killed() -> None:
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_daemon(polite, grace_s=10)
    assert polite.returncode is not None
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                 "print('ready', flush=True)\ntime.sleep(60)"],
                                stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    started = time.monotonic()
    stop_daemon(stubborn, grace_s=0.5)
    assert stubborn.returncode == -9 and time.monotonic() - started < 10
    stubborn.stdout.close()


@pytest.mark.parametrize(("status", "code"), [(400, 2), (422, 4), (503, 8), (500, 8)])
def test_a_refusal_comes_out_of_mosec_as_keelworks_json_body(status: int, code: int) -> None:
    pytest.importorskip("mosec", reason="mosec is not installed (pip install 'keelwork[mosec]')")
    from keelwork.adapters.engines.mosec_workers import mosec_body, refusal

    body = orjson.dumps({"error": "The 'a' field must be >= 0; got -3.\nnext line",
                         "details": [{"path": "instances[0].a", "rule": "min", "got": -3}]})
    exc = refusal(status, body)
    assert int(exc.code) == code  # Mosec's status flags: 400, 422, else 500
    out = mosec_body(exc)
    assert orjson.loads(out) == orjson.loads(body)
    assert out == body.replace(b'{"error":', b'{"error": ', 1)
    with pytest.raises(ValueError, match="not a keelwork error body"):
        refusal(422, b'{"details": []}')
