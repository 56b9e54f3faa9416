"""The transforms of keel.yaml compiled once, applied to request records or to training tables.

Both paths hand each function the same plain Python values: serving reads them from the
records, training from ``pyarrow`` columns (one slice at a time, as the JSON values a request
would carry; columns of types JSON cannot carry, such as timestamps, are refused); both then run
:func:`_run_step`, the one place a function is called. So a transform computes identical values
for identical rows however they arrive (the tests check it on random rows). Results that are
numpy scalars or arrays become plain Python values on both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keelwork.core.features.registry import DEFAULT_REGISTRY, RegisteredTransform, TransformRegistry
from keelwork.core.features.values import column_values, json_like
from keelwork.errors import DataFileError, ErrorDetail, InvalidInputError, SpecError
from keelwork.spec.features import FeaturesSection, TransformSpec

#: Rows per slice when a training table goes through a transform.
DEFAULT_BATCH_ROWS = 65_536
_PLAIN = (int, float, str, bool, type(None))


@dataclass(frozen=True, slots=True)
class _Step:
    spec: TransformSpec
    transform: RegisteredTransform

    def label(self) -> str:
        return f"{self.spec.name!r} ({self.transform.origin})"


class _StepFailed(Exception):
    """A transform raised or returned a wrong shape; ``row`` is batch-relative (None: batch)."""

    def __init__(self, step: _Step, row: int | None, problem: str) -> None:
        super().__init__(problem)
        self.step = step
        self.row = row
        self.problem = problem


def _plain(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        return value.tolist()  # numpy scalar -> int/float/bool, array -> nested list
    return value


def _run_step(step: _Step, columns: list[list[Any]], n: int) -> list[Any]:
    """Apply one transform to ``n`` rows given as one list per input."""
    fn = step.transform.fn
    params = step.spec.params
    if step.transform.batch:
        try:
            out = fn(*columns, **params)
        except Exception as exc:
            raise _StepFailed(step, None, f"{type(exc).__name__}: {exc}") from exc
        if callable(getattr(out, "tolist", None)):
            out = out.tolist()
        try:
            values = list(out)
        except TypeError:
            raise _StepFailed(step, None, "a batch transform must return a list; got "
                              f"{type(out).__name__}") from None
        if len(values) != n:
            raise _StepFailed(step, None, f"a batch transform must return one value per row; "
                              f"got {len(values)} values for {n} rows")
        return [_plain(v) for v in values]
    result: list[Any] = []
    append = result.append
    for i, args in enumerate(zip(*columns, strict=True)):
        try:
            append(_plain(fn(*args, **params)))
        except Exception as exc:
            raise _StepFailed(step, i, f"{type(exc).__name__}: {exc}") from exc
    return result


class FeaturePipeline:
    """The ``features.transforms`` of keel.yaml, resolved against a registry.

    Args:
        section: The ``features`` section.
        registry: Where the functions are registered (default: the one
            :func:`~keelwork.core.features.feature_transform` fills). Import the project's
            ``features.modules`` first.

    Raises:
        SpecError: some ``transforms[].fn`` names no registered function (every one listed).
    """

    def __init__(self, section: FeaturesSection,
                 registry: TransformRegistry | None = None) -> None:
        reg = registry if registry is not None else DEFAULT_REGISTRY
        problems: list[ErrorDetail] = []
        steps: list[_Step] = []
        for i, t in enumerate(section.transforms):
            if t.fn not in reg:
                known = ", ".join(reg.names()) or "none"
                problems.append(ErrorDetail(
                    f"features.transforms[{i}].fn", "unknown_transform", t.fn,
                    f"features.transforms[{i}].fn names {t.fn!r}, which no module registered "
                    f"(registered: {known}); decorate it with @feature_transform({t.fn!r}) in a "
                    "file listed under features.modules"))
                continue
            steps.append(_Step(t, reg.get(t.fn)))
        if problems:
            raise SpecError("; ".join(p.message for p in problems) + ".", problems)
        self._section = section
        self._steps = tuple(steps)

    @property
    def section(self) -> FeaturesSection:
        """The ``features`` section this pipeline was compiled from."""
        return self._section

    @property
    def outputs(self) -> tuple[str, ...]:
        """The fields the transforms write, in order (a field written twice appears twice)."""
        return tuple(s.spec.output for s in self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    # ------------------------------------------------------------------ serving
    def apply_records(self, records: Sequence[Mapping[str, Any]], *,
                      copy: bool = True) -> list[dict[str, Any]]:
        """Apply every transform to a batch of records (the serving path).

        Args:
            records: Object records; a missing input field reads as ``None``.
            copy: Work on copies (True) or on the given ``dict`` records themselves (False).

        Returns:
            The records with every transform's output field set.

        Raises:
            InvalidInputError: a transform raised, or a batch transform returned the wrong
                number of values; the message names the transform, its function and the record.
        """
        rows = [dict(r) if copy or type(r) is not dict else r
                for r in records]
        n = len(rows)
        for step in self._steps:
            columns = [[r.get(name) for r in rows] for name in step.spec.inputs]
            try:
                values = _run_step(step, columns, n)
            except _StepFailed as exc:
                where = f"instances[{exc.row}]" if exc.row is not None else f"a batch of {n}"
                raise InvalidInputError(
                    f"The feature transform {step.label()} failed on {where}: {exc.problem}.",
                    [ErrorDetail(where, "feature_transform", step.spec.name, exc.problem)],
                ) from exc.__cause__
            out = step.spec.output
            for r, v in zip(rows, values, strict=True):
                r[out] = v
        return rows

    # ------------------------------------------------------------------ training
    def apply_table(self, table: Any, *, source: str = "rows", offset: int = 0,
                    batch_rows: int = DEFAULT_BATCH_ROWS,
                    progress: Callable[[int], None] | None = None) -> Any:
        """Apply every transform to a ``pyarrow.Table`` (the training path).

        Args:
            table: The rows.
            source: The file or name of the rows (for messages).
            offset: Row number of the table's first row in ``source`` (for messages).
            batch_rows: Rows per call of a batch transform (and per slice of a row transform).
            progress: Called with a row count after each slice of the last transform.

        Returns:
            The table with each output column appended, or replaced where it already existed.

        Raises:
            DataFileError: an input column is missing or of a type JSON requests cannot carry
                (timestamps, decimals, binary), a transform failed (row named), or its results
                cannot form one column.
        """
        import pyarrow as pa

        n = table.num_rows
        for k, step in enumerate(self._steps):
            missing = [c for c in step.spec.inputs if c not in table.column_names]
            if missing:
                raise DataFileError(
                    f"{source}: the feature transform {step.spec.name!r} needs the column "
                    f"{missing[0]!r}, which is not there (columns: "
                    f"{', '.join(table.column_names)}).", path=source, column=missing[0])
            for c in step.spec.inputs:
                t = table.schema.field(c).type
                if not json_like(t):
                    # Requests carry JSON: a datetime here would be a string when serving.
                    raise DataFileError(
                        f"{source}: the column {c!r} (input of the feature transform "
                        f"{step.spec.name!r}) has type {t}, which requests cannot carry (they "
                        "are JSON), so the transform would see other values when serving; "
                        "store it as an ISO 8601 string or Unix seconds.", path=source, column=c)
            chunks = []
            for start in range(0, n, max(1, batch_rows)):
                size = min(batch_rows, n - start)
                columns = [column_values(table.column(c).slice(start, size))
                           for c in step.spec.inputs]
                try:
                    values = _run_step(step, columns, size)
                except _StepFailed as exc:
                    where = (f"row {offset + start + exc.row}" if exc.row is not None
                             else f"rows {offset + start}-{offset + start + size - 1}")
                    raise DataFileError(
                        f"{source}: the feature transform {step.label()} failed on {where}: "
                        f"{exc.problem}.", path=source, column=step.spec.output,
                        line=None if exc.row is None else offset + start + exc.row,
                    ) from exc.__cause__
                chunks.append(_to_arrow(values, step, source))
                if progress is not None and k == len(self._steps) - 1:
                    progress(size)
            column = _one_column(chunks, step, source) if chunks else pa.nulls(0)
            out = step.spec.output
            if out in table.column_names:
                table = table.set_column(table.column_names.index(out), out, column)
            else:
                table = table.append_column(out, column)
        if progress is not None and not self._steps:
            progress(n)
        return table


def _to_arrow(values: list[Any], step: _Step, source: str) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise DataFileError(
            f"{source}: the feature transform {step.label()} returned values that cannot form "
            f"one column ({exc}); return one type per transform.", path=source,
            column=step.spec.output) from None


def _one_column(chunks: list[Any], step: _Step, source: str) -> Any:
    import pyarrow as pa

    types = {c.type for c in chunks}
    if len(types) > 1:
        try:
            common = pa.unify_schemas([pa.schema([pa.field("v", t)]) for t in types],
                                      promote_options="permissive").field("v").type
            chunks = [c.cast(common) for c in chunks]
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            shown = ", ".join(sorted(str(t) for t in types))
            raise DataFileError(
                f"{source}: the feature transform {step.label()} returned values of different "
                f"types in different rows ({shown}): {exc}.", path=source,
                column=step.spec.output) from None
    return pa.chunked_array(chunks)


__all__ = ["DEFAULT_BATCH_ROWS", "FeaturePipeline"]
