"""Token buckets and shares of one limit between servers (keelwork.core.ratelimit)."""

from __future__ import annotations

import pytest

from keelwork.core.ratelimit import Bucket, Buckets, share, take


def test_a_bucket_allows_its_burst_then_the_rate() -> None:
    b = Bucket(tokens=3.0, at=0.0)
    assert [take(b, 0.0, 2.0, 3.0) for _ in range(3)] == [None, None, None]
    wait = take(b, 0.0, 2.0, 3.0)
    assert wait == pytest.approx(0.5)  # one token every 1/2 s
    assert take(b, 0.5, 2.0, 3.0) is None
    assert take(b, 0.6, 2.0, 3.0) == pytest.approx(0.4)
    # Idle for long: back to the burst, never more.
    assert [take(b, 100.0, 2.0, 3.0) for _ in range(4)][-1] is not None


def test_shares_follow_demand_and_a_lone_server_gets_everything() -> None:
    assert share(30.0, 0.0) == 1.0
    assert share(0.0, 0.0) == 1.0
    assert share(30.0, 10.0) == pytest.approx(0.75)


def test_the_table_of_identities_is_bounded_and_counts_demand() -> None:
    table = Buckets(limit=3)
    for name in ("a", "b", "c", "d"):
        take(table.get(name, 0.0, 1.0), 0.0, 1.0, 1.0)
    assert len(table) == 3
    take(table.get("d", 0.0, 1.0), 0.0, 1.0, 1.0)
    assert table.demand() == {"b": 1, "c": 1, "d": 2}
    assert table.demand() == {}
