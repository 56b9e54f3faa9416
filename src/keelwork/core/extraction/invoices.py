"""An invoice's fields from its layout text (``pdftotext -layout``), by general rules (pure).

Five fields, each with a confidence in [0, 1] that says which rule found it:

- ``amount``: the last amount on a line labelled as what is payable ("grand total", "amount
  due", "total TTC", "Gesamtbetrag", ...: 0.9), else on a plain "total" line that is not a
  subtotal, net or tax line (0.75), else the largest amount with a fraction (0.3); several
  labelled lines agreeing add 0.05, disagreeing ones cost 0.3.
- ``date``: the date after an invoice-date label (0.9), on an invoice-number line ("Facture
  n° 12 du 2 juillet 2015": 0.85), after a bare "date" label that is not a due, order,
  delivery or service date (0.8), else the first date of the text (0.4); a date that reads as
  another one month first (03/04/2020) costs 0.2.
- ``invoice_number``: the identifier (with a digit) after an invoice-number label (0.9), a
  ``# ID`` near the word "invoice" (0.75), after a reference label (booking, order: 0.5).
- ``currency``: the majority of the currency marks (codes, symbols, "Rs"), 0.5 + 0.45 x its
  share; 0.75 at most when it rests on bare ``$`` signs only.
- ``issuer``: the name after a seller label ("sold by", "service provider", "Sprzedawca":
  0.85), else the sender line at the top (0.6, or 0.8 when the name recurs in the text).

The labels are in English, French, German, Spanish, Italian, Dutch and Polish. Nothing here
knows any particular issuer. :func:`extract` is the model ``keelwork``'s ``python`` runtime
serves: instances ``{"text": ...}`` in, one flat record of values and ``*_confidence`` out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from keelwork.core.extraction.values import Found, currencies_in, dates_in, money_in, plain
from keelwork.errors import InvalidInputError

#: The fields, in output order.
FIELDS = ("issuer", "amount", "date", "invoice_number", "currency")
#: Text longer than this is refused (a document of a few pages is far shorter).
MAX_TEXT = 200_000

_PAYABLE = re.compile(
    r"grand total|total amount|amount due|balance due|total due|amount payable|total to pay|"
    r"total a payer|somme a payer|montant a payer|net a payer|total ttc|montant ttc|"
    r"total facture|rechnungsbetrag|gesamtbetrag|endbetrag|zu zahlen|naleznosc ogolem|"
    r"do zaplaty|importe total|total a pagar|totale da pagare|te betalen|total for this invoice")
_TOTAL = re.compile(r"(?<![a-z])(?:total|totale|summe|gesamt|somme|razem|totaal)(?![a-z])")
_NOT_TOTAL = re.compile(r"sub-?\s?total|zwischensumme|\bht\b|\bnet(?:to)?\b|untaxed|\bvat\b|"
                        r"\btax\b|\btva\b|mwst|ust\b|excl")
_INVOICE_DATE = re.compile(
    r"invoice date|date of invoice|rechnungsdatum|date de (?:la )?facture|date facture|"
    r"data wystawienia|data faktury|fecha de (?:la )?factura|data (?:della )?fattura|"
    r"factuurdatum|billing date|bill date|issue date|date of issue|date d'emission")
_DATE = re.compile(r"(?<![a-z])(?:date|datum|data|fecha|le)(?![a-z])")
_NOT_DATE = re.compile(r"due|order|deliver|ship|check|limite|echeance|faellig|fallig|ziel|"
                       r"payment|paiement|expir|period|valid|birth|livraison|lieferung|"
                       r"zahlung|commande|bestell|service|leistung|start|end")
_NUMBER_LABEL = re.compile(
    r"invoice\s*(?:number|no\b\.?|nr\b\.?|num\b\.?|#|id\b)|inv\.?\s*(?:no\b|#)|"
    r"facture\s*(?:n°|no\b|nº|numero)|numero de (?:la )?facture|"
    r"rechnungs?\s*-?\s*(?:nr\b|nummer|no\b)\.?|faktura\s*(?:vat\s*)?(?:nr\b|numer)\.?|"
    r"factuur\s*(?:nr\b|nummer)|fattura\s*n|factura\s*(?:n°|no\b|num)|"
    r"bill\s*(?:no\b|number)|receipt\s*(?:no\b|number|#)")
_REFERENCE_LABEL = re.compile(r"booking id|booking ref|order (?:id|no\b|number)|"
                              r"reference|document no|dossier|bestellnummer|zamowienie")
_INVOICE_WORD = re.compile(r"invoice|facture|rechnung|faktura|factura|fattura|factuur")
_HASH_ID = re.compile(r"#\s*([A-Za-z0-9][\w/.-]*\d[\w/.-]*)")
_ID = re.compile(r"[\s:#°º.\-]*([A-Za-z0-9][\w/.\-]*)(?: ([A-Za-z0-9][\w/.\-]*))?")
_SELLER = re.compile(
    r"sold by|seller|vendor|supplier|service provider|issued by|billed by|sprzedawca|"
    r"vendeur|verkaufer|lieferant|fournisseur|emetteur|proveedor|fornitore|leverancier")
_TITLE = re.compile(r"^(?:tax |retail |payment |commercial )?(?:invoices?|receipt|bill|"
                    r"rechnung|facture|faktura|factura|fattura|factuur|quittung|recu)"
                    r"(?:\W.*)?$")
_TRAILING_TITLE = re.compile(r"\s+(?:invoice|receipt|bill|rechnung|facture|faktura)$", re.I)
_GAP = re.compile(r"\s{2,}")


@dataclass(frozen=True, slots=True)
class Field:
    """An extracted value (None: not found), its confidence and the rule that found it."""

    value: Any
    confidence: float
    rule: str


_NONE = Field(None, 0.0, "not found")


def _lines(text: str) -> list[str]:
    return text.replace("\f", "\n").splitlines()


def _after(lines: list[str], label: re.Pattern[str], find: Callable[[str], list[Found]],
           *, exclude: re.Pattern[str] | None = None, below: int = 1,
           before: int = 0) -> list[tuple[Found, int]]:
    """Values ``find`` sees after each match of ``label`` (matched on :func:`plain` text):
    the first on the rest of its line, else the nearest one under the label in the next
    ``below`` lines. ``exclude`` refuses a label whose line holds it within ``before``
    characters before the label (0: anywhere on the line)."""
    out: list[tuple[Found, int]] = []
    for i, line in enumerate(lines):
        low = plain(line)
        for m in label.finditer(low):
            if exclude is not None:
                context = low[max(0, m.start() - before):m.start()] if before else low
                if exclude.search(context):
                    continue
            got = [f for f in find(line) if f.start >= m.end()]
            if got:
                out.append((got[0], i))
                continue
            for j in range(i + 1, min(len(lines), i + 1 + below)):
                under = [f for f in find(lines[j]) if abs(f.start - m.start()) <= 30]
                if under:
                    out.append((under[0], j))
                    break
    return out


def _agreeing(found: list[tuple[Found, int]], confidence: float, rule: str) -> Field | None:
    """The first value found, its confidence raised when others agree, lowered when not."""
    if not found:
        return None
    value = found[0][0].value
    values = {f.value for f, _ in found}
    if len(values) > 1:
        confidence -= 0.3
    elif len(found) > 1:
        confidence += 0.05
    return Field(value, round(min(confidence, 0.95), 2), rule)


def _last_money(line: str) -> list[Found]:
    """The amount a total line states: its last amount with a fraction, else its last."""
    found = money_in(line)
    decimals = [f for f in found if f.decimal]
    pick = (decimals or found)[-1:] if found else []
    return pick


def amount(lines: list[str]) -> Field:
    payable = _after(lines, _PAYABLE, _last_money, exclude=_NOT_TOTAL, below=2, before=12)
    got = _agreeing(payable, 0.9, "payable label")
    if got is None:
        totals = _after(lines, _TOTAL, _last_money, exclude=_NOT_TOTAL, below=1, before=12)
        got = _agreeing(totals, 0.75, "total line")
    if got is None:
        every = [f for line in lines for f in money_in(line) if f.decimal and f.value > 0]
        if not every:
            return _NONE
        got = Field(max(float(f.value) for f in every), 0.3, "largest amount")
    return got


def invoice_date(lines: list[str]) -> Field:
    rules: list[tuple[Callable[[], list[tuple[Found, int]]], float, str]] = [
        (lambda: _after(lines, _INVOICE_DATE, dates_in, below=2), 0.9, "invoice-date label"),
        (lambda: _after(lines, _NUMBER_LABEL, dates_in, below=0), 0.85, "invoice-number line"),
        (lambda: _after(lines, _DATE, dates_in, exclude=_NOT_DATE, below=1, before=16), 0.8,
         "date label"),
    ]
    for find, confidence, rule in rules:
        found = find()
        if found:
            got = _agreeing(found[:1], confidence, rule)
            assert got is not None
            return _ambiguity(got, found[0][0])
    for line in lines:
        first = dates_in(line)
        if first:
            return _ambiguity(Field(first[0].value, 0.4, "first date"), first[0])
    return _NONE


def _ambiguity(got: Field, found: Found) -> Field:
    if not found.ambiguous:
        return got
    return Field(got.value, round(got.confidence - 0.2, 2), got.rule + ", day/month ambiguous")


def _identifiers(line: str) -> list[Found]:
    """The identifier at each position of ``line`` (a word with a digit; a short word without
    one may be its prefix: ``F 1234K20/12``), for :func:`_after` (which takes the first after
    the label)."""
    out: list[Found] = []
    for m in re.finditer(r"(?<![\w/.\-])[A-Za-z0-9]", line):
        ident = _ID.match(line, m.start())
        if ident is None:
            continue
        first, second = ident.group(1).rstrip(".,;:"), ident.group(2)
        if any(c.isdigit() for c in first):
            out.append(Found(first, m.start(), m.start() + len(first)))
        elif second and len(first) <= 3 and any(c.isdigit() for c in second):
            out.append(Found(f"{first} {second.rstrip('.,;:')}", m.start(), ident.end()))
    return out


def invoice_number(lines: list[str]) -> Field:
    labelled = _after(lines, _NUMBER_LABEL, _identifiers, below=1)
    got = _agreeing(labelled, 0.9, "invoice-number label")
    if got is not None:
        return got
    hashed: list[tuple[Found, int]] = []
    for i, line in enumerate(lines):
        near = " ".join(plain(x) for x in lines[max(0, i - 2):i + 1])
        for m in _HASH_ID.finditer(line):
            if _INVOICE_WORD.search(near):
                hashed.append((Found(m.group(1), m.start(1), m.end(1)), i))
    got = _agreeing(hashed, 0.75, "# near 'invoice'")
    if got is not None:
        return got
    return _agreeing(_after(lines, _REFERENCE_LABEL, _identifiers, below=1), 0.5,
                     "reference label") or _NONE


def currency(text: str) -> Field:
    marks = currencies_in(text)
    if not marks:
        return _NONE
    counts = Counter(code for code, _ in marks)
    code, n = counts.most_common(1)[0]
    confidence = 0.5 + 0.45 * n / len(marks)
    if all(ambiguous for c, ambiguous in marks if c == code):
        confidence = min(confidence, 0.75)
    return Field(code, round(confidence, 2), "currency marks")


def _name(chunk: str) -> str:
    name = chunk.split(" - ")[0].strip(" ,:;")
    return _TRAILING_TITLE.sub("", name).strip(" ,:;")


def _chunks(line: str) -> list[tuple[int, str]]:
    out, at = [], 0
    for part in _GAP.split(line):
        at = line.index(part, at) if part else at
        if part.strip():
            out.append((at, part.strip()))
        at += len(part)
    return out


def issuer(lines: list[str], text: str) -> Field:
    for i, line in enumerate(lines):
        low = plain(line)
        m = _SELLER.search(low)
        if m is None:
            continue
        rest = _chunks(line[m.end():].lstrip(" :"))
        if rest and rest[0][0] == 0 and len(_name(rest[0][1])) > 1:
            return Field(_name(rest[0][1]), 0.85, "seller label")
        for below in lines[i + 1:i + 4]:
            under = [c for at, c in _chunks(below) if abs(at - m.start()) <= 10]
            if under and not under[0].startswith("("):
                return Field(_name(under[0]), 0.85, "seller label")
    for line in lines[:12]:
        chunks = _chunks(line)
        if not chunks:
            continue
        first = chunks[0][1]
        if _TITLE.match(plain(first)) or ":" in first or not any(c.isalpha() for c in first):
            continue
        name = _name(first)
        key = plain(name)
        recurs = len(key) >= 3 and plain(text).count(key) >= 2
        return Field(name, 0.8 if recurs else 0.6, "sender line" + (", recurs" if recurs
                                                                      else ""))
    return _NONE


def extract_fields(text: str) -> dict[str, Field]:
    """The five fields of one invoice's layout text."""
    lines = _lines(text)
    return {"issuer": issuer(lines, text), "amount": amount(lines),
            "date": invoice_date(lines), "invoice_number": invoice_number(lines),
            "currency": currency(text)}


def _text(instance: Any, index: int) -> str:
    text = instance.get("text") if isinstance(instance, dict) else instance
    if not isinstance(text, str):
        raise InvalidInputError(f"The 'text' of instance {index} must be a string (the "
                                f"invoice's layout text); got {type(text).__name__}.")
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"The 'text' of instance {index} must be at most {MAX_TEXT} "
                                f"characters; got {len(text)}.")
    return text


def extract(batch: Sequence[Any]) -> list[dict[str, Any]]:
    """One record per instance (``{"text": ...}`` or the text itself): each field's value
    and ``<field>_confidence``.

    Raises:
        InvalidInputError: an instance has no text, or too much.
    """
    out: list[dict[str, Any]] = []
    for i, instance in enumerate(batch):
        fields = extract_fields(_text(instance, i))
        record: dict[str, Any] = {}
        for name in FIELDS:
            record[name] = fields[name].value
            record[f"{name}_confidence"] = fields[name].confidence
        out.append(record)
    return out


__all__ = ["FIELDS", "MAX_TEXT", "Field", "amount", "currency", "extract", "extract_fields",
           "invoice_date", "invoice_number", "issuer"]
