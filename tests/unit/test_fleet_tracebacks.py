"""tests/fleet.py's ``tracebacks``: the server-log check of the Ray suites leaves out Ray
Serve's own router race, and nothing else."""

from __future__ import annotations

from fleet import tracebacks

P = "\x1b[36m(ServeReplica:live:live pid=26816)\x1b[0m "
Q = "\x1b[36m(ServeReplica:live:live pid=26815)\x1b[0m "
RAY = "/venv/lib/python3.11/site-packages/ray/serve/_private/request_router/request_router.py"
RACE = [
    f"{P}ERROR 2026-12-07 06:00:55,348 live_live -- Unexpected error in "
    "_fulfill_pending_requests.",
    f"{P}Traceback (most recent call last):",
    f'{P}  File "{RAY}", line 1307, in _fulfill_pending_requests',
    f"{Q}INFO keelwork.dashboard read the log in 0.03 s",  # another process, interleaved
    f"{P}    self._fulfill_next_pending_request(",
    f'{P}  File "{RAY}", line 458, in _fulfill_next_pending_request',
    f"{P}    pr.future.set_result(replica)",
    f"{P}asyncio.exceptions.InvalidStateError: invalid state",
]
OURS = [
    f"{Q}Traceback (most recent call last):",
    f'{Q}  File "/src/keelwork/service/gateway/dispatch.py", line 1, in predict',
    f"{Q}ValueError: boom",
]


def test_ray_serves_router_race_is_left_out() -> None:
    assert tracebacks("\n".join(["keel serve started", *RACE, "stopped"])) == []


def test_any_other_traceback_is_found_beside_it() -> None:
    found = tracebacks("\n".join([*RACE, *OURS]))
    assert found == ["\n".join(OURS)]


def test_the_race_is_recognised_only_whole() -> None:
    # another exception after the same message
    other_end = [*RACE[:-1], f"{P}RuntimeError: invalid state"]
    assert len(tracebacks("\n".join(other_end))) == 1
    # a keelwork frame inside it
    ours_inside = [*RACE[:3], f'{P}  File "/src/keelwork/adapters/engines/ray_serve.py", '
                   "line 9, in call", *RACE[3:]]
    assert len(tracebacks("\n".join(ours_inside))) == 1
    # the same traceback without Ray's message before it
    assert len(tracebacks("\n".join(RACE[1:]))) == 1
    # a traceback with no prefix (keel serve's own process)
    assert len(tracebacks("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                          "KeyError: 1")) == 1
