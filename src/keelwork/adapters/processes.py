"""Processes of this machine: whether one is still running (the workers of ``keel serve``),
and how many files (sockets included) a server process may hold open.

A server holds one file descriptor per client connection, beside its own (stores, logs,
metric files). ``guards.max_connections`` bounds the connections; the process's open-file
limit must leave room for them, or the server meets EMFILE before its bound and cannot open
its own files. :func:`fit_connections` raises the soft limit to what the bound needs (the hard
limit allows it, as Go's runtime and nginx's ``worker_rlimit_nofile`` do), and refuses a bound
the hard limit cannot hold. Child processes (workers, engines' fronts) inherit the limit.
"""

from __future__ import annotations

import os
import resource

from keelwork.errors import ErrorDetail, SpecError

#: File descriptors kept for the process's own use beside its connections: the store's
#: connections, the prediction log, metric files, model files, the event loop's own.
RESERVED_FILES = 256


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie counts until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def connection_budget(wanted: int, explicit: bool, soft: int,
                      hard: int) -> tuple[int, int, str | None]:
    """The connection bound and the soft open-file limit that holds it, for ``wanted``
    connections under the limits ``soft`` and ``hard`` (``resource.RLIM_INFINITY``: none).

    Returns:
        ``(connections, soft limit to set, note)``: ``wanted`` and at least
        ``wanted + RESERVED_FILES`` when the hard limit allows it; else, for a default
        (``explicit`` False) bound, what the hard limit leaves room for and a note saying so.

    Raises:
        SpecError: an ``explicit`` bound the hard limit cannot hold (the field named).
    """
    need = wanted + RESERVED_FILES
    if hard == resource.RLIM_INFINITY or need <= hard:
        return wanted, soft if soft == resource.RLIM_INFINITY else max(soft, need), None
    room = hard - RESERVED_FILES
    if explicit or room < 1:
        raise SpecError(
            f"guards.max_connections is {wanted}: with {RESERVED_FILES} files for the server's "
            f"own use that needs {need} open files, and this process may open at most {hard} "
            "(its hard limit, `ulimit -Hn`). Lower guards.max_connections or raise the limit.",
            [ErrorDetail("guards.max_connections", "open_files", wanted)])
    return room, hard, (f"this process may open at most {hard} files (`ulimit -Hn`): "
                        f"guards.max_connections is {room} here, not its default {wanted}.")


def fit_connections(wanted: int, explicit: bool) -> tuple[int, str | None]:
    """Raise this process's soft open-file limit so that ``wanted`` connections fit
    (:func:`connection_budget`); the bound to enforce and a note when it is less.

    Raises:
        SpecError: an ``explicit`` bound the hard limit cannot hold.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    connections, raised, note = connection_budget(wanted, explicit, soft, hard)
    if raised != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return connections, note


__all__ = ["RESERVED_FILES", "connection_budget", "fit_connections", "process_alive"]
