"""The requests of :class:`keelwork.Client` and :class:`keelwork.AsyncClient`, built once.

Each public method of the two clients builds a :class:`Call` here (method, path, body, how to
read the answer) and sends it with its own transport, so the sync and async clients cannot
drift apart. Bodies are encoded with orjson: numpy values are sent as numbers and a float NaN
(a pandas gap) as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson

from keelwork.errors import ErrorDetail, InvalidInputError
from keelwork.interfaces.client_errors import error_for
from keelwork.service.project_reports import RolloutStatus

#: The header naming an alias or version (``champion``, ``3``).
MODEL_REF_HEADER = "x-keel-model-ref"
#: The header keeping a user on one rollout arm and flag bucket.
STICKY_HEADER = "x-keel-user"
ROLLOUT_ACTIONS = ("promote", "pause", "resume", "abort", "retry")

T = TypeVar("T")


@dataclass(frozen=True)
class Prediction:
    """A predict answer (KServe V1 or Open Inference Protocol).

    Attributes:
        predictions: One prediction per instance, in order.
        model: The model that answered.
        version: Its version.
        prediction_ids: One id per instance: send ground truth for it with ``feedback``.
        answered_by: ``champion``, ``challenger``, ``fallback``, a flag's name, ...
        probabilities: Per instance, class -> probability (when asked for).
        warnings: Output-contract violations (``contract.output_policy: warn``).
    """

    predictions: list[Any]
    model: str
    version: int
    prediction_ids: list[str]
    answered_by: str = ""
    probabilities: list[dict[str, float]] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The answer's fields as a dict."""
        return {"predictions": self.predictions, "model": self.model, "version": self.version,
                "prediction_ids": self.prediction_ids, "answered_by": self.answered_by,
                "probabilities": self.probabilities, "warnings": self.warnings}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    body: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Statuses that are answers rather than errors.
    ok: tuple[int, ...] = (200, 201)

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        headers = dict(self.headers)
        content = None
        if self.body is not None:
            content = orjson.dumps(self.body, option=orjson.OPT_SERIALIZE_NUMPY)
            headers["content-type"] = "application/json"
        return client.build_request(self.method, self.path, content=content,
                                    params=self.params, headers=headers)

    def answer(self, response: httpx.Response) -> T:
        """The answer read, or raise the error the server's answer stands for.

        Raises:
            KeelworkError: of the class the server mapped to the status.
        """
        if response.status_code not in self.ok:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise error_for(response.status_code, body, dict(response.headers),
                            request=f"{self.method} {response.request.url}")
        return self.read(response)


def _json(response: httpx.Response) -> Any:
    return orjson.loads(response.content) if response.content else None


def _nothing(_response: httpx.Response) -> None:
    return None


def _champion(response: httpx.Response) -> int:
    return int(_json(response)["champion"])


def _name(model: str) -> str:
    return quote(model, safe="")


def records_of(instances: Any) -> list[Any]:
    """Instances as a JSON list: a pandas or polars DataFrame or a pyarrow Table becomes one
    record per row (gaps as ``null``); a list stays as it is.

    Raises:
        InvalidInputError: ``instances`` is neither a table nor a list.
    """
    module = type(instances).__module__.split(".", 1)[0]
    if module == "pandas" and hasattr(instances, "to_dict"):
        rows = instances.to_dict(orient="records")
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in row.items()} for row in rows]
    if module == "polars" and hasattr(instances, "to_dicts"):
        return list(instances.to_dicts())
    if module == "pyarrow" and hasattr(instances, "to_pylist"):
        return list(instances.to_pylist())
    if isinstance(instances, list | tuple):
        return list(instances)
    kind = type(instances).__name__
    raise InvalidInputError(f"instances must be a list of records (or values) or a DataFrame; "
                            f"got a {kind}.", [ErrorDetail("instances", "type", kind)])


def _v2_datatype(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool)
                       for v in present):
        return "FP64"
    return "BYTES"


def v2_inputs(records: list[Any]) -> list[dict[str, Any]]:
    """Records as Open Inference Protocol tensors: one ``[N]`` tensor per field."""
    if not records or not all(isinstance(r, Mapping) for r in records):
        raise InvalidInputError("protocol='v2' needs a non-empty list of records (dicts).",
                                [ErrorDetail("instances", "records", None)])
    names = list(dict.fromkeys(k for r in records for k in r))
    tensors = []
    for name in names:
        data = [r.get(name) for r in records]
        tensors.append({"name": name, "datatype": _v2_datatype(data), "shape": [len(data)],
                        "data": data})
    return tensors


def _read_v1(response: httpx.Response) -> Prediction:
    body = _json(response)
    return Prediction(body["predictions"], body["model_name"], int(body["model_version"]),
                      list(body["prediction_ids"]), body.get("answered_by", ""),
                      body.get("probabilities"), list(body.get("warnings", [])))


def _read_v2(response: httpx.Response) -> Prediction:
    body = _json(response)
    params = body.get("parameters") or {}
    tensors = body["outputs"]
    main = next((t for t in tensors if t["name"] != "predict_proba"), tensors[0])
    proba = next((t for t in tensors if t["name"] == "predict_proba"), None)
    probabilities = None
    if proba is not None:
        classes = (proba.get("parameters") or {}).get("classes") or []
        width = len(classes)
        flat = proba["data"]
        probabilities = [dict(zip(classes, flat[i * width:(i + 1) * width], strict=True))
                         for i in range(len(flat) // width if width else 0)]
    ids = [p for p in str(params.get("prediction_ids", "")).split(",") if p]
    return Prediction(list(main["data"]), body["model_name"], int(body["model_version"]), ids,
                      str(params.get("answered_by", "")), probabilities,
                      list(params.get("warnings", [])))


def predict(model: str, instances: Any, *, ref: str | None, probabilities: bool,
            protocol: str, user: str | None) -> Call[Prediction]:
    """``POST /v1/models/{model}:predict`` or ``/v2/models/{model}/infer``."""
    headers = {MODEL_REF_HEADER: ref} if ref else {}
    if user:
        headers[STICKY_HEADER] = user
    records = records_of(instances)
    if protocol == "v1":
        body: dict[str, Any] = {"instances": records}
        if probabilities:
            body["parameters"] = {"probabilities": True}
        return Call("POST", f"/v1/models/{_name(model)}:predict", _read_v1, body,
                    headers=headers)
    if protocol != "v2":
        raise InvalidInputError(f"protocol must be 'v1' or 'v2'; got {protocol!r}.",
                                [ErrorDetail("protocol", "one_of", protocol)])
    v2: dict[str, Any] = {"inputs": v2_inputs(records)}
    if probabilities:
        v2["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    return Call("POST", f"/v2/models/{_name(model)}/infer", _read_v2, v2, headers=headers)


def infer(model: str, body: Mapping[str, Any], version: str | None) -> Call[dict[str, Any]]:
    """``POST /v2/models/{model}[/versions/{version}]/infer`` with a whole OIP body."""
    path = f"/v2/models/{_name(model)}" + (f"/versions/{_name(version)}" if version else "")
    return Call("POST", path + "/infer", _json, dict(body))


def feedback(labels: Sequence[Mapping[str, Any]] | Mapping[str, Any]
             ) -> Call[dict[str, Any]]:
    """``POST /v1/feedback``; a mapping is ``{prediction_id: label}``."""
    items = ([{"prediction_id": k, "label": v} for k, v in labels.items()]
             if isinstance(labels, Mapping) else [dict(x) for x in labels])
    return Call("POST", "/v1/feedback", _json, {"labels": items})


def get(path: str, ok: tuple[int, ...] = (200,)) -> Call[Any]:
    return Call("GET", path, _json, ok=ok)


def model_status(model: str) -> Call[dict[str, Any]]:
    return get(f"/v1/models/{_name(model)}")


def metadata(model: str, version: str | None) -> Call[dict[str, Any]]:
    return get(f"/v2/models/{_name(model)}" + (f"/versions/{_name(version)}" if version
                                                else ""))


def put_flag(flag: Mapping[str, Any]) -> Call[dict[str, Any]]:
    name = flag.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError("The flag needs a 'name'.", [ErrorDetail("name", "required",
                                                                         None)])
    return Call("PUT", f"/v1/admin/flags/{_name(name)}", _json, dict(flag))


def delete_flag(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/admin/flags/{_name(name)}", _nothing, ok=(204,))


def _read_rollout(response: httpx.Response) -> RolloutStatus:
    body = _json(response)
    return RolloutStatus(body["rollout"], tuple(body["events"]))


def start_rollout(model: str, to: int, strategy: str | None, interval: str | None,
                  from_version: int | None) -> Call[RolloutStatus]:
    body: dict[str, Any] = {"model": model, "to": to}
    for key, value in (("strategy", strategy), ("interval", interval),
                       ("from", from_version)):
        if value is not None:
            body[key] = value
    return Call("POST", "/v1/admin/rollouts", _read_rollout, body)


def rollout_status(model: str) -> Call[RolloutStatus]:
    return Call("GET", f"/v1/admin/rollouts/{_name(model)}", _read_rollout)


def rollout_action(model: str, action: str, force: bool = False) -> Call[RolloutStatus]:
    if action not in ROLLOUT_ACTIONS:
        raise InvalidInputError(f"A rollout action is one of {', '.join(ROLLOUT_ACTIONS)}; got "
                                f"{action!r}.", [ErrorDetail("action", "one_of", action)])
    return Call("POST", f"/v1/admin/rollouts/{_name(model)}/{action}", _read_rollout,
                params={"force": "true"} if force else None)


def rollback(model: str) -> Call[int]:
    return Call("POST", f"/v1/admin/models/{_name(model)}/rollback", _champion)


def revoke_key(key_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/v1/admin/keys/{_name(key_id)}", _json)


def auth_headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(headers or {})
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    return out


__all__ = ["Call", "Prediction", "records_of", "v2_inputs"]
