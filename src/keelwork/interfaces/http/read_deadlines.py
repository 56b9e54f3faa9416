"""Body-read deadlines for many concurrent requests, swept by one timer instead of one per read.

``asyncio.timeout`` schedules (and cancels) a timer handle per request: about 5 µs of the event
loop's time each (uvloop, measured in benchmarks/RESULTS.md, issue 19), which the granian
engine paid on every predict. :class:`ReadDeadlines` keeps the reads in flight in a dict and
one periodic sweep, every ``resolution`` seconds while any read is in flight, cancels the tasks
whose deadline has passed. A read is therefore cut between ``timeout`` and ``timeout +
resolution`` seconds after it began, and costs a dict insert and delete.

Use::

    deadlines = ReadDeadlines(timeout=5.0)
    with deadlines.watch() as watch:
        try:
            body = await read()
        except asyncio.CancelledError:
            if watch.expired():  # cut by the sweep: a timeout, not a cancellation
                raise TimeoutError from None
            raise
"""

from __future__ import annotations

import asyncio


class Watch:
    """One read's watch: whether the sweep cut it. Also the ``with`` block that watches it
    (:meth:`ReadDeadlines.watch`): a plain context manager, about a microsecond cheaper per
    request than a generator-based one."""

    __slots__ = ("_cut", "_deadlines", "_task")

    def __init__(self, task: asyncio.Task[object], deadlines: ReadDeadlines) -> None:
        self._task = task
        self._cut = False
        self._deadlines = deadlines

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        del self._deadlines._reads[self]

    def cut(self) -> None:
        """Cancel the read: its deadline has passed (once; the sweep calls it)."""
        if not self._cut:
            self._cut = True
            self._task.cancel()

    def expired(self) -> bool:
        """True when the sweep cancelled this read for its deadline; the task's cancellation
        is then withdrawn (``Task.uncancel``), so the caller may answer instead of stopping."""
        if self._cut:
            self._task.uncancel()
            self._cut = False
            return True
        return False


class ReadDeadlines:
    """Deadlines of the body reads of one event loop.

    Args:
        timeout: Seconds a read may take (``guards.body_read_timeout_s``; may be changed).
        resolution: Seconds between sweeps: a read is cut at most this late. None: a tenth
            of the timeout, at most 0.1 s.
    """

    def __init__(self, timeout: float, resolution: float | None = None) -> None:
        self.timeout = timeout
        self._resolution = resolution
        self._reads: dict[Watch, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the sweep runs on

    @property
    def resolution(self) -> float:
        """Seconds between sweeps."""
        return self._resolution if self._resolution is not None else min(0.1, self.timeout / 10)

    @property
    def in_flight(self) -> int:
        """Reads being watched now."""
        return len(self._reads)

    def watch(self) -> Watch:
        """Watch the current task's read for the length of the ``with`` block it opens.

        Raises:
            RuntimeError: called outside a task.
        """
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop at all
            task = None
        if task is None:
            raise RuntimeError("ReadDeadlines.watch() needs a running task")
        loop = task.get_loop()
        watch = Watch(task, self)
        self._reads[watch] = loop.time() + self.timeout
        if self._sweep is None or self._loop is not loop:  # (a new loop: the old one is gone)
            self._loop = loop
            self._sweep = loop.call_later(self.resolution, self._run, loop)
        return watch

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # a sweep of a loop this object left
            return
        now = loop.time()
        for watch, deadline in self._reads.items():
            if deadline <= now:
                watch.cut()
        self._sweep = (loop.call_later(self.resolution, self._run, loop) if self._reads
                       else None)


__all__ = ["ReadDeadlines", "Watch"]
