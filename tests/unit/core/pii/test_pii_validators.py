"""Check digits and numbering rules: Luhn, IBAN mod 97, SSN areas, IP addresses, dates."""

from __future__ import annotations

import pytest

from keelwork.core.pii.validators import IBAN_LENGTHS, date_ok, iban_ok, ip_ok, luhn_ok, ssn_ok


@pytest.mark.parametrize("number", ["4111111111111111", "5500000000000004", "378282246310005",
                                    "6011111111111117", "4222222222222", "3530111333300000"])
def test_luhn_accepts_valid_card_numbers(number: str) -> None:
    assert luhn_ok(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "0000000000000000",
                                    "41111111111", "41111111111111111111", "4111-1111-1111-1111"])
def test_luhn_refuses_bad_check_digits_lengths_and_separators(number: str) -> None:
    assert not luhn_ok(number)


def test_every_single_digit_change_breaks_the_luhn_check() -> None:
    valid = "4111111111111111"
    for i in range(len(valid)):
        for d in "0123456789":
            if d != valid[i]:
                assert not luhn_ok(valid[:i] + d + valid[i + 1:])


@pytest.mark.parametrize("iban", ["GB82WEST12345698765432", "DE89370400440532013000",
                                  "FR1420041010050500013M02606", "NL91ABNA0417164300",
                                  "NO9386011117947", "CH9300762011623852957"])
def test_iban_accepts_valid_numbers(iban: str) -> None:
    assert iban_ok(iban)


@pytest.mark.parametrize("iban", [
    "GB82WEST12345698765433",   # check digits off by one
    "GB82WEST1234569876543",    # one character short for GB
    "DE89370400440532013000X",  # too long for DE
    "ZZ82WEST12345698765432",   # no such country
    "GB8!WEST12345698765432",   # not alphanumeric
])
def test_iban_refuses_bad_checksum_length_country(iban: str) -> None:
    assert not iban_ok(iban)


def test_iban_length_table_is_the_registry_shape() -> None:
    assert IBAN_LENGTHS["GB"] == 22 and IBAN_LENGTHS["NO"] == 15 and IBAN_LENGTHS["LC"] == 32
    assert all(15 <= n <= 34 for n in IBAN_LENGTHS.values())


@pytest.mark.parametrize("ssn", ["536901234", "001010001", "665123456", "899991234"])
def test_ssn_accepts_issuable_numbers(ssn: str) -> None:
    assert ssn_ok(ssn)


@pytest.mark.parametrize("ssn", ["000123456", "666123456", "900123456", "999123456",
                                 "123001234", "123450000", "111111111", "078051120",
                                 "123456789", "12345678", "12345678a"])
def test_ssn_refuses_never_issued_areas_groups_serials_and_examples(ssn: str) -> None:
    assert not ssn_ok(ssn)


@pytest.mark.parametrize(("ip", "ok"), [("192.168.1.1", True), ("255.255.255.255", True),
                                         ("256.1.1.1", False), ("01.2.3.4", False),
                                         ("2001:db8::1", True), ("fe80::1:2:3:4", True),
                                         ("10:30:00", False), ("2001:db8:::1", False)])
def test_ip_addresses_as_ipaddress_parses_them(ip: str, ok: bool) -> None:
    assert ip_ok(ip) is ok


def test_dates_must_be_real_calendar_days() -> None:
    assert date_ok(2000, 2, 29) and not date_ok(1900, 2, 29) and not date_ok(1985, 13, 1)
    assert not date_ok(1850, 1, 1)
