"""The processes an engine runs beside its front (keelwork's app on the admin port): stopped
politely, then firmly, when the front stops."""

from __future__ import annotations

import logging
import subprocess

log = logging.getLogger("keelwork.engines")
#: Seconds a terminated daemon is given to stop before it is killed.
DAEMON_GRACE_S = 15.0


def stop_daemon(child: subprocess.Popen[bytes], grace_s: float = DAEMON_GRACE_S) -> None:
    """Terminate ``child`` (SIGTERM: it finishes its requests), then kill it after
    ``grace_s`` seconds."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("daemon %d did not stop in %.0f s: killed", child.pid, grace_s)
        child.kill()
        child.wait()


__all__ = ["DAEMON_GRACE_S", "stop_daemon"]
