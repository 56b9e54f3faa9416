"""A monitoring reference: what every monitoring run of a model compares its windows with.

Built once (:func:`keelwork.service.monitoring.reference.build_reference`) from reference data
and the model's predictions on it, stored (``kind``/``version``) and reused by every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from keelwork.core.monitors.profile import TableProfile, check_kind
from keelwork.core.monitors.windows import OutputSchema
from keelwork.errors import MonitorError

REFERENCE_KIND = "keelwork.monitor-reference"
REFERENCE_VERSION = 1


@dataclass(frozen=True, slots=True)
class MonitorReference:
    """Everything a monitoring run compares windows with (see the module docstring)."""

    model: str
    model_version: int | None
    source: str
    created_at: datetime
    schema: OutputSchema
    profile: TableProfile
    input_columns: tuple[str, ...]
    label_column: str | None = None
    cbpe: dict[str, Any] | None = None
    #: Why there is no CBPE reference (so no performance estimate), when there is none.
    cbpe_reason: str | None = None
    text: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, TableProfile]] = field(default_factory=dict)
    #: Set when this is not the monitored version's own reference (see
    #: :func:`keelwork.service.monitoring.reference.load_reference`).
    note: str | None = None
    #: What looked wrong while building it (e.g. labels the model never answers).
    warnings: tuple[str, ...] = ()
    #: What the model relied on over reference rows: ``{explained, mean_abs, method}``
    #: (:func:`keelwork.core.explain.attribution.mean_abs`); None: not measured (no exact
    #: explainer for the model).
    reliance: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        """Rows of the reference data."""
        return self.profile.rows

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view; :meth:`from_dict` reads it back."""
        return {"kind": REFERENCE_KIND, "version": REFERENCE_VERSION, "model": self.model,
                "model_version": self.model_version, "source": self.source,
                "created_at": self.created_at.isoformat(), "schema": self.schema.as_dict(),
                "profile": self.profile.as_dict(), "input_columns": list(self.input_columns),
                "label_column": self.label_column, "cbpe": self.cbpe,
                "cbpe_reason": self.cbpe_reason, "text": self.text,
                "segments": {f: {v: p.as_dict() for v, p in values.items()}
                             for f, values in self.segments.items()},
                "warnings": list(self.warnings), "reliance": self.reliance}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorReference:
        """Inverse of :meth:`as_dict`.

        Raises:
            MonitorError: not a monitor reference, newer than this keelwork, or malformed.
        """
        check_kind(data, REFERENCE_KIND, REFERENCE_VERSION, "A monitor reference",
                   " Build it again with 'keel monitor reference'.")
        try:
            created = datetime.fromisoformat(str(data["created_at"]))
            return cls(model=str(data["model"]), model_version=data.get("model_version"),
                       source=str(data["source"]),
                       created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
                       schema=OutputSchema.from_dict(data["schema"]),
                       profile=TableProfile.from_dict(data["profile"]),
                       input_columns=tuple(str(c) for c in data["input_columns"]),
                       label_column=data.get("label_column"), cbpe=data.get("cbpe"),
                       cbpe_reason=data.get("cbpe_reason"),
                       text=dict(data.get("text") or {}),
                       segments={str(f): {str(v): TableProfile.from_dict(p)
                                          for v, p in values.items()}
                                 for f, values in (data.get("segments") or {}).items()},
                       warnings=tuple(str(w) for w in data.get("warnings") or ()),
                       reliance=data.get("reliance"))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"The stored monitor reference is malformed: {exc!r}.") from exc


def inputs_only(ref: MonitorReference, note: str) -> MonitorReference:
    """``ref`` without what describes its model's predictions (prediction columns, CBPE)."""
    def keep(profile: TableProfile) -> TableProfile:
        return TableProfile(profile.rows, {n: c for n, c in profile.columns.items()
                                           if not n.startswith("prediction:")})

    return replace(ref, profile=keep(ref.profile), cbpe=None, note=note, reliance=None,
                   segments={f: {v: keep(p) for v, p in values.items()}
                             for f, values in ref.segments.items()})


__all__ = ["REFERENCE_KIND", "REFERENCE_VERSION", "MonitorReference", "inputs_only"]
