"""Rollout operations shared by ``keel rollout``, the admin HTTP routes and the controller.

They act on the store and the registry only, so the CLI works without a server; a running
server's :class:`~keelwork.adapters.rollout.controller.RolloutController` sees each change at its
next poll (a fraction of a second) and re-routes traffic. Alias moves go through the registry
(which records them in its alias history and the audit log); rollout transitions through the
rollout store (its events table and the audit log).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keelwork.adapters.stores.registry_store import SqlRegistry, default_actor
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.core.registry import DEFAULT_ALIAS
from keelwork.core.rollout.state import Rollout, RolloutEvent, TransitionError, parse_interval
from keelwork.errors import ModelNotFoundError, SpecError
from keelwork.spec.model import RolloutSection


@dataclass
class RolloutOps:
    """Start, inspect and steer rollouts.

    Args:
        store: The rollout store.
        registry: The model registry (champion alias moves).
    """

    store: RolloutStore
    registry: SqlRegistry

    def close(self) -> None:
        """Close the registry (and with it the store's engine)."""
        self.registry.close()

    def start(self, name: str, to_version: int, section: RolloutSection, *,
              strategy: str | None = None, interval: str | None = None,
              from_version: int | None = None, actor: str | None = None) -> Rollout:
        """Start a rollout of ``name`` to ``to_version`` (keel.yaml's ``rollout`` settings).

        The champion is ``from_version``, else the ``champion`` alias, else the version a bare
        name serves now; the alias is pinned to it so that registering versions later never
        shifts traffic behind the rollout's back.

        Raises:
            ModelNotFoundError: no such model or version.
            TransitionError: the model already has an active rollout, or the challenger is
                the champion.
            SpecError: the strategy or interval is invalid.
        """
        who = actor or default_actor()
        self.registry.get(name, to_version)
        if from_version is None:
            from_version = self.registry.resolve(name).version
        else:
            self.registry.get(name, from_version)
        if from_version == to_version:
            raise TransitionError(
                f"Version {to_version} of '{name}' is already what '{name}' serves (its champion, "
                "or its latest version when no champion alias is set); roll out another "
                "version, or name the champion with --from VERSION.")
        chosen = strategy or section.strategy
        if chosen not in ("canary", "shadow", "ab"):
            raise SpecError(f"A rollout strategy must be canary, shadow or ab; got "
                            f"{chosen!r}.")
        self.registry.set_alias(name, from_version, DEFAULT_ALIAS, actor=who,
                                reason="pinned as the champion of a rollout")
        gates: dict[str, float | None] = dict(section.gates.model_dump())
        rollout = Rollout(model=name, champion=from_version, challenger=to_version,
                          strategy=chosen,  # type: ignore[arg-type]
                          steps=tuple(section.steps),
                          interval_s=parse_interval(interval or section.interval),
                          min_requests=section.min_requests, max_failures=section.max_failures,
                          gates=gates)
        last = self.store.latest(name)
        # Retrying an aborted rollout is a new rollout with the same target (Argo Rollouts
        # #841 needed a spec change); its first event says which one it retries.
        retry = last is not None and last.phase == "aborted" and last.challenger == to_version
        started, _ = self.store.create(
            rollout, actor=who, reason=f"retry of rollout {last.id}" if retry and last
            else "started")
        return started

    def status(self, name: str) -> tuple[Rollout, list[RolloutEvent]]:
        """The model's latest rollout and its events.

        Raises:
            ModelNotFoundError: the model never had a rollout.
        """
        rollout = self.store.latest(name)
        if rollout is None:
            raise ModelNotFoundError(
                f"Model '{name}' has no rollout; start one with 'keel rollout start {name} "
                "--to VERSION'.")
        return rollout, self.store.events(rollout.id)

    def act(self, name: str, action: str, *, actor: str | None = None, reason: str = "",
            decision: dict[str, Any] | None = None,
            expect_revision: int | None = None) -> Rollout:
        """Apply ``action`` (pause, resume, promote, abort, retry, advance, hold) to the
        model's latest rollout; a promote moves the ``champion`` alias to the challenger.

        Raises:
            ModelNotFoundError: the model never had a rollout.
            TransitionError: the phase does not allow it.
        """
        current, _ = self.status(name)
        new, _ = self.store.transition(current.id, action, actor=actor or default_actor(),
                                       reason=reason, decision=decision,
                                       expect_revision=expect_revision)
        if new.phase == "promoted" and current.phase != "promoted":
            self.registry.set_alias(name, new.challenger, DEFAULT_ALIAS,
                                    actor=actor or default_actor(),
                                    reason=f"rollout {new.id} promoted")
        return new

    def rollback(self, name: str, *, actor: str | None = None, reason: str = "") -> int:
        """Point ``champion`` back at the previous champion; abort an active rollout first.

        Returns:
            The version now serving.

        Raises:
            ModelNotFoundError: the model has no previous champion to go back to.
        """
        who = actor or default_actor()
        latest = self.store.latest(name)
        if latest is not None and latest.active:
            self.store.transition(latest.id, "abort", actor=who,
                                  reason=reason or "rollback requested")
            return latest.champion
        current = self.registry.resolve(name).version
        previous = next((c.from_version for c in reversed(self.registry.alias_history(name))
                         if c.alias == DEFAULT_ALIAS and c.to_version == current
                         and c.from_version is not None and c.from_version != current), None)
        if previous is None:
            raise ModelNotFoundError(
                f"Model '{name}' has no previous champion to roll back to (champion is "
                f"version {current}).")
        self.registry.set_alias(name, previous, DEFAULT_ALIAS, actor=who,
                                reason=reason or f"rollback from version {current}")
        if latest is not None and latest.phase == "promoted" and latest.challenger == current:
            self.store.transition(latest.id, "rollback", actor=who,
                                  reason=reason or f"champion back to version {previous}")
        else:
            self.store.touch()
        return previous


def open_rollout_ops(project_dir: Path, storage_url: str | None = None) -> RolloutOps:
    """Open the registry and rollout store of a project (both audited to its audit log).

    Close with ``ops.close()``.

    Raises:
        StoreError: the store is unreachable.
    """
    from keelwork.adapters.stores.registry_store import open_registry

    registry = open_registry(project_dir, storage_url)
    try:
        store = RolloutStore(registry.engine, registry.audit)
        store.ensure_schema()
    except BaseException:
        registry.close()
        raise
    return RolloutOps(store, registry)
