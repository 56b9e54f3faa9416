"""The output side of a contract: what the model answered, checked like a request's inputs.

``contract.outputs`` declares the fields of one answer. An answer is checked as a record of
those fields: a mapping (``{"label": ..., "score": ...}``) by name, an array in field order,
and a bare value (what a scikit-learn classifier or regressor returns) as the one declared
field when there is exactly one. The rules are the inputs' (:mod:`keelwork.core.contracts.record`):
a category outside ``categories``, a string where a number is declared, a value out of range.

What happens to a violation is ``contract.output_policy``'s: ``warn`` answers, logs, counts and
says so in the response; ``strict`` refuses the answer (the gateway raises
:class:`~keelwork.errors.OutputContractViolation`, a 500 naming the contract).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.contracts.record import RecordValidator
from keelwork.errors import ErrorDetail
from keelwork.spec.contract import ContractSection


class OutputValidator:
    """The compiled output contract; :meth:`validate_batch` lists every violation.

    Args:
        contract: The ``contract`` section of keel.yaml (its ``outputs``).
    """

    __slots__ = ("_names", "_single", "_validator")

    def __init__(self, contract: ContractSection) -> None:
        # The output fields as a record contract; fields a model adds beyond them are its own
        # business (a dict answer may carry more than the contract names).
        self._validator = RecordValidator(ContractSection(inputs=list(contract.outputs),
                                                          extra_fields="ignore"))
        self._names = tuple(f.name for f in contract.outputs)
        self._single = self._names[0] if len(self._names) == 1 else None

    @property
    def field_names(self) -> tuple[str, ...]:
        """The declared output fields, in contract order."""
        return self._names

    def validate_batch(self, outputs: Sequence[Any],
                       prefix: str = "predictions") -> list[ErrorDetail]:
        """Every violation of every answer, with paths ``predictions[i].field``."""
        out: list[ErrorDetail] = []
        for i, answer in enumerate(outputs):
            out.extend(self._validator.validate(self._record(answer), i, prefix=prefix))
        return out

    def _record(self, answer: Any) -> Any:
        if isinstance(answer, Mapping):
            return answer
        if self._single is not None and not (
                isinstance(answer, list | tuple) and len(self._names) > 1):
            return {self._single: answer}
        return answer


def compile_outputs(contract: ContractSection) -> OutputValidator | None:
    """The output validator of ``contract``; None when it declares no outputs."""
    return OutputValidator(contract) if contract.outputs else None


_ROW = re.compile(r"^predictions\[(\d+)\]")


def rows_of(broken: Sequence[ErrorDetail], n: int) -> set[int]:
    """The answers (positions in a batch of ``n``) that ``broken`` names: the log and the
    review queue flag those, not their batch-mates; a problem naming no answer flags all."""
    rows: set[int] = set()
    for d in broken:
        m = _ROW.match(d.path)
        if m is None:
            return set(range(n))
        rows.add(int(m.group(1)))
    return rows


__all__ = ["OutputValidator", "compile_outputs", "rows_of"]
