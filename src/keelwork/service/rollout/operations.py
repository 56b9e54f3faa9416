"""Rollout operations shared by ``keel rollout``, the admin HTTP routes and the controller.

They act on the store and the registry only, so the CLI works without a server; a running
server's :class:`~keelwork.service.rollout.controller.RolloutController` sees each change at its
next poll (a fraction of a second) and re-routes traffic. Alias moves go through the registry
(which records them in its alias history and the audit log); rollout transitions through the
rollout store (its events table and the audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from keelwork.adapters.stores.registry_store import SqlRegistry, default_actor
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.core.registry import DEFAULT_ALIAS
from keelwork.core.rollout.rollback import ChampionMove, rollback_target
from keelwork.core.rollout.state import Rollout, RolloutEvent, parse_interval
from keelwork.errors import (
    ArtifactError,
    ModelLoadError,
    ModelNotFoundError,
    SpecError,
    TransitionError,
)
from keelwork.spec.model import RolloutSection


@dataclass
class RolloutOps:
    """Start, inspect and steer rollouts.

    Args:
        store: The rollout store.
        registry: The model registry (champion alias moves).
        verify: Loads (model, version) as a server would and raises when it cannot
            (:func:`keelwork.service.models.load_verifier`); None: not checked.
        tests_gate: Why (model, version) may not be rolled out or promoted: its declared
            behavioural tests failed or were not run on it
            (:func:`keelwork.service.model_tests.gate_on_tests`); None: no refusal.
    """

    store: RolloutStore
    registry: SqlRegistry
    verify: Callable[[str, int], None] | None = None
    tests_gate: Callable[[str, int], str | None] | None = None

    def _tests_refusal(self, name: str, version: int, skip_tests: bool, what: str) -> str:
        """The note a start or promote records when ``skip_tests`` overrides the tests gate
        ("" when nothing is overridden).

        Raises:
            TransitionError: the gate refuses and ``skip_tests`` is off.
        """
        why = self.tests_gate(name, version) if self.tests_gate is not None else None
        if why is None:
            return ""
        if not skip_tests:
            raise TransitionError(f"Cannot {what} version {version} of '{name}': {why}. To go "
                                  "ahead anyway: --skip-tests (HTTP: '?skip_tests=true'), "
                                  "recorded in the audit log.")
        return f"tests skipped (--skip-tests): {why}"

    def close(self) -> None:
        """Close the registry (and with it the store's engine)."""
        self.registry.close()

    def start(self, name: str, to_version: int, section: RolloutSection, *,
              strategy: str | None = None, interval: str | None = None,
              from_version: int | None = None, actor: str | None = None,
              verify: bool = True, skip_tests: bool = False) -> Rollout:
        """Start a rollout of ``name`` to ``to_version`` (keel.yaml's ``rollout`` settings).

        The champion is ``from_version``, else the ``champion`` alias, else the version a bare
        name serves now; the alias is pinned to it so that registering versions later never
        shifts traffic behind the rollout's back. Both versions are loaded first (with
        ``verify`` and a verifier set): a rollout that could never route is refused, never
        stored. A challenger whose model declares tests must have passed them
        (``tests_gate``); ``skip_tests`` overrides that, recorded in the first event's reason
        (and so in the audit log).

        Raises:
            ModelNotFoundError: no such model or version.
            ModelLoadError: a version does not load (ArtifactError: its artifact is missing).
            TransitionError: the model already has an active rollout, the challenger is
                the champion, or its declared tests failed or were not run on it.
            SpecError: the strategy or interval is invalid.
        """
        who = actor or default_actor(self.registry.user)
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
        skipped = self._tests_refusal(name, to_version, skip_tests, "roll out")
        chosen = strategy or section.strategy
        if chosen not in ("canary", "shadow", "ab"):
            raise SpecError(f"A rollout strategy must be canary, shadow or ab; got "
                            f"{chosen!r}.")
        interval_s = parse_interval(interval or section.interval)
        if verify and self.verify is not None:
            for version in (to_version, from_version):
                try:
                    self.verify(name, version)
                except (ModelLoadError, ArtifactError) as exc:
                    raise ModelLoadError(f"Version {version} of '{name}' cannot be rolled out: "
                                         f"it does not load: {exc.message}",
                                         exc.details) from None
        gates: dict[str, float | None] = dict(section.gates.model_dump())
        rollout = Rollout(model=name, champion=from_version, challenger=to_version,
                          strategy=chosen,  # type: ignore[arg-type]
                          steps=tuple(section.steps), interval_s=interval_s,
                          min_requests=section.min_requests, max_failures=section.max_failures,
                          gates=gates)
        last = self.store.latest(name)
        # Retrying an aborted rollout is a new rollout with the same target (Argo Rollouts
        # #841 needed a spec change); its first event says which one it retries.
        retry = last is not None and last.phase == "aborted" and last.challenger == to_version
        why = f"retry of rollout {last.id}" if retry and last else "started"
        # The pin commits with the rollout or not at all: a refused start moves nothing.
        started, _ = self.store.create(
            rollout, actor=who, reason=f"{why}; {skipped}" if skipped else why,
            also=self._pin(who))
        return started

    def _pin(self, who: str) -> Callable[[Connection, Rollout], None]:
        """Pin the ``champion`` alias to a rollout's champion, inside the store's transaction
        (registering versions later then never shifts traffic behind the rollout's back)."""
        def pin(conn: Connection, rollout: Rollout) -> None:
            self.registry.set_alias_in(conn, rollout.model, rollout.champion, DEFAULT_ALIAS,
                                       actor=who, reason="pinned as the champion of a rollout")
        return pin

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
            expect_revision: int | None = None, force: bool = False,
            skip_tests: bool = False) -> Rollout:
        """Apply ``action`` (pause, resume, promote, abort, retry, advance, hold) to the
        model's latest rollout.

        A transition that promotes (``promote``, or ``advance`` from the last step) moves the
        ``champion`` alias to the challenger in the same transaction as the phase: nobody reads
        "promoted" beside the old champion.

        A ``retry`` runs against the champion now (the ``champion`` alias, else the version a
        bare name serves), as a start would: the alias may have moved since the abort. It is
        pinned in the retry's transaction.

        Args:
            force: Promote by hand a version whose earlier rollout was aborted; the promote
                event (and its audit entry) then records the warning.
            skip_tests: Promote or retry even a challenger whose declared tests failed or
                were not run on it; the event (and its audit entry) records it.

        Raises:
            ModelNotFoundError: the model never had a rollout.
            TransitionError: the phase does not allow it, a hand promote of a version with
                an aborted rollout without ``force``, a promote or retry of one whose
                declared tests failed or were not run on it without ``skip_tests``, or a
                retry whose challenger is the champion now.
        """
        who = actor or default_actor(self.registry.user)
        current, _ = self.status(name)
        champion: int | None = None
        if action == "retry" and current.phase == "aborted":
            skipped = self._tests_refusal(name, current.challenger, skip_tests,
                                          "retry the rollout of")
            if skipped:
                reason = f"{reason}; {skipped}" if reason else skipped
            champion = self.registry.resolve(name).version
            if champion != current.champion:
                moved = (f"champion now version {champion} (the rollout had "
                         f"{current.champion})")
                reason = f"{reason}; {moved}" if reason else moved
        if action == "promote" and current.active:
            warning = self.aborted_warning(current)
            if warning and not force:
                raise TransitionError(f"{warning}; promote again with --force (HTTP: "
                                      "'?force=true') to promote it anyway.")
            if warning:
                reason = f"{reason}; forced: {warning}" if reason else f"forced: {warning}"
            skipped = self._tests_refusal(name, current.challenger, skip_tests, "promote")
            if skipped:
                reason = f"{reason}; {skipped}" if reason else skipped

        def move_alias(conn: Connection, new: Rollout) -> None:
            if new.phase == "promoted" and current.phase != "promoted":
                self.registry.set_alias_in(conn, name, new.challenger, DEFAULT_ALIAS,
                                           actor=who, reason=f"rollout {new.id} promoted")
            elif champion is not None:
                self._pin(who)(conn, new)

        new, _ = self.store.transition(current.id, action, actor=who, reason=reason,
                                       decision=decision, expect_revision=expect_revision,
                                       also=move_alias, champion=champion)
        return new

    def aborted_warning(self, rollout: Rollout) -> str:
        """Why promoting ``rollout``'s challenger by hand deserves a warning ("" if it does
        not): this rollout was aborted before its retry, or an earlier rollout of the same
        version was aborted."""
        aborts = [e for e in self.store.events(rollout.id) if e.action == "abort"]
        if aborts:
            return (f"version {rollout.challenger} of '{rollout.model}' was not promoted by "
                    f"its analysis: rollout {rollout.id} was aborted before its retry "
                    f"({aborts[-1].reason or 'no reason given'})")
        earlier = [s for s in self.store.setbacks(rollout.model)
                   if s.version == rollout.challenger and s.at < rollout.created_at
                   and s.kind == "aborted"]
        if not earlier:
            return ""
        last = max(earlier, key=lambda s: s.at)
        return (f"version {rollout.challenger} of '{rollout.model}' was not promoted by its "
                f"analysis: {last.why}")

    def rollback(self, name: str, *, actor: str | None = None, reason: str = "") -> int:
        """Serve the previous champion again; during an active rollout, abort it instead.

        The previous champion is the one before the current in the ``champion`` alias's
        history, skipping versions that were rolled back from or aborted
        (:func:`keelwork.core.rollout.rollback.rollback_target`). The alias move, the
        rollback's record and a promoted rollout's ``rolled_back`` phase commit together.

        Returns:
            The version now serving.

        Raises:
            TransitionError: there is nothing to roll back to (never a flip back).
            ModelNotFoundError: no such model.
        """
        who = actor or default_actor(self.registry.user)
        latest = self.store.latest(name)
        if latest is not None and latest.active:
            self.store.transition(latest.id, "abort", actor=who,
                                  reason=reason or "rollback requested")
            return latest.champion
        current = self.registry.resolve(name).version
        moves = [ChampionMove(c.from_version, c.to_version, c.changed_at.timestamp())
                 for c in self.registry.alias_history(name) if c.alias == DEFAULT_ALIAS]
        plan = rollback_target(moves, current, self.store.setbacks(name))
        if plan.target is None:
            skipped = f"; skipped {', '.join(plan.skipped)}" if plan.skipped else ""
            raise TransitionError(
                f"Model '{name}' has nothing to roll back to: its champion is version "
                f"{current} and no earlier champion remains that was not rolled back from or "
                f"aborted{skipped}. Name the version to serve with 'keel models alias {name} "
                f"VERSION champion'.")
        previous = plan.target
        why = reason or f"rollback from version {current}"

        def move_alias(conn: Connection) -> None:
            self.registry.set_alias_in(conn, name, previous, DEFAULT_ALIAS, actor=who,
                                       reason=why)

        promoted = (latest is not None and latest.phase == "promoted"
                    and latest.challenger == current)
        self.store.record_rollback(
            name, current, previous, actor=who,
            reason=reason or f"champion back to version {previous}",
            rollout_id=latest.id if promoted and latest is not None else None,
            also=move_alias)
        return previous


def open_rollout_ops(project_dir: Path, storage_url: str | None = None, *,
                     user: str | None = None, audit_anchor: Path | None = None) -> RolloutOps:
    """Open the registry and rollout store of a project (both audited to its audit log).

    Close with ``ops.close()``.

    Args:
        project_dir: The project directory.
        storage_url: Its store; default the project's SQLite file.
        user: Who acts when a call names no actor (the ``user`` setting); default the OS user.
        audit_anchor: A second audit anchor file (the ``audit_anchor`` setting).

    Raises:
        StoreError: the store is unreachable.
    """
    from keelwork.adapters.stores.registry_store import open_registry

    registry = open_registry(project_dir, storage_url, user=user, audit_anchor=audit_anchor)
    try:
        store = RolloutStore(registry.engine, registry.audit)
        store.ensure_schema()
    except BaseException:
        registry.close()
        raise
    return RolloutOps(store, registry)
