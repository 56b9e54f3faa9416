"""How many connections a server process may hold: its open-file limit raised to hold
``guards.max_connections`` (plus its own files), a bound the hard limit cannot hold refused
when keel.yaml sets it, and the default shrunk (with a note) when the machine allows less."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from keelwork.adapters.processes import RESERVED_FILES, connection_budget, process_alive
from keelwork.errors import SpecError

INF = resource.RLIM_INFINITY


def test_the_soft_limit_is_raised_to_what_the_bound_needs_within_the_hard_limit() -> None:
    assert connection_budget(1024, False, 1024, 4096) == (1024, 1024 + RESERVED_FILES, None)
    assert connection_budget(1024, True, 1024, INF) == (1024, 1024 + RESERVED_FILES, None)
    # a soft limit already high enough is left alone, an unlimited one too
    assert connection_budget(64, True, 20_000, 20_000) == (64, 20_000, None)
    assert connection_budget(64, True, INF, INF) == (64, INF, None)


def test_a_bound_past_the_hard_limit_is_refused_when_set_and_shrunk_when_default() -> None:
    with pytest.raises(SpecError, match=r"needs 1280 open files.*at most 512") as refused:
        connection_budget(1024, True, 256, 512)
    assert refused.value.details[0].path == "guards.max_connections"
    connections, soft, note = connection_budget(1024, False, 256, 512)
    assert (connections, soft) == (512 - RESERVED_FILES, 512)
    assert note is not None and f"guards.max_connections is {512 - RESERVED_FILES}" in note
    with pytest.raises(SpecError):  # no room at all, even for the default
        connection_budget(1024, False, 100, RESERVED_FILES)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_the_raised_limit_is_this_process_s_and_its_children_s() -> None:
    """In a process started with a low soft limit: fit_connections raises it, and a child
    process it starts has the raised one."""
    code = (
        "import resource, subprocess, sys\n"
        "from keelwork.adapters.processes import fit_connections\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (300, 4096))\n"
        "print(fit_connections(2000, True))\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "print(subprocess.run([sys.executable, '-c', 'import resource; print(resource."
        "getrlimit(resource.RLIMIT_NOFILE)[0])'], capture_output=True, text=True).stdout)\n")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != INF and hard < 4096:
        pytest.skip(f"this machine's hard open-file limit is {hard}, under 4096")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["(2000,", "None)", str(2000 + RESERVED_FILES), str(2000 + RESERVED_FILES)]


def test_a_process_is_alive_until_it_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert process_alive(proc.pid)
    proc.kill()
    proc.wait()
    assert not process_alive(proc.pid)
