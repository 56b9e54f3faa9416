"""Seconds per unit of the durations keel.yaml and the commands take (``250ms``, ``5m``, ``7d``).

One table for every parser of a duration (monitoring windows and label delays, rollout
intervals, feature TTLs, ``--since``), so a unit means the same everywhere; each parser keeps
the grammar its setting needs (whole numbers for windows, fractions for intervals, ...).
"""

from __future__ import annotations

from typing import Final

UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
