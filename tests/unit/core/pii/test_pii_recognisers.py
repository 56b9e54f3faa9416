"""Each built-in recogniser: what it finds (exact spans), and what it must leave alone."""

from __future__ import annotations

import pytest

from keelwork.core.pii import PiiAnalyzer


def found(text: str, entity: str) -> list[str]:
    return [text[s.start:s.end] for s in PiiAnalyzer([entity]).analyze(text)]


def found_all(text: str) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.entity) for s in PiiAnalyzer().analyze(text)]


@pytest.mark.parametrize(("text", "want"), [
    ("mail john.smith+tag@mail.example.co.uk now", ["john.smith+tag@mail.example.co.uk"]),
    ("Reply-To: a_b%c@x-y.org.", ["a_b%c@x-y.org"]),
    ("two: a@b.io, c.d@e.fr", ["a@b.io", "c.d@e.fr"]),
])
def test_email_addresses(text: str, want: list[str]) -> None:
    assert found(text, "EMAIL_ADDRESS") == want


@pytest.mark.parametrize("text", ["user@localhost", "a..b@x.com", ".a@x.com", "@x.com",
                                  "x@y.c0m", "price 5@3.50 each"])
def test_not_email_addresses(text: str) -> None:
    assert found(text, "EMAIL_ADDRESS") == []


@pytest.mark.parametrize(("text", "want"), [
    ("see https://www.example.com/a/b?q=1#x.", ["https://www.example.com/a/b?q=1#x"]),
    ("(docs at www.python.org)", ["www.python.org"]),
    ("ftp://10.0.0.1/pub and http://localhost:8000/x", ["ftp://10.0.0.1/pub",
                                                        "http://localhost:8000/x"]),
    ("the wiki (https://en.wikipedia.org/wiki/Foo_(bar)) says", [
        "https://en.wikipedia.org/wiki/Foo_(bar)"]),
])
def test_urls(text: str, want: list[str]) -> None:
    assert found(text, "URL") == want


@pytest.mark.parametrize("text", ["write to john.smith@www.example.com today",
                                  "contact: sales@example.com", "example.com is bare",
                                  "http://nodot/ is no host"])
def test_no_url_inside_an_email_address_or_without_a_scheme(text: str) -> None:
    assert found(text, "URL") == []


def test_email_wins_over_any_url_reading_of_it() -> None:
    text = "mail me at jane@www.example.org or see www.example.org"
    assert found_all(text) == [("jane@www.example.org", "EMAIL_ADDRESS"),
                               ("www.example.org", "URL")]


@pytest.mark.parametrize(("text", "want"), [
    ("from 192.168.0.12.", ["192.168.0.12"]),
    ("v6 2001:db8:85a3::8a2e:370:7334 and ::ffff:10.0.0.1", ["2001:db8:85a3::8a2e:370:7334",
                                                           "::ffff:10.0.0.1"]),
])
def test_ip_addresses(text: str, want: list[str]) -> None:
    assert found(text, "IP_ADDRESS") == want


@pytest.mark.parametrize("text", ["version 1.2.3.4.5", "999.1.1.1", "at 10:30:45 sharp",
                                  "ratio 3.14"])
def test_not_ip_addresses(text: str) -> None:
    assert found(text, "IP_ADDRESS") == []


@pytest.mark.parametrize(("text", "want"), [
    ("card 4111 1111 1111 1111 exp 12/27", ["4111 1111 1111 1111"]),
    ("amex 3782-822463-10005.", ["3782-822463-10005"]),
    ("raw 5500000000000004", ["5500000000000004"]),
    ("card 4111 1111 1111 1111 1234", ["4111 1111 1111 1111"]),  # a trailing number apart
    ("card 0604 7805 9250", ["0604 7805 9250"]),  # 12 digits with the word
])
def test_cards(text: str, want: list[str]) -> None:
    assert found(text, "CREDIT_CARD") == want


@pytest.mark.parametrize("text", ["card 4111 1111 1111 1112", "order 1234567812345678",
                                  "ref 0000 0000 0000 0000", "id 4111-1111-111",
                                  # Luhn-valid, but grouped as phone numbers are
                                  "Fax: 001-579-985-4326", "Mobile: +39 32426250891"])
def test_not_cards(text: str) -> None:
    assert found(text, "CREDIT_CARD") == []


@pytest.mark.parametrize(("text", "want"), [
    ("to GB82WEST12345698765432 please", ["GB82WEST12345698765432"]),
    ("IBAN: DE89 3704 0044 0532 0130 00, thanks", ["DE89 3704 0044 0532 0130 00"]),
    ("FR1420041010050500013M02606 ok", ["FR1420041010050500013M02606"]),
])
def test_ibans(text: str, want: list[str]) -> None:
    assert found(text, "IBAN_CODE") == want


@pytest.mark.parametrize("text", ["GB82WEST12345698765433", "GB82WEST1234569876543",
                                  "GB82WEST12345698765432X", "ZZ82WEST12345698765432"])
def test_not_ibans(text: str) -> None:
    assert found(text, "IBAN_CODE") == []


@pytest.mark.parametrize(("text", "want"), [
    ("SSN 536-90-1234.", ["536-90-1234"]), ("ssn: 536 90 1234", ["536 90 1234"]),
    ("my social security number is 536901234", ["536901234"]),
    ("applicant 536-90-1234 filed", ["536-90-1234"]),
    ("she listed 536901234 as her social security number", ["536901234"]),
])
def test_ssns(text: str, want: list[str]) -> None:
    assert found(text, "US_SSN") == want


@pytest.mark.parametrize("text", ["SSN 666-12-3456", "SSN 900-12-3456", "SSN 536-00-1234",
                                  "SSN 536-90-0000", "order 536901234", "SSN 536-90 1234"])
def test_not_ssns(text: str) -> None:
    assert found(text, "US_SSN") == []


@pytest.mark.parametrize(("text", "want"), [
    ("call +1-202-555-0143x123 now", ["+1-202-555-0143x123"]),
    ("UK: +44 20 7946 0958 or (020) 7946 0958.", ["+44 20 7946 0958", "(020) 7946 0958"]),
    ("fr 01 23 45 67 89, de +49 (0)30 1234567", ["01 23 45 67 89", "+49 (0)30 1234567"]),
    ("US 202.555.0143 ext. 42", ["202.555.0143 ext. 42"]),
    ("my phone is 2025550143", ["2025550143"]),
    ("Is 4901 2577 still the best number for you?", ["4901 2577"]),  # the word after it
    ("0432 903 403-Office, 5616.4866-Fax", ["0432 903 403", "5616.4866"]),
    ("Mobile: 6044.7319", ["6044.7319"]),  # dotted 4.4 only beside a phone word
    ("the courier will ring 0228123587 at noon", ["0228123587"]),
    ("stop sending messages to 0123105581", ["0123105581"]),
    ("Fax: 001-579-985-4326", ["001-579-985-4326"]),
    ("Mobile: +39 32426250891", ["+39 32426250891"]),
    ("call 00288 199721", ["00288 199721"]),  # 00 then no calling code: a national number
])
def test_phones(text: str, want: list[str]) -> None:
    assert found(text, "PHONE_NUMBER") == want


@pytest.mark.parametrize("text", [
    "order 2025550143 shipped",        # bare digits without a phone word
    "on 2023-01-05 and 12/05/2023",    # dates
    "between 2019-2021",               # a year range
    "SSN 536-90-1234",                 # an SSN's shape
    "pi is 3.14159265",                # a decimal
    "+999 123 4567",                   # no such country code
    "card 4111 1111 1111 1111",        # 16 digits: more than E.164 allows
    "Reference number 20231105-77 closed",  # a date-stamped reference
    "your order number is 2025550143",      # "number" of an order
    "listed 536901234 as her social security number",  # an SSN
    "the value 6044.7319",             # a decimal without a phone word
    "hotel room 2025550143",           # "tel" inside a word is no phone word
])
def test_not_phones(text: str) -> None:
    assert found(text, "PHONE_NUMBER") == []


def test_an_ibans_digits_are_the_iban_not_a_phone() -> None:
    assert found_all("pay GB82 WEST 1234 5698 7654 32 now") == [
        ("GB82 WEST 1234 5698 7654 32", "IBAN_CODE")]


@pytest.mark.parametrize(("text", "want"), [
    ("born on 12 March 1985.", ["12 March 1985"]), ("DOB: 1985-03-12", ["1985-03-12"]),
    ("date of birth March 12th, 1985", ["March 12th, 1985"]),
    ("birthday 12.03.85", ["12.03.85"]), ("b. 03/25/1990", ["03/25/1990"]),
])
def test_dates_of_birth(text: str, want: list[str]) -> None:
    assert found(text, "DATE_OF_BIRTH") == want


@pytest.mark.parametrize("text", ["born on 31 February 1985", "Date: 2019-03-30",
                                  "shipped on 12/05/2023", "at 2018-03-30 01:55 UTC",
                                  "born in 1985", "version 1.2.3"])
def test_not_dates_of_birth(text: str) -> None:
    assert found(text, "DATE_OF_BIRTH") == []


@pytest.mark.parametrize(("text", "want"), [
    ("My name is Mary Johnson.", ["Mary Johnson"]),
    ("Please ask Mr. O'Neil about it", ["O'Neil"]),
    ("Dear Olufemi, thanks", ["Olufemi"]),
    ("I met Ludmila Hoffmann's brother", ["Ludmila Hoffmann"]),
    ("said Jennifer to Robert", ["Jennifer", "Robert"]),
    ("please change it to Max van Maaren", ["Max van Maaren"]),  # a surname particle
    ("add Floortje de la Fleche as guardian", ["Floortje de la Fleche"]),
    ("They had 3: Kimberly, Regina, Mathew and Denise.", ["Kimberly", "Regina", "Mathew",
                                                          "Denise"]),  # a list, not a firm
    ("The ticket was escalated to Brandon.", ["Brandon"]),  # a town's name too
    ("the verses from Aurora Garcés's poems", ["Aurora Garcés"]),
    ("from Trevor Armstrong's Cautionary Tales", ["Trevor Armstrong"]),  # not the book
])
def test_persons(text: str, want: list[str]) -> None:
    assert found(text, "PERSON") == want


@pytest.mark.parametrize("text", [
    "Please Will you call May 5?", "Smith, Jones and Brown is a law firm",
    "Johnson and Sons Ltd", "I live at 221 Baker Street",
    "send it to USNS Cook, FPO AE", "It is in Box 4062",
    "see Guilty Pleasures: Musicians You Secretly Love",  # English words, title-cased
    "The Big Three Killed My Baby was a hit",  # a title in title case
    "songs for Entertainment Weekly", "before Labor Day",
    "at 606 Williams Vista", "the Civil Rights Act",
    "Smith, Jones and Brown, Lee, Wong and Hill are firms",
])
def test_not_persons(text: str) -> None:
    assert found(text, "PERSON") == []


@pytest.mark.parametrize(("text", "want"), [
    ("I flew from Germany to New York.", ["Germany", "New York"]),
    ("She lives in Bosnia and Herzegovina", ["Bosnia and Herzegovina"]),
    ("we moved to Pittsburgh", ["Pittsburgh"]),
    ("we moved to Brandon", ["Brandon"]),  # a given name, but "moved to" says a town
    ("grew up in Sainte Maryse-sur-Mer.", ["Sainte Maryse-sur-Mer"]),
])
def test_locations(text: str, want: list[str]) -> None:
    assert found(text, "LOCATION") == want
