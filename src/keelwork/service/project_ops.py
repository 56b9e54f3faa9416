"""``Project.rollout`` and ``Project.audit``: rollouts and the audit log from Python.

The same operations as ``keel rollout ...`` / ``keel rollback`` and ``keel audit verify|head``,
on the project's store: a running server picks a rollout change up at its next poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.service.project_reports import AuditVerification, RolloutStatus

if TYPE_CHECKING:
    from keelwork.service.rollout.operations import RolloutOps
    from keelwork.spec.settings import Settings


class Rollouts:
    """Start, inspect and steer a model's rollouts (``project.rollout``).

    Every call opens the store, acts and closes it again; each transition is recorded in the
    rollout's events and in the audit log with ``actor`` (default ``$KEELWORK_USER``, else the
    OS user).

    Examples:
        >>> new = project.register(model, "credit")
        >>> status = project.rollout.start("credit", to=new.version, strategy="canary")
        >>> status.phase, status.weight
        ('progressing', 5)
        >>> project.rollout.abort("credit").phase
        'aborted'
    """

    def __init__(self, project_dir: Path, settings: Settings) -> None:
        self._dir = project_dir
        self._settings = settings

    @contextmanager
    def _ops(self) -> Iterator[RolloutOps]:
        from keelwork.service.projects import rollout_ops

        with rollout_ops(self._dir, self._settings) as ops:
            yield ops

    def _actor(self, given: str | None) -> str:
        from keelwork.service.projects import actor

        return actor(given, self._settings)

    def _status(self, ops: RolloutOps, name: str) -> RolloutStatus:
        rollout, events = ops.status(name)
        return RolloutStatus(rollout.as_dict(), tuple(e.as_dict() for e in events))

    def start(self, name: str, to: int, *, strategy: str | None = None,
              interval: str | None = None, from_version: int | None = None,
              actor: str | None = None, skip_tests: bool = False) -> RolloutStatus:
        """Start a rollout of ``name`` to version ``to`` with keel.yaml's ``rollout`` settings.

        Args:
            name: The model.
            to: The challenger version.
            strategy: ``canary``, ``shadow`` or ``ab`` (default: keel.yaml's).
            interval: The analysis interval, e.g. ``"30s"`` (default: keel.yaml's).
            from_version: The champion (default: the ``champion`` alias).
            actor: Who acts, for the audit log.
            skip_tests: Start even though ``to``'s declared tests failed or were not run on
                it (recorded in the first event and the audit log).

        Returns:
            The new rollout and its first event.

        Raises:
            ModelNotFoundError: no such model or version.
            ModelLoadError: a version does not load as the server would load it.
            TransitionError: the model already has an active rollout, ``to`` is the
                champion, or its declared tests failed or were not run on it.
            SpecError: the strategy or interval is invalid.
        """
        from keelwork.service.projects import rollout_section

        section = rollout_section(self._dir)
        with self._ops() as ops:
            rollout = ops.start(name, to, section, strategy=strategy, interval=interval,
                                from_version=from_version, actor=self._actor(actor),
                                skip_tests=skip_tests)
            return self._status(ops, rollout.model)

    def status(self, name: str) -> RolloutStatus:
        """The model's latest rollout and every event (with the gates' observed values).

        Args:
            name: The model.

        Returns:
            The rollout (``phase``, ``weight``, ...) and its events, oldest first.

        Raises:
            ModelNotFoundError: the model never had a rollout.
        """
        with self._ops() as ops:
            return self._status(ops, name)

    def _act(self, name: str, action: str, actor: str | None, reason: str,
             force: bool = False, skip_tests: bool = False) -> RolloutStatus:
        with self._ops() as ops:
            ops.act(name, action, actor=self._actor(actor),
                    reason=reason or f"{action} via the Python API",
                    force=force, skip_tests=skip_tests)
            return self._status(ops, name)

    def promote(self, name: str, *, force: bool = False, actor: str | None = None,
                reason: str = "", skip_tests: bool = False) -> RolloutStatus:
        """Make the challenger the champion now (moves the ``champion`` alias).

        Args:
            name: The model.
            force: Promote even a version whose earlier rollout was aborted (the warning is
                recorded in the event and the audit log).
            actor: Who acts.
            reason: Why (recorded with the event).
            skip_tests: Promote even a challenger whose declared tests failed or were not
                run on it (recorded in the event and the audit log).

        Returns:
            The rollout after the promotion.

        Raises:
            TransitionError: the phase does not allow it, or an aborted version without
                ``force``.
            ModelNotFoundError: the model never had a rollout.
        """
        return self._act(name, "promote", actor, reason, force, skip_tests)

    def pause(self, name: str, *, actor: str | None = None, reason: str = "") -> RolloutStatus:
        """Hold the current weights; analysis stops until :meth:`resume`.

        Args:
            name: The model.
            actor: Who acts.
            reason: Why (recorded with the event).

        Returns:
            The rollout, paused.

        Raises:
            TransitionError: the phase does not allow it.
            ModelNotFoundError: the model never had a rollout.
        """
        return self._act(name, "pause", actor, reason)

    def resume(self, name: str, *, actor: str | None = None, reason: str = "") -> RolloutStatus:
        """Continue a paused rollout.

        Args:
            name: The model.
            actor: Who acts.
            reason: Why (recorded with the event).

        Returns:
            The rollout, resumed.

        Raises:
            TransitionError: the phase does not allow it.
            ModelNotFoundError: the model never had a rollout.
        """
        return self._act(name, "resume", actor, reason)

    def abort(self, name: str, *, actor: str | None = None, reason: str = "") -> RolloutStatus:
        """Send all traffic back to the champion.

        Args:
            name: The model.
            actor: Who acts.
            reason: Why (recorded with the event).

        Returns:
            The rollout, aborted.

        Raises:
            TransitionError: the phase does not allow it.
            ModelNotFoundError: the model never had a rollout.
        """
        return self._act(name, "abort", actor, reason)

    def retry(self, name: str, *, actor: str | None = None, reason: str = "",
              skip_tests: bool = False) -> RolloutStatus:
        """Run an aborted rollout again from its first step, against the champion now.

        Args:
            name: The model.
            actor: Who acts.
            reason: Why (recorded with the event).
            skip_tests: Retry even a challenger whose declared tests failed or were not run
                on it (recorded in the event and the audit log).

        Returns:
            The rollout, restarted.

        Raises:
            TransitionError: the phase does not allow it, the challenger's declared tests
                failed or were not run on it (without ``skip_tests``), or it is the champion
                now.
            ModelNotFoundError: the model never had a rollout.
        """
        return self._act(name, "retry", actor, reason, skip_tests=skip_tests)

    def rollback(self, name: str, *, actor: str | None = None, reason: str = "") -> int:
        """Serve the previous champion again (aborts an active rollout instead).

        Args:
            name: The model.
            actor: Who acts.
            reason: Why (recorded with the event and the audit log).

        Returns:
            The version now serving.

        Raises:
            TransitionError: nothing to roll back to (versions rolled back from or aborted are
                skipped; never a flip back).
            ModelNotFoundError: no such model.
        """
        with self._ops() as ops:
            return ops.rollback(name, actor=self._actor(actor), reason=reason)


class Audit:
    """The project's hash-chained audit log (``project.audit``).

    Examples:
        >>> project.audit.verify().ok
        True
    """

    def __init__(self, project_dir: Path, settings: Settings) -> None:
        self._dir = project_dir
        self._settings = settings

    def verify(self, anchor: dict[str, Any] | None = None) -> AuditVerification:
        """Check the whole chain, the ``audit_head`` row and the anchors the project keeps
        (``.keel/audit-anchor.json``, ``$KEELWORK_AUDIT_ANCHOR``), as ``keel audit verify``
        does.

        Args:
            anchor: A head saved earlier (what :meth:`head` returns): also catches a rewrite
                of the database and the project files up to that entry.

        Returns:
            The verdict; falsy when broken, naming the first bad entry.

        Raises:
            AuditError: ``anchor`` is not a head (``seq``, ``hash`` and ``count``), or an
                anchor file the project keeps is not one.
            StoreError: the store cannot be opened.
        """
        from keelwork.core.audit import ChainHead
        from keelwork.service.audit import verify_head

        pinned = ChainHead.from_dict(anchor) if anchor is not None else None
        result, entry = verify_head(self._dir, pinned, self._settings)
        return AuditVerification(**result.as_dict(), entry=entry)

    def head(self) -> dict[str, Any]:
        """The latest entry's number and hash (``keel audit head``): keep it elsewhere.

        Returns:
            ``{"seq", "hash", "count"}``: what :meth:`verify` takes as ``anchor`` (the
            genesis head when the project has no store yet).

        Raises:
            StoreError: the store cannot be opened.
        """
        from keelwork.service.audit import head

        return dict(head(self._dir, self._settings).as_dict())


__all__ = ["Audit", "Rollouts"]
