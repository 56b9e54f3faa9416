"""The invoice field rules on synthetic layout text (what ``pdftotext -layout`` writes: columns
apart by runs of spaces), one rule at a time, and the served callable's record."""

from __future__ import annotations

import pytest

from keelwork.core.extraction.invoices import FIELDS, MAX_TEXT, extract, extract_fields
from keelwork.errors import InvalidInputError

LAYOUT = """\
Acme Tools GmbH - Werkstrasse 5 - 12345 Berlin

                                              Invoice Number:        AT-2031-77
Bill to:                                      Invoice Date:          14 March 2023
Globex Ltd                                    Due Date:              13/04/2023

Item                         Qty      Price        Amount
Hammer                         2      10,00 EUR    20,00 EUR
Subtotal                                           20,00 EUR
VAT 19%                                             3,80 EUR
Total due                                          23,80 EUR

Acme Tools GmbH, Berlin. Thank you for your order.
"""


def test_fields_of_a_labelled_layout() -> None:
    got = extract_fields(LAYOUT)
    assert got["amount"].value == 23.80 and got["amount"].confidence >= 0.9
    assert got["date"].value == "2023-03-14" and got["date"].rule == "invoice-date label"
    assert got["invoice_number"].value == "AT-2031-77"
    assert (got["currency"].value, got["currency"].confidence) == ("EUR", 0.95)
    assert got["issuer"].value == "Acme Tools GmbH"
    assert got["issuer"].rule == "sender line, recurs" and got["issuer"].confidence == 0.8


def test_the_payable_total_wins_over_subtotal_net_and_tax_lines() -> None:
    text = ("Subtotal          1.200,00\nTotal HT          1.200,00\nTVA 20%             240,00\n"
            "Total TTC         1.440,00 €\n")
    assert extract_fields(text)["amount"].value == 1440.0
    plain = "Net amount   100.00\nTotal        119.00\n"
    got = extract_fields(plain)["amount"]
    assert (got.value, got.confidence, got.rule) == (119.0, 0.75, "total line")


def test_disagreeing_payable_lines_lower_the_amount_confidence() -> None:
    got = extract_fields("Amount due   $50.00\nBalance due  $45.00\n")["amount"]
    assert got.value == 50.0 and got.confidence == pytest.approx(0.6)


def test_without_a_total_the_largest_amount_is_a_weak_guess() -> None:
    got = extract_fields("Widget   3.50\nGadget   12.25\nOn 2024-01-02\n")["amount"]
    assert (got.value, got.confidence) == (12.25, 0.3)


def test_the_amount_is_read_under_its_label_when_the_line_has_none() -> None:
    text = "    Grand Total\n    1,939.00\n"
    assert extract_fields(text)["amount"].value == 1939.0


def test_due_order_and_service_dates_are_not_the_invoice_date() -> None:
    text = ("Order Date: 01-02-2020\nDue Date: 28-02-2020\nDate: 15-02-2020\n")
    got = extract_fields(text)["date"]
    assert (got.value, got.rule) == ("2020-02-15", "date label")


def test_a_date_that_reads_both_ways_costs_confidence() -> None:
    got = extract_fields("Date: 03/04/2020\n")["date"]
    assert got.value == "2020-04-03" and got.confidence == pytest.approx(0.6)
    assert "ambiguous" in got.rule


def test_the_date_on_an_invoice_number_line() -> None:
    got = extract_fields("Facture n°88123 du 2 juillet 2015\n")
    assert got["date"].value == "2015-07-02" and got["invoice_number"].value == "88123"


@pytest.mark.parametrize(("line", "number"), [
    ("Rechnungsnr.       4711-0815", "4711-0815"),
    ("Invoice No : # INV_2020_11", "INV_2020_11"),
    ("Faktura nr: FV 12/2021", "FV 12/2021"),
    ("Numéro de facture : 2022-0042", "2022-0042"),
])
def test_invoice_number_labels_in_several_languages(line: str, number: str) -> None:
    got = extract_fields(line + "\n")["invoice_number"]
    assert (got.value, got.rule) == (number, "invoice-number label")


def test_a_reference_is_only_a_weak_invoice_number() -> None:
    text = "Booking ID          Payment Mode\nXK2087              Card\n"
    got = extract_fields(text)["invoice_number"]
    assert (got.value, got.confidence) == ("XK2087", 0.5)


def test_a_hash_identifier_near_the_word_invoice() -> None:
    got = extract_fields("                 INVOICE\n                 # 2019-A-7\n")
    assert got["invoice_number"].value == "2019-A-7"


def test_a_bare_dollar_sign_is_a_capped_currency() -> None:
    got = extract_fields("Total: $12.00\nTax: $0.00\n")["currency"]
    assert (got.value, got.confidence) == ("USD", 0.75)
    mixed = extract_fields("Rs 100 Rs 200 INR 300 USD 4\n")["currency"]
    assert mixed.value == "INR" and mixed.confidence == round(0.5 + 0.45 * 3 / 4, 2)


def test_a_seller_label_names_the_issuer_on_its_line_or_under_it() -> None:
    same_line = extract_fields("Sold By : Northwind Traders Ltd.,  Warehouse 4\n")["issuer"]
    assert (same_line.value, same_line.confidence) == ("Northwind Traders Ltd.", 0.85)
    under = extract_fields("Notes             Service Provider:\n"
                           "                  (not for remittance)\n"
                           "                  Contoso Cloud, Inc.\n")["issuer"]
    assert under.value == "Contoso Cloud, Inc."


def test_titles_and_labelled_lines_are_not_the_sender() -> None:
    got = extract_fields("PAYMENT RECEIPT\nGuest: Ann\nHarbor View Hotel\n")["issuer"]
    assert (got.value, got.confidence) == ("Harbor View Hotel", 0.6)


def test_nothing_found_is_none_with_zero_confidence() -> None:
    got = extract([{"text": ""}])[0]
    assert all(got[f] is None and got[f"{f}_confidence"] == 0.0 for f in FIELDS)


def test_the_callable_answers_one_flat_record_per_instance() -> None:
    got = extract([{"text": LAYOUT}, LAYOUT])
    assert got[0] == got[1]
    assert list(got[0]) == [k for f in FIELDS for k in (f, f"{f}_confidence")]


@pytest.mark.parametrize(("instance", "why"), [
    ({"text": 3}, "must be a string"), ({"body": "x"}, "must be a string"),
    ({"text": "x" * (MAX_TEXT + 1)}, "at most"),
])
def test_bad_instances_are_refused_naming_them(instance: object, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why) as caught:
        extract([{"text": "ok"}, instance])
    assert "instance 1" in str(caught.value)
