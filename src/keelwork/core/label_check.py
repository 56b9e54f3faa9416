"""Ground-truth labels checked against the output contract (``contract.outputs``).

A label is the truth of what the model predicts, so it must be a value the prediction could
be: one of a category output's categories, a number for a numeric output, and so on. Labels
are checked by the type rules of the contract's outputs (``type``, ``categories``, lengths,
``allow_nan``), the same rules and rule names as requests' inputs; a numeric output's
``min``/``max`` bound what the model answers, not what the truth may be, so they are not
applied.

A plain label is checked against the first output (the prediction); a label that is an object
is checked field by field against the outputs it names, e.g. ``{"label": "good"}``. An object
may also carry the checker's ``attributes`` (keel.yaml's ``fairness.label_fields``: protected
fields sent with the truth), each a string, number, boolean or null.
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
        attributes: Fields a label object may carry beside the outputs.
    """

    def __init__(self, outputs: Sequence[FieldSpec], attributes: Sequence[str] = ()) -> None:
        self.outputs = list(outputs)
        self.attributes = frozenset(attributes)
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
        out: list[ErrorDetail] = []
        for i, label in enumerate(labels):
            if label is None:
                continue
            if isinstance(label, Mapping):
                record = {k: v for k, v in label.items() if k not in self.attributes}
                out.extend(self._attribute_problems(label, path.format(i=i)))
            else:
                record = {target: label}
            records.append(record)
            positions.append(i)
        if not records:
            return out
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

    def _attribute_problems(self, label: Mapping[str, Any], where: str) -> list[ErrorDetail]:
        return [ErrorDetail(f"{where}.{k}", "type", type(v).__name__,
                            f"The '{where}.{k}' field (a protected attribute of "
                            f"fairness.label_fields) must be a string, number, boolean or "
                            f"null; got {type(v).__name__}.")
                for k, v in label.items() if k in self.attributes
                and not (v is None or isinstance(v, str | int | float | bool))]
