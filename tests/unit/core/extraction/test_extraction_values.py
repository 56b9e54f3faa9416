"""Money, dates and currency marks found in a line of layout text."""

from __future__ import annotations

import pytest

from keelwork.core.extraction.values import currencies_in, dates_in, money_in


@pytest.mark.parametrize(("line", "values"), [
    ("Total   1,234.56", [1234.56]),
    ("Summe   1.234,56 EUR", [1234.56]),
    ("Razem   316,83", [316.83]),
    ("Total   12 345,00", [12345.0]),
    ("Grand Total    Rs 1939", [1939.0]),
    ("Discount Rs -40.00,", [-40.0]),
    ("Tax 14.50%   40.39", [40.39]),
    ("Invoice CN27101245 on 2021-01-01 for 5,77", [5.77]),
])
def test_money_in_either_decimal_convention(line: str, values: list[float]) -> None:
    assert [f.value for f in money_in(line)] == values


def test_a_date_is_not_money() -> None:
    assert [f.value for f in money_in("DUE ON August 3 , 2014    $4.11")] == [4.11]
    assert money_in("28/11/2022") == []


@pytest.mark.parametrize(("line", "iso"), [
    ("Data wystawienia: 2021-01-01", "2021-01-01"),
    ("Date : 28/11/2022", "2022-11-28"),
    ("Datum 28.11.22", "2022-11-28"),
    ("Invoice Date:     August 3 , 2014", "2014-08-03"),
    ("Rechnungsdatum    7. Mai 2014", "2014-05-07"),
    ("du 02 Juillet 2015", "2015-07-02"),
    ("Date: Jan 1, 2022", "2022-01-01"),
    ("12/31/2017", "2017-12-31"),
    ("dnia 5 lutego 2021", "2021-02-05"),
])
def test_dates_numeric_and_written(line: str, iso: str) -> None:
    got = dates_in(line)
    assert [f.value for f in got] == [iso]
    assert line[got[0].start:got[0].end].strip()


def test_impossible_dates_and_ranges_are_not_dates() -> None:
    assert dates_in("31/02/2020") == []
    assert dates_in("32 May 2020 and 3 Foo 2020") == []
    assert dates_in("01.05.14-31.05.14") == []


def test_day_first_unless_it_cannot_be() -> None:
    (a,) = dates_in("03/04/2020")
    (b,) = dates_in("13/04/2020")
    assert (a.value, a.ambiguous) == ("2020-04-03", True)
    assert (b.value, b.ambiguous) == ("2020-04-13", False)


def test_currency_marks_counted_once_with_bare_dollars_ambiguous() -> None:
    assert currencies_in("US$ 4 and $5, Rs 10, 3 € or EUR, 7 zł") == [
        ("USD", False), ("EUR", False), ("EUR", False), ("INR", False), ("PLN", False),
        ("USD", True)]
    assert currencies_in("no money here") == []
