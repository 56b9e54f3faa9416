"""Ground-truth labels checked against the output contract (``contract.outputs``).

A label is the truth of what the model predicts, so it must be a value the prediction could
be: one of a category output's categories, a number for a numeric output, and so on. Labels
are checked by the type rules of the contract's outputs (``type``, ``categories``, lengths,
``allow_nan``), the same rules and rule names as requests' inputs; a numeric output's
``min``/``max`` bound what the model answers, not what the truth may be, so they are not
applied.

A plain label is checked against the first output (the prediction); a label that is an object
is checked field by field against the outputs it names, e.g. ``{"label": "good"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.contracts import compile_contract
from keelwork.errors import ErrorDetail
from keelwork.spec.contract import ContractSection, FieldSpec


class LabelChecker:
    """Checks labels against ``outputs`` (no outputs: every label passes).

    Args:
        outputs: The contract's outputs, the prediction first.
    """

    def __init__(self, outputs: Sequence[FieldSpec]) -> None:
        self.outputs = list(outputs)
        fields = [f.model_copy(update={"min": None, "max": None, "required": False})
                  for f in self.outputs]
        self._validator = (compile_contract(ContractSection(inputs=fields,
                                                            extra_fields="reject"))
                           if fields else None)

    @property
    def active(self) -> bool:
        return self._validator is not None

    def check(self, labels: Sequence[Any], path: str = "labels[{i}].label"
              ) -> list[ErrorDetail]:
        """Every problem of ``labels`` (``None`` entries are skipped: absence is not a type
        error, the caller's ``required`` rule reports it).

        Args:
            labels: The labels, in order.
            path: The path of the i-th label in the caller's terms (``{i}`` is replaced).

        Returns:
            Problems with ``path`` naming the label (and the output, for object labels).
        """
        if self._validator is None:
            return []
        target = self.outputs[0].name
        records: list[Any] = []
        positions: list[int] = []
        for i, label in enumerate(labels):
            if label is None:
                continue
            records.append(dict(label) if isinstance(label, Mapping) else {target: label})
            positions.append(i)
        if not records:
            return []
        out: list[ErrorDetail] = []
        for d in self._validator.validate_batch(records):
            row, _, name = d.path.removeprefix("instances[").partition("].")
            i = positions[int(row)]
            plain = not isinstance(labels[i], Mapping)
            where = path.format(i=i) + ("" if plain else f".{name}")
            if d.rule == "extra_field":
                message = (f"The '{where}' field is not an output of the contract; a label "
                           f"object names outputs: {', '.join(f.name for f in self.outputs)}.")
            else:
                message = (d.message.replace(f"'{d.path}'", f"'{where}'", 1).rstrip(".")
                           + f" (the output '{target if plain else name}' of the contract).")
            out.append(ErrorDetail(where, d.rule, d.got, message))
        return out
