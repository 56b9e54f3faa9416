"""Check digits and numbering rules that turn a pattern match into a finding.

Each function takes the matched text and answers yes or no; none raises on any input.
"""

from __future__ import annotations

import ipaddress
from datetime import date

#: IBAN length per country (ISO 13616 registry), letters and digits without spaces.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a payment card number given as 12 to 19 digits."""
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        return False  # (other scripts' digits: no card is printed so; the scan is ASCII)
    # every second digit from the right doubled (its digit sum taken), the others as they
    # are; summed as byte values in C (each digit is its code minus 48)
    raw = digits.encode()
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0 and len(set(digits)) > 1


#: Each digit to the digit sum of its double ("7" -> 14 -> "5"), as a bytes table.
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def iban_ok(compact: str) -> bool:
    """An IBAN without spaces: a known country, its length, and ISO 7064 mod 97-10 == 1."""
    if len(compact) < 15 or not compact.isascii() or not compact.isalnum():
        return False
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    # letters become 10..35, then the whole number mod 97 (one big-integer operation)
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97 == 1


_IBAN_LETTERS = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


#: Numbers the SSA never issues or that circulate as examples (Woolworth's wallet card).
_SSN_EXAMPLES = frozenset({"078051120", "219099999", "123456789", "457555462"})


def ssn_ok(digits: str) -> bool:
    """A US Social Security number's numbering rules (area, group, serial), digits only.

    Area 000, 666 and 900-999 are never issued; group 00 and serial 0000 neither; a number of
    one repeated digit and the well-known advertised examples are refused too.
    """
    if len(digits) != 9 or not digits.isdigit() or digits in _SSN_EXAMPLES:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    return len(set(digits)) > 1


def ip_ok(candidate: str) -> bool:
    """An IPv4 or IPv6 address as :mod:`ipaddress` parses it (no leading-zero octets)."""
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def date_ok(year: int, month: int, day: int) -> bool:
    """A real calendar day between 1900 and 2100."""
    if not 1900 <= year <= 2100:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
