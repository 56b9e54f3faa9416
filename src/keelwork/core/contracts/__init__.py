"""Data contracts: the ``contract`` section of keel.yaml, enforced on every request.

``compile_contract(spec.contract)`` compiles the inputs once into a
:class:`~keelwork.core.contracts.record.RecordValidator`; its rule names are listed in
:mod:`keelwork.core.contracts.record`; ``compile_outputs(spec.contract)`` does the same for
what the model answers (:mod:`keelwork.core.contracts.outputs`). Pure Python: no numpy on the
record path, no I/O.
"""

from __future__ import annotations

from keelwork.core.contracts.outputs import OutputValidator, compile_outputs
from keelwork.core.contracts.record import RULES, RecordValidator, compile_contract, summarise

__all__ = ["RULES", "OutputValidator", "RecordValidator", "compile_contract", "compile_outputs",
           "summarise"]
