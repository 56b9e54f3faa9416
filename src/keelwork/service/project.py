"""``keelwork.Project``: the use-cases of a keelwork project, from a training script or notebook.

The same operations as the ``keel`` commands, as typed Python: register a fitted model (saved
safely, no pickle), check a DataFrame against the contract, compare two tables for drift, run
the monitor over the prediction log, steer rollouts, verify the audit log. Reports render in
Jupyter (``_repr_html_``) and turn into the JSON the CLI prints (``to_dict()``).

The store is found by the CLI's rule (:func:`keelwork.service.projects.storage_url`):
``storage_url=``, else ``$KEELWORK_STORAGE_URL``, else ``storage.url`` of ``keel.yaml``, else
``sqlite:///<project>/.keel/keel.db``. Each method calls the use-case its command calls.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import MonitorError, SpecError
from keelwork.service.project_ops import Audit, Rollouts
from keelwork.service.project_reports import Registration, ValidationReport

if TYPE_CHECKING:
    from keelwork.core.monitors.report import DriftReport, MonitorReport
    from keelwork.spec.contract import ContractSection
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings

log = logging.getLogger("keelwork.monitor")

#: What :attr:`Project.spec` says when the project has no keel.yaml.
_NEEDS_SPEC = "this needs the project's spec (create one with 'keel init DIR')"

#: What :meth:`Project.monitor` takes as a point in time: unix seconds, a datetime, a span
#: before now (``timedelta`` or ``"24h"``) or an ISO 8601 string.
When = float | int | datetime | timedelta | str


def as_arrow_table(data: Any) -> Any:
    """A ``pyarrow.Table`` of ``data``.

    Args:
        data: A pandas or polars DataFrame, a pyarrow Table or RecordBatch, or the path of a
            CSV, TSV, Parquet or JSON-lines file.

    Returns:
        The table (pandas: without its index).

    Raises:
        InvalidInputError: ``data`` is none of these.
        DataFileError: the file cannot be read.
    """
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, str | os.PathLike):
        from keelwork.adapters.data import read_table

        return read_table(Path(data))
    module = type(data).__module__.split(".", 1)[0]
    if module == "polars" and callable(getattr(data, "to_arrow", None)):
        return data.to_arrow()
    if module == "pandas" and hasattr(data, "columns"):
        return pa.Table.from_pandas(data, preserve_index=False)
    from keelwork.errors import ErrorDetail, InvalidInputError

    kind = f"{type(data).__module__}.{type(data).__qualname__}"
    raise InvalidInputError(f"Expected a pandas or polars DataFrame, a pyarrow Table or a data "
                            f"file path; got a {kind}.", [ErrorDetail("data", "table", kind)])


def _seconds(when: When, now: float, what: str) -> float:
    """Unix seconds of ``when`` (a bare duration string counts back from ``now``)."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, timedelta):
        return now - when.total_seconds()
    if isinstance(when, int | float):
        return float(when)
    from keelwork.service.logs import parse_when

    try:
        return parse_when(when.strip().lstrip("-"), now)
    except ValueError:
        raise MonitorError(f"{what} must be a datetime, a timedelta, unix seconds, a duration "
                           f"before now (30m, 24h, 7d) or an ISO date/time; got {when!r}."
                           ) from None


class Project:
    """A keelwork project: a directory with ``keel.yaml`` and its store.

    Args:
        path: The project directory (holds ``keel.yaml`` and ``.keel/``), or its keel.yaml.
        storage_url: The store to use instead of the one the project names.
        settings: The process settings (default: read from the ``KEELWORK_*`` environment
            variables now); ``storage_url`` overrides their store.

    Raises:
        KeelworkError: the directory does not exist.

    Examples:
        >>> import keelwork
        >>> project = keelwork.Project(project_dir)
        >>> project.spec.spec.service.name
        'credit-scoring'
    """

    def __init__(self, path: str | os.PathLike[str] = ".", *, storage_url: str | None = None,
                 settings: Settings | None = None) -> None:
        from keelwork.errors import KeelworkError
        from keelwork.service.projects import settings_or_env

        folder = Path(path)
        if folder.name == "keel.yaml" or folder.suffix in (".yaml", ".yml"):
            folder = folder.parent
        if not folder.is_dir():
            raise KeelworkError(f"The project directory '{folder}' does not exist.")
        self.path = folder.absolute()
        """The project directory (absolute)."""
        settings = settings_or_env(settings)
        if storage_url:
            settings = settings.model_copy(update={"storage_url": storage_url})
        self._settings = settings
        self._spec: ResolvedSpec | None = None
        self.rollout = Rollouts(self.path, settings)
        """The model rollouts: :class:`~keelwork.service.project_ops.Rollouts`
        (``start``, ``status``, ``promote``, ``pause``, ``resume``, ``abort``, ``retry``,
        ``rollback``), as ``keel rollout ...`` and ``keel rollback``."""
        self.audit = Audit(self.path, settings)
        """The audit log: :class:`~keelwork.service.project_ops.Audit` (``verify``, ``head``),
        as ``keel audit verify`` and ``keel audit head``."""

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r})"

    # ------------------------------------------------------------------ the spec and store
    @property
    def spec(self) -> ResolvedSpec:
        """The project's keel.yaml, read once, with the store this project uses.

        Raises:
            SpecError: there is no keel.yaml, or it is invalid.
        """
        if self._spec is None:
            from keelwork.service.projects import project_spec

            self._spec = project_spec(self.path, self._settings, needs=_NEEDS_SPEC)
        return self._spec

    def _maybe_spec(self) -> ResolvedSpec | None:
        return self.spec if (self.path / "keel.yaml").is_file() else None

    # ------------------------------------------------------------------ register
    def register(self, model_or_path: Any, name: str, *, runtime: str | None = None,
                 options: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, float] | None = None, aliases: Sequence[str] = (),
                 dataset_version: str | None = None, example_input: Any = None,
                 allow_unsafe_pickle: bool = False, verify: bool = True) -> Registration:
        """Register a model as the next version of ``name``, as ``keel models register`` does.

        A model object is first saved in the format its runtime loads without running code
        from the file: a fitted scikit-learn estimator with skops (the types it holds that skops
        does not trust by default are recorded in ``options.trusted``), a ``torch.nn.Module``
        with ``torch.export`` (traced with ``example_input``, else with a batch shaped by
        ``options.input_shape`` or ``options.feature_names``), an ONNX ``ModelProto``
        as ``.onnx``. A path is registered as is; its runtime is read from the suffix unless
        given. The monitoring reference of the new version is built when keel.yaml names one.

        Args:
            model_or_path: A model object, or an artifact file or directory (``module:function``
                for ``runtime="python"``).
            name: The model name (created on first registration).
            runtime: The runtime kind (default: from the object or the file suffix).
            options: Runtime options, stored with the version (over the saved ones).
            metrics: Evaluation metrics, name -> finite number.
            aliases: Aliases to point at the new version (e.g. ``["champion"]``).
            dataset_version: The training data: free text, or a snapshot ``NAME:VERSION``.
            example_input: For a torch module: a batch tensor to export it with.
            allow_unsafe_pickle: Let a pickle/joblib file load (it runs code when loaded).
            verify: Load the model once before registering it.

        Returns:
            The new version, earlier versions of the same content, and warnings.

        Raises:
            RegistryError: a name, alias, metric or option is invalid, the object is no model
                keelwork can save, or ``dataset_version`` names no snapshot.
            ArtifactError: the artifact is missing or unreadable.
            ModelLoadError: the model does not load (UnsafeArtifactError: a refused pickle).
            StoreError: the store failed.

        Examples:
            >>> reg = project.register(model, "credit", metrics={"accuracy": 0.79})
            >>> reg.name, reg.model_version.runtime
            ('credit', 'sklearn')
        """
        from keelwork.service.project_models import runtime_for_path, save_model

        if isinstance(model_or_path, str | os.PathLike):
            artifact: str | Path = (os.fspath(model_or_path) if runtime == "python"
                                    else Path(model_or_path))
            kind = runtime or runtime_for_path(Path(model_or_path))
            return self._register(artifact, name, kind, dict(options or {}), metrics, aliases,
                                  dataset_version, allow_unsafe_pickle, verify)
        with tempfile.TemporaryDirectory(prefix="keelwork-register-") as tmp:
            saved = save_model(model_or_path, Path(tmp), example_input=example_input,
                               options=options)
            return self._register(saved.path, name, runtime or saved.runtime,
                                  {**saved.options, **(options or {})}, metrics, aliases,
                                  dataset_version, allow_unsafe_pickle, verify)

    def _register(self, artifact: str | Path, name: str, runtime: str,
                  options: dict[str, Any], metrics: Mapping[str, float] | None,
                  aliases: Sequence[str], dataset_version: str | None,
                  allow_unsafe_pickle: bool, verify: bool) -> Registration:
        from keelwork.service.projects import (
            actor,
            check_dataset_reference,
            registry,
            store_reference,
        )
        from keelwork.service.registration import register_model

        check_dataset_reference(self.path, dataset_version, self._settings,
                                option="dataset_version")
        with registry(self.path, create=True, settings=self._settings) as models, \
                warnings.catch_warnings(record=True) as caught:
            assert models is not None  # create=True always opens
            warnings.simplefilter("always")
            mv = register_model(models, name, artifact, runtime,
                                dataset_version=dataset_version, metrics=metrics,
                                options=options or None, aliases=list(aliases),
                                source_dir=self.path, created_by=actor(None, self._settings),
                                allow_unsafe_pickle=allow_unsafe_pickle, verify=verify)
            same = tuple(v.version for v in models.list_versions(name)
                         if v.sha256 is not None and v.sha256 == mv.sha256
                         and v.version != mv.version)
        notes = list(dict.fromkeys(str(w.message) for w in caught))
        warn = store_reference(self.path, mv.name, mv.version, self._settings)
        if warn:
            notes.append(warn)
        return Registration(mv, same, tuple(notes))

    # ------------------------------------------------------------------ validate
    def validate(self, data: Any, *, contract: ContractSection | None = None,
                 exclude: Sequence[str] = (), examples: int = 5) -> ValidationReport:
        """Check every row of a table against the contract, as ``keel validate`` does (the
        compiled kernels load as the ``jit`` setting, ``KEELWORK_JIT``, says).

        Args:
            data: A pandas or polars DataFrame, a pyarrow Table, or a data file path.
            contract: The contract (default: keel.yaml's ``contract``).
            exclude: Contract fields not to check (their columns pass through).
            examples: Example rows kept per (column, rule).

        Returns:
            The report: falsy when a row fails; ``raise_for_failures()`` raises then.

        Raises:
            SpecError: no keel.yaml (and no ``contract``), or a contract that contradicts
                itself.
            InvalidInputError: ``data`` is not a table, or has two columns of one name.

        Examples:
            >>> report = project.validate(applications)
            >>> report.ok, report.rows
            (True, 4454)
        """
        from keelwork.service.validation import check_table

        section = contract if contract is not None else self.spec.spec.contract
        if exclude:
            unknown = sorted(set(exclude) - {f.name for f in section.inputs})
            if unknown:
                from keelwork.errors import ErrorDetail

                raise SpecError(f"exclude names {unknown[0]!r}, which is not a contract input "
                                f"(inputs: {', '.join(f.name for f in section.inputs)}).",
                                [ErrorDetail("exclude", "contract_field", unknown[0])])
            section = section.model_copy(update={"inputs": [
                f for f in section.inputs if f.name not in set(exclude)]})
        report = check_table(as_arrow_table(data), section, exclude=exclude, examples=examples,
                             jit=self._settings.jit)
        return ValidationReport(report, tuple(dict.fromkeys(exclude)))

    # ------------------------------------------------------------------ drift
    def drift(self, reference: Any, current: Any, *, threshold: float | None = None,
              text: Sequence[str] = (), embed: bool = True) -> DriftReport:
        """Per-column drift of ``current`` against ``reference``, as ``keel drift`` does.

        Args:
            reference: Reference data: a DataFrame, an Arrow table or a data file path; or a
                saved reference profile (a ``.json`` path, or a
                :class:`~keelwork.core.monitors.profile.TableProfile`).
            current: The data to compare: a DataFrame, an Arrow table or a data file path.
            threshold: Minimum effect size that counts as drift for every column (default:
                keel.yaml's ``monitoring.drift.threshold``, else each method's own floor).
            text: Free-text columns, compared by descriptors (length, words, out-of-vocabulary
                rate, ...) and, with ``embed`` and the ``text`` extra, by embeddings; they need
                the reference as data, not a saved profile.
            embed: Compare text embeddings too (without the ``text`` extra the report's
                ``notes`` say they were left out).

        Returns:
            The drift report (:class:`~keelwork.core.monitors.report.DriftReport`:
            ``drifted``, ``to_dict()``, ``to_html()``, shown inline in Jupyter); falsy when a
            column drifted.

        Raises:
            MonitorError: the tables cannot be compared, or ``text`` names no column of the
                reference.
            DataFileError: a file is missing or unreadable.

        Examples:
            >>> report = project.drift(reference_rows, current_rows)
            >>> report.to_dict()["rows"]["current"] == len(current_rows)
            True
        """
        from keelwork.core.monitors.profile import TableProfile
        from keelwork.service.monitoring.compare import compare_tables, load_reference_profile

        if threshold is None:
            resolved = self._maybe_spec()
            threshold = resolved.spec.monitoring.drift.threshold if resolved else None
        ref: Any = reference
        if isinstance(reference, str | os.PathLike) and Path(reference).suffix == ".json":
            ref, _how = load_reference_profile(Path(reference))
        elif not isinstance(reference, TableProfile):
            ref = as_arrow_table(reference)
        notes: list[str] = []
        report = compare_tables(ref, as_arrow_table(current), text=text, embed=embed,
                                threshold=threshold, on_note=notes.append)
        for note in notes:
            report = report.with_note(note)
        return report

    # ------------------------------------------------------------------ monitor
    def monitor(self, window: str | None = None, *, model: str | None = None,
                since: When = "24h", until: When | None = None, version: int | None = None,
                rescore: bool = True) -> MonitorReport:
        """Monitor the prediction log in windows, as ``keel monitor run`` does.

        Args:
            window: ``1h``, ``15m``, ``1d`` or ``1000p`` (default: the first of
                ``monitoring.windows``).
            model: The model (default: the first in keel.yaml).
            since: Where to start: a datetime, a timedelta or duration string before now
                (``"24h"``), unix seconds or an ISO date/time.
            until: Where to stop, in the same forms (default: now).
            version: Monitor this version against its own reference (shown, not stored);
                default the champion's, stored (what ``/metrics`` exports).
            rescore: Score logged inputs again when the log holds labels but no probabilities
                (a model that cannot be loaded only leaves those figures out, with a log line).

        Returns:
            The report (:class:`~keelwork.core.monitors.report.MonitorReport`): drift,
            quality, label coverage per window (and per segment).

        Raises:
            SpecError: no keel.yaml.
            MonitorError: no stored reference, or a bad window or time.

        Examples:
            >>> report = project.monitor(window="1h", since="2h")
            >>> report.model
            'credit'
        """
        from keelwork.service.monitoring.runs import monitored_model, open_monitor, window_spec

        resolved = self.spec
        name = monitored_model(resolved, model, option="model=NAME")
        spec = window_spec(resolved, window)
        now = time.time()
        lo = _seconds(since, now, "since")
        hi = _seconds(until, now, "until") if until is not None else now
        with open_monitor(resolved, name, version=version, rescore=rescore) as session:
            for warning in session.warnings:
                log.warning("%s", warning)
            return session.run(spec, lo, hi, now=now)


__all__ = ["Project", "as_arrow_table"]
