"""Checking data against a contract: ``keel validate`` and ``keel contract infer`` as use-cases.

:func:`load_contract` reads a contract file (keel.yaml or a ``contract:`` section) with every
problem and its line; :func:`validate_file` checks every row of a data file and writes the
passing and the failing rows; :func:`infer_draft` drafts a contract from reference data. The
compiled kernels are used as the settings say (``KEELWORK_JIT``, one
:class:`~keelwork.core.contracts.jit.Jit` per run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError, ErrorDetail, SpecError

if TYPE_CHECKING:
    from keelwork.adapters.data.tables import Progress
    from keelwork.core.contracts.batch import BatchReport
    from keelwork.core.contracts.infer import HeldOutCheck, InferredContract
    from keelwork.spec.contract import ContractSection
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import JitMode


# --------------------------------------------------------------------------- the contract
def _line(node: Any, loc: Sequence[str | int]) -> int | None:
    """Line (1-based) of the deepest part of ``loc`` found in a ruamel round-trip node."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    line = None
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
            else:
                break
        except (KeyError, TypeError, AttributeError):
            break
        node = node[part]
    return line


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_contract(path: Path) -> ContractSection:
    """Read a contract: a ``contract:`` section's content, or a file with a ``contract`` key.

    A whole keel.yaml works (only its ``contract`` section is read), and so does the output of
    ``keel contract infer``.

    Args:
        path: The YAML file.

    Returns:
        The contract.

    Raises:
        SpecError: The file is unreadable, not YAML, has no contract, or the contract is
            invalid or contradicts itself (every problem, with its line).
    """
    from pydantic import ValidationError
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from keelwork.core.contracts.batch import check_contract
    from keelwork.spec.contract import ContractSection
    from keelwork.spec.loader import check_alias_expansion

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such contract file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the contract ({exc}).") from None
    try:
        doc = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}: "
                        f"{getattr(exc, 'problem', None) or exc}.") from None
    check_alias_expansion(doc, str(path))
    base: tuple[str, ...] = ()
    if isinstance(doc, dict) and isinstance(doc.get("contract"), dict):
        node, base = doc["contract"], ("contract",)
    elif isinstance(doc, dict) and ({"inputs", "outputs"} & set(doc)):
        node = doc
    else:
        raise SpecError(f"{path}: holds no contract; expected a 'contract:' section (as in "
                        "keel.yaml) or its content ('inputs:' ...).")
    problems: list[ErrorDetail] = []
    contract = None
    try:
        contract = ContractSection.model_validate(_plain(node))
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f"; got {got!r}"
            problems.append(ErrorDetail(
                ".".join(map(str, (*base, *loc))), str(err["type"]), None,
                f"{str(err['msg']).removeprefix('Value error, ')}{shown}", _line(node, loc)))
    if contract is not None:
        for detail in check_contract(contract):
            loc = tuple(int(p) if p.isdigit() else p
                        for p in detail.path.replace("[", ".").replace("]", "").split("."))
            problems.append(ErrorDetail(".".join(map(str, (*base, *loc))), detail.rule,
                                        detail.got, detail.message, _line(node, loc)))
    if problems or contract is None:
        lines = [f"  {d.path} (line {d.line}): {d.message}" for d in problems]
        raise SpecError(f"{path}: the contract has {len(problems)} problem(s):\n"
                        + "\n".join(lines), problems)
    if not contract.inputs:
        raise SpecError(f"{path}: the contract lists no inputs; nothing to validate.")
    return contract


def exclude_fields(contract: ContractSection, exclude: Sequence[str],
                   path: Path) -> ContractSection:
    """The contract without the input fields named in ``exclude`` (``--exclude``).

    Raises:
        SpecError: a name is not an input field of the contract, or nothing is left to check.
    """
    if not exclude:
        return contract
    names = [f.name for f in contract.inputs]
    unknown = [c for c in dict.fromkeys(exclude) if c not in names]
    if unknown:
        raise SpecError(f"--exclude names {', '.join(map(repr, unknown))}, which "
                        f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of "
                        f"the contract in {path} (fields: {', '.join(names)}).")
    kept = [f for f in contract.inputs if f.name not in exclude]
    if not kept:
        raise SpecError(f"--exclude leaves no field of the contract in {path} to check.")
    return contract.model_copy(update={"inputs": kept})


# --------------------------------------------------------------------------- keel validate
@dataclass
class Validation:
    """The outcome of :func:`validate_file`."""

    report: BatchReport
    written: dict[str, int] = field(default_factory=dict)
    """Rows written per output: ``{"output": n, "quarantine": m}`` (those given)."""


def check_outputs(data: Path, *outputs: Path | None) -> None:
    """Refuse an output of unknown format, or one that is the input file itself.

    Raises:
        DataFileError: as said.
    """
    from keelwork.adapters.data.readers import detect_format

    for out in outputs:
        if out is not None:
            detect_format(out)
            if out.resolve() == data.resolve():
                raise DataFileError(f"{out}: is the input file; write elsewhere.",
                                    path=str(out))


def validate_file(data: Path, contract: ContractSection, *, exclude: Sequence[str] = (),
                  examples: int = 5, output: Path | None = None,
                  quarantine: Path | None = None, jit: JitMode = "auto",
                  progress: Progress | None = None) -> Validation:
    """Check every row of ``data`` against ``contract``; write the passing and failing rows.

    Args:
        data: The data file.
        contract: The contract (see :func:`load_contract`, :func:`exclude_fields`).
        exclude: Columns not checked at all, not even as extra fields; they are written.
        examples: Example rows per rule in the report.
        output: Where the passing rows go (format from the suffix), or None.
        quarantine: Where the failing rows go, with ``_row`` and ``_reasons``, or None.
        jit: When the compiled kernels load (the ``jit`` setting).
        progress: Called while reading (see :func:`keelwork.adapters.data.tables.read_data`).

    Returns:
        The report and the rows written.

    Raises:
        DataFileError: the data cannot be read or an output cannot be written.
    """
    from keelwork.adapters.data.tables import (
        as_read,
        contract_types,
        parquet_text,
        read_data,
        write_outputs,
    )

    check_outputs(data, output, quarantine)
    # Category columns stay dictionary-encoded from Parquet: each value checked once.
    text = parquet_text(data, [f.name for f in contract.inputs if f.categories and f.type in (
        "category", "string", "text")])
    table = read_data(data, contract_types(data, contract), dictionary=list(text),
                      progress=progress)
    report = check_table(table, contract, exclude=exclude, examples=examples, jit=jit)
    return Validation(report, write_outputs(as_read(table, text), report, output, quarantine))


def check_table(table: Any, contract: ContractSection, *, exclude: Sequence[str] = (),
                examples: int = 5, jit: JitMode = "auto") -> BatchReport:
    """Check every row of a ``pyarrow.Table`` against ``contract``, as ``keel validate`` does.

    Args:
        table: The rows.
        contract: The contract (without the ``exclude`` fields: :func:`exclude_fields`).
        exclude: Columns not checked at all, not even as extra fields.
        examples: Example rows per rule in the report.
        jit: When the compiled kernels load (the ``jit`` setting).

    Returns:
        The report.
    """
    from keelwork.core.contracts.batch import validate_table
    from keelwork.core.contracts.jit import Jit

    skipped = [c for c in dict.fromkeys(exclude) if c in table.column_names]
    with Jit(jit).active():
        return validate_table(table.drop_columns(skipped) if skipped else table, contract,
                              examples=examples)


# --------------------------------------------------------------------------- keel contract infer
#: The margin when the data is too small for the held-out check.
DEFAULT_MARGIN = 0.1


@dataclass
class Draft:
    """The outcome of :func:`infer_draft`."""

    contract: InferredContract
    check: HeldOutCheck | None
    """The held-out check, or None when the data is too small to split."""
    margin: float
    """The margin the draft was made with."""
    rows: int
    """Rows of the reference data."""


def infer_draft(data: Path, *, margin: float | None = None, max_categories: int = 20,
                text_length: int = 40, exclude: Sequence[str] = (), jit: JitMode = "auto",
                progress: Progress | None = None) -> Draft:
    """Draft a contract from reference data, with a held-out check of the margin.

    Args:
        data: The reference data file.
        margin: Widen each observed range by this fraction; None: the smallest that lets at
            most 1 % of a held-out 20 % fail (:data:`DEFAULT_MARGIN` for small data).
        max_categories: Most distinct values of a category field.
        text_length: Mean length from which strings are free text.
        exclude: Columns left out.
        jit: When the compiled kernels load (the ``jit`` setting).
        progress: Called while reading.

    Returns:
        The draft (itself a valid contract).

    Raises:
        DataFileError: the data cannot be read or lacks a column of ``exclude``.
    """
    from keelwork.adapters.data.tables import read_data
    from keelwork.core.contracts.infer import held_out_check, infer_contract
    from keelwork.core.contracts.jit import Jit

    table = read_data(data, progress=progress)
    unknown = [c for c in exclude if c not in table.column_names]
    if unknown:
        raise DataFileError(f"{data}: has no column '{unknown[0]}' to exclude (columns: "
                            f"{', '.join(table.column_names)}).", path=str(data),
                            column=unknown[0])
    with Jit(jit).active():
        check = held_out_check(table, margin=margin, max_categories=max_categories,
                               text_length=text_length, exclude=exclude)
    chosen = margin if margin is not None else (check.margin if check else DEFAULT_MARGIN)
    draft = infer_contract(table, margin=chosen, max_categories=max_categories,
                           text_length=text_length, exclude=exclude)
    draft.section()  # the draft must itself be a valid contract
    return Draft(draft, check, chosen, table.num_rows)


def write_draft(out: Path, text: str) -> None:
    """Write a drafted contract's YAML to ``out`` atomically.

    Raises:
        DataFileError: the file cannot be written.
    """
    from keelwork.adapters.data.atomic import write_text_atomic

    try:
        write_text_atomic(out, text)
    except OSError as exc:
        raise DataFileError(f"{out}: cannot be written ({exc.strerror or exc}).",
                            path=str(out)) from None


# --------------------------------------------------------------------------- keel spec validate
def gate_misfits(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """Label gates that do not fit a model's task when only its runtime tells the task
    (``keel spec validate``).

    When the output contract tells the task, loading the spec already refused a misfit.

    Returns:
        One problem per misfit: ``{path, rule, got, message}``.
    """
    from keelwork.core.rollout.analysis import LABEL_GATES
    from keelwork.spec.model import (
        CLASSIFICATION_GATES,
        REGRESSION_GATES,
        misfit_gates,
        output_task,
    )

    spec = resolved.spec
    gates = spec.rollout.gates
    if output_task(spec.contract) is not None or not any(
            getattr(gates, g) is not None for g in LABEL_GATES):
        return []
    from keelwork.service.models import model_task

    out = []
    for m in spec.models:
        task = model_task(resolved, m.name)
        for gate in misfit_gates(gates, task):
            fits = CLASSIFICATION_GATES if task == "classification" else REGRESSION_GATES
            out.append({"path": f"rollout.gates.{gate}", "rule": "gate_task", "got": gate,
                        "message": f"rollout.gates.{gate} does not fit model {m.name!r}, a "
                                   f"{task} model (as its runtime tells); use "
                                   f"{', '.join(fits)}."})
    return out


__all__ = ["DEFAULT_MARGIN", "Draft", "Validation", "check_outputs", "check_table",
           "exclude_fields", "gate_misfits", "infer_draft", "load_contract", "validate_file",
           "write_draft"]
