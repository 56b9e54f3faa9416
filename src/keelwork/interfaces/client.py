"""``keelwork.Client`` and ``keelwork.AsyncClient``: a running keelwork server from Python.

Predict (KServe V1 or Open Inference Protocol), send ground truth, and the admin routes
(flags, rollouts, rollback, API keys). A refusal raises the class the server mapped to its
status, with the server's message and every ``{path, rule, got}`` detail: a 422 is a
:class:`~keelwork.errors.ContractViolation` naming each bad field, a 404 a
:class:`~keelwork.errors.ModelNotFoundError`, a 409 a rollout ``TransitionError``, a 401 or a
missing scope an :class:`~keelwork.errors.AuthError`, ... (:mod:`keelwork.interfaces.
client_errors`). A server that cannot be reached raises httpx's ``TransportError``.

Examples:
    >>> import keelwork
    >>> with keelwork.Client(url, api_key=admin_key) as client:
    ...     answer = client.predict("credit", rows[:2])
    ...     client.feedback({answer.prediction_ids[0]: "good"})["stored"]
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from keelwork.interfaces import client_calls as calls
from keelwork.interfaces.client_calls import Call, Prediction
from keelwork.service.project_reports import RolloutStatus

T = TypeVar("T")


class Client:
    """A synchronous client of one keelwork server.

    Args:
        url: The server's base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: Sent as ``Authorization: Bearer <key>`` (``keel keys create``).
        timeout: Seconds per request.
        headers: Sent with every request (e.g. the tenant header).
        transport: An httpx transport (tests: ``httpx.MockTransport``, a WSGI/ASGI one).
        http_client: An ``httpx.Client`` to send with instead of one of its own (its base URL
            is used; ``url`` is then only a label). It is not closed by :meth:`close`.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 30.0,
                 headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 http_client: httpx.Client | None = None) -> None:
        self.url = url
        self._owned = http_client is None
        self._http = http_client or httpx.Client(base_url=url, timeout=timeout,
                                                 transport=transport)
        self._headers = calls.auth_headers(api_key, headers)

    def _send(self, call: Call[T]) -> T:
        request = call.request(self._http)
        request.headers.update({k: v for k, v in self._headers.items()
                                if k not in request.headers})
        return call.answer(self._http.send(request))

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` given)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                 ) -> None:
        self.close()

    # ------------------------------------------------------------------ predict
    def predict(self, model: str, instances: Any, *, ref: str | None = None,
                probabilities: bool = False, protocol: str = "v1",
                user: str | None = None) -> Prediction:
        """Predict one answer per instance.

        Args:
            model: The model name.
            instances: Records (dicts), values, or a pandas/polars DataFrame or Arrow table
                (one record per row; gaps are sent as null).
            ref: An alias or version (``"champion"``, ``"3"``); default: what the model
                serves now.
            probabilities: Also return a classifier's class probabilities.
            protocol: ``"v1"`` (KServe V1) or ``"v2"`` (Open Inference Protocol; records
                become one tensor per field).
            user: Keeps this user on one rollout arm and flag bucket (``x-keel-user``).

        Returns:
            The predictions with their ids (for :meth:`feedback`) and the version that
            answered.

        Raises:
            ContractViolation: an instance breaks the contract; each detail names the field.
            ModelNotFoundError: no such model, alias or version.
            ModelRefError: a malformed ``ref``.
            RefNotAllowedError: ``guards.version_refs`` keeps this key from ``ref``.
            AuthError: the server wants a (``predict``) API key.
            Overloaded: the server is at its concurrency limit (``retry_after``).
            ModelTimeout: the model did not answer in time.
            PredictionError: the model failed.

        Examples:
            >>> answer = client.predict("credit", rows[:2], probabilities=True)
            >>> len(answer.predictions), answer.version
            (2, 1)
        """
        return self._send(calls.predict(model, instances, ref=ref, probabilities=probabilities,
                                        protocol=protocol, user=user))

    def infer(self, model: str, body: Mapping[str, Any], *, version: str | None = None
              ) -> dict[str, Any]:
        """Send a whole Open Inference Protocol request; return the answer as it comes.

        Args:
            model: The model name.
            body: The V2 request (``inputs``, ``parameters``, ...).
            version: A version or alias to ask for (default: what the model serves now).

        Returns:
            The V2 response as JSON.

        Raises:
            ContractViolation: the contract's errors name V2 paths (``inputs[1].data[3]``).
            RequestRefused: a malformed body (400).
        """
        return self._send(calls.infer(model, body, version))

    def feedback(self, labels: Sequence[Mapping[str, Any]] | Mapping[str, Any]
                 ) -> dict[str, Any]:
        """Send ground truth for earlier predictions (``POST /v1/feedback``).

        Args:
            labels: ``{prediction_id: label}``, or records ``{"prediction_id", "label",
                "ts"?}``.

        Returns:
            The server's tally: received, stored, duplicates, relabelled, unknown ids.

        Raises:
            ContractViolation: a label is not a value of the contract's output (nothing is
                stored); details name ``labels[i].label``.
            RelabelRefused: a label set by another labeller (``guards.relabel``).
            AuthError: the route wants a ``feedback`` key.
        """
        return self._send(calls.feedback(labels))

    def model(self, model: str) -> dict[str, Any]:
        """The model's status (``GET /v1/models/{model}``).

        Args:
            model: The model name.

        Returns:
            Its name, version and whether it is ready.

        Raises:
            ModelNotFoundError: no such model.
        """
        return self._send(calls.model_status(model))

    def metadata(self, model: str, version: str | None = None) -> dict[str, Any]:
        """Open Inference Protocol metadata of a model.

        Args:
            model: The model name.
            version: One version's metadata (default: what the model serves now).

        Returns:
            The versions served, the inputs and the outputs.

        Raises:
            ModelNotFoundError: no such model or version.
        """
        return self._send(calls.metadata(model, version))

    def ready(self) -> dict[str, Any]:
        """``/v2/health/ready``: ``ready``, ``degraded`` components and why."""
        return self._send(calls.get("/v2/health/ready", (200, 503)))

    # ------------------------------------------------------------------ admin
    def flags(self) -> dict[str, Any]:
        """The flags in force, the broken ones and failed evaluations (admin).

        Raises:
            AuthError: the key lacks the ``admin`` scope.
        """
        return self._send(calls.get("/v1/admin/flags"))

    def put_flag(self, flag: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a flag; effective on this server before the answer (admin).

        Args:
            flag: The flag, as ``keel flags`` stores it (``name``, ``model``, rules, ...).

        Returns:
            The flag as stored.

        Raises:
            InvalidInputError: the flag has no ``name`` (nothing is sent).
            ContractViolation: the flag is invalid, or serves a version the model lacks (422).
        """
        return self._send(calls.put_flag(flag))

    def delete_flag(self, name: str) -> None:
        """Remove a stored flag (admin).

        Args:
            name: The flag's name.

        Raises:
            ModelNotFoundError: no stored flag has that name (404).
        """
        self._send(calls.delete_flag(name))

    def start_rollout(self, model: str, to: int, *, strategy: str | None = None,
                      interval: str | None = None, from_version: int | None = None
                      ) -> RolloutStatus:
        """Start a rollout with keel.yaml's ``rollout`` settings (admin).

        Args:
            model: The model.
            to: The challenger version.
            strategy: ``canary``, ``shadow`` or ``ab`` (default: keel.yaml's).
            interval: The analysis interval, e.g. ``"30s"`` (default: keel.yaml's).
            from_version: The champion (default: the ``champion`` alias).

        Returns:
            The new rollout and its first event.

        Raises:
            TransitionError: an active rollout, or ``to`` is the champion (409).
            ModelLoadError: a version does not load (422).
            ModelNotFoundError: the model is not served here.
        """
        return self._send(calls.start_rollout(
            model, to, strategy, interval, from_version))

    def rollout(self, model: str) -> RolloutStatus:
        """The model's latest rollout and its events (admin).

        Args:
            model: The model.

        Returns:
            The rollout (``phase``, ``weight``, ...) and its events.

        Raises:
            ModelNotFoundError: the model never had a rollout.
        """
        return self._send(calls.rollout_status(model))

    def rollout_action(self, model: str, action: str, *, force: bool = False
                       ) -> RolloutStatus:
        """``promote``, ``pause``, ``resume``, ``abort`` or ``retry`` the latest rollout.

        Args:
            model: The model.
            action: The action.
            force: Promote a version whose earlier rollout was aborted.

        Returns:
            The rollout after the action.

        Raises:
            TransitionError: the phase does not allow it (409).
        """
        return self._send(calls.rollout_action(model, action, force))

    def rollback(self, model: str) -> int:
        """Serve the previous champion again (admin).

        Args:
            model: The model.

        Returns:
            The version now serving.

        Raises:
            TransitionError: nothing to roll back to (409).
        """
        return self._send(calls.rollback(model))

    def api_keys(self) -> list[dict[str, Any]]:
        """Every API key: id, name, scopes, creator, last use, revoked (admin)."""
        return self._send(calls.get("/v1/admin/keys"))

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key: refused by this server from the next request on (admin).

        Args:
            key_id: The key's id (``keel keys list``, :meth:`api_keys`).

        Returns:
            The revoked key's record.

        Raises:
            AuthError: no key has that id (404).
        """
        return self._send(calls.revoke_key(key_id))


class AsyncClient:
    """The asynchronous twin of :class:`Client`: the same methods, awaited.

    Args:
        url: The server's base URL.
        api_key: Sent as ``Authorization: Bearer <key>``.
        timeout: Seconds per request.
        headers: Sent with every request.
        transport: An httpx async transport (e.g. ``httpx.ASGITransport(app)``).
        http_client: An ``httpx.AsyncClient`` to send with (not closed by :meth:`aclose`).

    Examples:
        >>> async def score(rows):
        ...     async with keelwork.AsyncClient(url) as client:
        ...         return (await client.predict("credit", rows)).predictions
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 30.0,
                 headers: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient(base_url=url, timeout=timeout,
                                                      transport=transport)
        self._headers = calls.auth_headers(api_key, headers)

    async def _send(self, call: Call[T]) -> T:
        request = call.request(self._http)
        request.headers.update({k: v for k, v in self._headers.items()
                                if k not in request.headers})
        return call.answer(await self._http.send(request))

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` given)."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        await self.aclose()

    async def predict(self, model: str, instances: Any, *, ref: str | None = None,
                      probabilities: bool = False, protocol: str = "v1",
                      user: str | None = None) -> Prediction:
        """Predict one answer per instance; :meth:`Client.predict`, awaited.

        Args:
            model: The model name.
            instances: Records, values, or a DataFrame or Arrow table (one record per row).
            ref: An alias or version; default: what the model serves now.
            probabilities: Also return a classifier's class probabilities.
            protocol: ``"v1"`` (KServe V1) or ``"v2"`` (Open Inference Protocol).
            user: Keeps this user on one rollout arm and flag bucket.

        Returns:
            The predictions, their ids and the version that answered.

        Raises:
            ContractViolation: an instance breaks the contract (422).
            ModelNotFoundError: no such model, alias or version (404).
            ModelRefError: a malformed ``ref``.
            RefNotAllowedError: this key may not pick a version with ``ref``.
            AuthError: the server wants a (``predict``) API key.
            Overloaded: the server is at its concurrency limit.
            ModelTimeout: the model did not answer in time.
            PredictionError: the model failed.
        """
        return await self._send(calls.predict(
            model, instances, ref=ref, probabilities=probabilities, protocol=protocol,
            user=user))

    async def infer(self, model: str, body: Mapping[str, Any], *,
                    version: str | None = None) -> dict[str, Any]:
        """:meth:`Client.infer`, awaited."""
        return await self._send(calls.infer(model, body, version))

    async def feedback(self, labels: Sequence[Mapping[str, Any]] | Mapping[str, Any]
                       ) -> dict[str, Any]:
        """:meth:`Client.feedback`, awaited."""
        return await self._send(calls.feedback(labels))

    async def model(self, model: str) -> dict[str, Any]:
        """:meth:`Client.model`, awaited."""
        return await self._send(calls.model_status(model))

    async def metadata(self, model: str, version: str | None = None) -> dict[str, Any]:
        """:meth:`Client.metadata`, awaited."""
        return await self._send(calls.metadata(model, version))

    async def ready(self) -> dict[str, Any]:
        """:meth:`Client.ready`, awaited."""
        return await self._send(
            calls.get("/v2/health/ready", (200, 503)))

    async def flags(self) -> dict[str, Any]:
        """:meth:`Client.flags`, awaited."""
        return await self._send(calls.get("/v1/admin/flags"))

    async def put_flag(self, flag: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`Client.put_flag`, awaited."""
        return await self._send(calls.put_flag(flag))

    async def delete_flag(self, name: str) -> None:
        """:meth:`Client.delete_flag`, awaited."""
        await self._send(calls.delete_flag(name))

    async def start_rollout(self, model: str, to: int, *, strategy: str | None = None,
                            interval: str | None = None, from_version: int | None = None
                            ) -> RolloutStatus:
        """:meth:`Client.start_rollout`, awaited."""
        return await self._send(calls.start_rollout(
            model, to, strategy, interval, from_version))

    async def rollout(self, model: str) -> RolloutStatus:
        """:meth:`Client.rollout`, awaited."""
        return await self._send(calls.rollout_status(model))

    async def rollout_action(self, model: str, action: str, *, force: bool = False
                             ) -> RolloutStatus:
        """:meth:`Client.rollout_action`, awaited."""
        return await self._send(
            calls.rollout_action(model, action, force))

    async def rollback(self, model: str) -> int:
        """:meth:`Client.rollback`, awaited."""
        return await self._send(calls.rollback(model))

    async def api_keys(self) -> list[dict[str, Any]]:
        """:meth:`Client.api_keys`, awaited."""
        return await self._send(calls.get("/v1/admin/keys"))

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        """:meth:`Client.revoke_key`, awaited."""
        return await self._send(calls.revoke_key(key_id))


__all__ = ["AsyncClient", "Client", "Prediction"]
