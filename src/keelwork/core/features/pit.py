"""Point-in-time correct entity features for training sets (no leakage from the future).

For each training row with entity key ``k`` and event time ``t``, an entity's features come from
the latest row of its history with key ``k`` and timestamp ``<= t``, never a later one; none
when there is no such row, or when that row is older than the entity's ``ttl`` (``t - ts >
ttl``). Among history rows with the same key and timestamp, the last one in the source wins
(the same rule the online store's materialisation follows). This is what Feast's
``get_historical_features`` computes.

:class:`EntityIndex` sorts a history once by (key, time, position) and answers a batch of rows
with two binary searches, without sorting the rows: O((R + L) log R) for R history rows and L
training rows. (pyarrow's ``Table.join_asof`` was the other candidate; it refuses input that is
not already sorted by time and leaves the winner among equal timestamps unspecified.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from keelwork.core.features.pipeline import DEFAULT_BATCH_ROWS, FeaturePipeline
from keelwork.core.features.values import check_feature_type, key_column, time_column
from keelwork.errors import DataFileError
from keelwork.spec.features import EntitySpec, FeaturesSection

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def _require(table: Any, columns: list[str], *, what: str, source: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataFileError(
            f"{source}: {what} needs the column {missing[0]!r}, which is not there (columns: "
            f"{', '.join(table.column_names) or 'none'}).", path=source, column=missing[0])


class EntityIndex:
    """One entity's history, sorted once, answering "latest value as of t" for many rows.

    Args:
        entity: The entity's section of keel.yaml.
        table: Its history: the ``key``, ``timestamp`` and ``features`` columns (others are
            ignored). Rows without a key or a timestamp are never used.
        source: The history's file or name (for messages).

    Raises:
        DataFileError: a column is missing or has a type that cannot be a key, a time or a
            served feature value.
    """

    def __init__(self, entity: EntitySpec, table: Any, *, source: str) -> None:
        import numpy as np
        import pyarrow.compute as pc

        _require(table, [entity.key, entity.timestamp, *entity.features],
                 what=f"the entity {entity.name!r}", source=source)
        for f in entity.features:
            check_feature_type(table.schema.field(f).type, name=f, source=source)
        self.entity = entity
        self.source = source
        keys = key_column(table.column(entity.key), name=entity.key, source=source)
        times, known = time_column(table.column(entity.timestamp), name=entity.timestamp,
                                   source=source)
        encoded = keys.dictionary_encode()
        codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64)
        codes[~known] = -1
        self.keys = encoded.dictionary  # every distinct key, in order of first appearance
        self.values = table.select(entity.features).combine_chunks()
        self._row_times = times
        self._times, rank = np.unique(times, return_inverse=True)
        rank = rank.astype(np.int64).reshape(-1)
        self._n_times = max(1, len(self._times))
        self._order = np.lexsort((np.arange(len(codes)), rank, codes))
        self._codes = codes[self._order]
        self._t = times[self._order]
        # One sortable number per row: (key code, time rank); rows without key/time sort first.
        self._composite = self._codes * self._n_times + rank[self._order]

    def __len__(self) -> int:
        return len(self._order)

    def positions(self, keys: Any, times: npt.NDArray[np.int64], known: npt.NDArray[np.bool_],
                  *, ttl_us: int | None) -> npt.NDArray[np.int64]:
        """For each (key, time), the history row holding the latest value as of that time.

        Args:
            keys: Canonical keys (a ``pyarrow`` string array; null: no key).
            times: Microseconds since the epoch.
            known: False where the time is unknown (then there is no value).
            ttl_us: Values older than this (in microseconds) do not count; None: no limit.

        Returns:
            Row positions in the history table, ``-1`` where there is no value.
        """
        import numpy as np
        import pyarrow.compute as pc

        n = len(times)
        if not len(self._order) or not n:
            return np.full(n, -1, np.int64)
        lk = np.asarray(pc.fill_null(pc.index_in(keys, value_set=self.keys), -1).to_numpy(),
                        dtype=np.int64)
        lk[~known] = -1
        # rank of the latest history time <= t (-1: none), then the last (key, rank) <= it
        rank = np.searchsorted(self._times, times, side="right").astype(np.int64) - 1
        pos = np.searchsorted(self._composite, lk * self._n_times + rank, side="right") - 1
        ok = (lk >= 0) & (pos >= 0)
        pos = np.where(ok, pos, 0)
        ok &= self._codes[pos] == lk
        if ttl_us is not None:
            ok &= (times - self._t[pos]) <= ttl_us
        return np.where(ok, self._order[pos], -1).astype(np.int64)

    def take(self, positions: npt.NDArray[np.int64]) -> Any:
        """The feature values at ``positions`` (null rows where the position is -1)."""
        import pyarrow as pa

        return self.values.take(pa.array(positions, mask=positions < 0))

    def join(self, rows: Any, *, event_timestamp: str, source: str) -> Any:
        """Append this entity's features, as of each row's event time, to ``rows``.

        Args:
            rows: Training rows (``pyarrow.Table``) with the entity key and the event time.
            event_timestamp: The rows' event time column.
            source: The rows' file or name (for messages).

        Returns:
            ``rows`` plus one column per feature (named ``prefix + feature``).

        Raises:
            DataFileError: a column is missing or has a wrong type, or ``rows`` already holds a
                column the entity would write.
        """
        e = self.entity
        _require(rows, [e.key, event_timestamp], what=f"the entity {e.name!r}", source=source)
        clash = [c for c in e.outputs if c in rows.column_names]
        if clash:
            raise DataFileError(
                f"{source}: the column {clash[0]!r} is an entity feature of {e.name!r}, joined "
                "from its history; drop it from the rows (a stored copy may leak the future).",
                path=source, column=clash[0])
        keys = key_column(rows.column(e.key), name=e.key, source=source)
        times, known = time_column(rows.column(event_timestamp), name=event_timestamp,
                                   source=source)
        return self._append(rows, self.positions(keys, times, known, ttl_us=_ttl_us(e)))

    def _append(self, rows: Any, positions: npt.NDArray[np.int64]) -> Any:
        taken = self.take(positions)
        for feature, out in zip(self.entity.features, self.entity.outputs, strict=True):
            rows = rows.append_column(out, taken.column(feature))
        return rows

    def latest(self, up_to_us: int) -> tuple[list[str], npt.NDArray[np.int64], list[Any]]:
        """Each key's latest values as of ``up_to_us`` (what the online store materialises).

        Args:
            up_to_us: Microseconds since the epoch; later history rows are ignored.

        Returns:
            ``(keys, event_us, values)``: the keys that have a value, the time of each value and
            one ``{feature: value}`` dict per key (plain Python values).
        """
        import numpy as np

        n = len(self.keys)
        pos = self.positions(self.keys, np.full(n, up_to_us, np.int64), np.ones(n, np.bool_),
                             ttl_us=None)
        have = pos >= 0
        keys = [k for k, h in zip(self.keys.to_pylist(), have.tolist(), strict=True) if h]
        chosen = pos[have]
        return keys, self._row_times[chosen], self.values.take(chosen).to_pylist()


def _ttl_us(entity: EntitySpec) -> int | None:
    ttl = entity.ttl_seconds
    return None if ttl is None else int(ttl) * 1_000_000


class TrainingSetBuilder:
    """Builds training sets: entity features point-in-time, then the transforms.

    Args:
        section: The ``features`` section.
        pipeline: The compiled transforms.
        histories: Each entity's history table, by entity name.
        sources: Each history's file (for messages), by entity name.

    Raises:
        DataFileError: a history lacks a column or has a wrong type.
        KeyError: ``histories`` lacks an entity of the section.
    """

    def __init__(self, section: FeaturesSection, pipeline: FeaturePipeline,
                 histories: Mapping[str, Any], *, sources: Mapping[str, str] | None = None) -> None:
        names = sources or {}
        self.section = section
        self.pipeline = pipeline
        self.indexes = [EntityIndex(e, histories[e.name], source=names.get(e.name, e.source))
                        for e in section.entities]

    def build_batch(self, rows: Any, *, source: str = "rows", offset: int = 0,
                    progress: Callable[[int], None] | None = None) -> Any:
        """Entity features and transforms for one batch of rows.

        Args:
            rows: A ``pyarrow.Table`` of raw rows (with the event time when there are entities).
            source: The rows' file or name (for messages).
            offset: Row number of the batch's first row in ``source`` (for messages).
            progress: Called with row counts as rows are done.

        Returns:
            ``rows`` plus the entity feature columns and the transform outputs.

        Raises:
            DataFileError: a column is missing or has a wrong type, or a transform failed.
        """
        for index in self.indexes:
            rows = index.join(rows, event_timestamp=self.section.event_timestamp, source=source)
        return self.pipeline.apply_table(rows, source=source, offset=offset, progress=progress)

    def build(self, rows: Any, *, source: str = "rows", batch_rows: int = DEFAULT_BATCH_ROWS,
              progress: Callable[[int], None] | None = None) -> Any:
        """:meth:`build_batch` over ``rows`` in slices of ``batch_rows``, concatenated.

        Args:
            rows: A ``pyarrow.Table`` of raw rows.
            source: The rows' file or name (for messages).
            batch_rows: Rows per slice.
            progress: Called with row counts as rows are done.

        Returns:
            The training set.

        Raises:
            DataFileError: as :meth:`build_batch`, or slices gave columns of clashing types.
        """
        import pyarrow as pa

        if rows.num_rows == 0:
            return self.build_batch(rows, source=source, progress=progress)
        parts = [self.build_batch(rows.slice(start, batch_rows), source=source, offset=start,
                                  progress=progress)
                 for start in range(0, rows.num_rows, max(1, batch_rows))]
        try:
            return pa.concat_tables(parts, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataFileError(f"{source}: the feature columns of different row batches have "
                                f"clashing types: {exc}.", path=source) from None


__all__ = ["EntityIndex", "TrainingSetBuilder"]
