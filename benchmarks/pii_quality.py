"""PII detection quality and speed: keelwork.core.pii against Presidio, same set, same run.

The labelled set is generated: presidio-evaluator's sentence templates (vendored in
benchmarks/data/pii_templates_presidio.txt, MIT) plus keelwork's own in the same style
(benchmarks/data/pii_templates_keelwork.txt), filled by Faker with a fixed seed. It is SPLIT BY
TEMPLATE (a hash of the template text): the detector was developed on the dev templates only and
is scored on the test templates, which it never saw.

Scores are span-level and strict: a finding counts only if its entity and both boundaries equal
a labelled span's; a finding on a span labelled with another type (an organisation, a street
address, a date that is not a birth date) is a false positive. F2 weighs recall twice.

Presidio runs offline: presidio-analyzer 2.2.x with a blank spaCy pipeline (``spacy.blank("en")``,
no model download) and its predefined pattern recognisers; its DATE_TIME is scored as
DATE_OF_BIRTH. Speed is texts per CPU-second of one thread (``time.process_time``), i.e. per core.

    pip install -e '.[pii-bench]'
    python benchmarks/pii_quality.py                  # test split, both engines
    python benchmarks/pii_quality.py --split dev      # what development looked at
    python benchmarks/pii_quality.py --write-sample tests/unit/core/pii/data/pii_heldout.jsonl
    python benchmarks/pii_quality.py --latency-2kb    # CPU per 2 KB text (serving path)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
TEMPLATE_FILES = ("pii_templates_presidio.txt", "pii_templates_keelwork.txt")
STRUCTURED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
              "IP_ADDRESS", "URL", "DATE_OF_BIRTH")
ENTITIES = (*STRUCTURED, "PERSON", "LOCATION")
PRESIDIO_ENTITY = {"DATE_TIME": "DATE_OF_BIRTH"}
_SLOT = re.compile(r"\{\{(\w+)\}\}")

Gold = tuple[int, int, str]  # start, end, entity ("" for a span of a type not scored)


@dataclass(frozen=True)
class Template:
    text: str
    source: str

    @property
    def split(self) -> str:
        """dev or test, from the template's text alone: stable whatever the file order."""
        return "test" if hashlib.sha256(self.text.encode()).digest()[0] % 2 else "dev"


def load_templates() -> list[Template]:
    out = []
    for name in TEMPLATE_FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                out.append(Template(line.replace("\\n", "\n"), name))
    return out


class Filler:
    """Faker values for each placeholder, and the entity each is labelled with."""

    NAME_LOCALES = ("en_US",) * 14 + ("en_GB", "en_CA", "en_AU", "en_IE", "de_DE", "fr_FR",
                                      "es_ES", "it_IT", "nl_NL")
    PHONE_LOCALES = ("en_US", "en_US", "en_US", "en_GB", "en_GB", "de_DE", "fr_FR", "it_IT",
                     "es_ES", "nl_NL", "en_AU", "en_IN")
    IBAN_LOCALES = ("en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "de_AT", "fr_CH",
                    "pl_PL", "pt_PT", "fi_FI", "no_NO")
    DOB_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %B %Y",
                   "%b %d %Y", "%Y-%m-%d")
    NATIONS = ("American", "British", "French", "German", "Indian", "Chinese", "Mexican",
               "Nigerian", "Brazilian", "Japanese")

    def __init__(self, seed: int) -> None:
        from faker import Faker

        locales = sorted(set(self.NAME_LOCALES + self.PHONE_LOCALES + self.IBAN_LOCALES))
        self.fakers = {loc: Faker(loc) for loc in locales}
        Faker.seed(seed)
        self.rng = random.Random(seed)
        self.us = self.fakers["en_US"]

    def _fk(self, locales: tuple[str, ...]):  # type: ignore[no-untyped-def]
        return self.fakers[self.rng.choice(locales)]

    def value(self, slot: str) -> tuple[str, str]:
        fk, us, rng = self._fk(self.NAME_LOCALES), self.us, self.rng
        if slot in ("person", "name"):
            return f"{fk.first_name()} {fk.last_name()}", "PERSON"
        if slot in ("name_female", "name_male"):
            first = fk.first_name_female() if slot == "name_female" else fk.first_name_male()
            return f"{first} {fk.last_name()}", "PERSON"
        if slot.startswith("first_name"):
            kind = slot.removeprefix("first_name").strip("_") or ""
            method = {"male": fk.first_name_male, "female": fk.first_name_female}.get(
                kind, fk.first_name)
            return method(), "PERSON"
        if slot.startswith("last_name"):
            return fk.last_name(), "PERSON"
        if slot in ("city",):
            return fk.city(), "LOCATION"
        if slot == "country":
            return us.country(), "LOCATION"
        if slot in ("state", "state_abbr"):
            return (us.state() if slot == "state" else us.state_abbr()), "LOCATION"
        if slot == "email":
            return rng.choice((us.email, us.free_email, us.company_email, fk.email))(), \
                "EMAIL_ADDRESS"
        if slot == "phone_number":
            return self._fk(self.PHONE_LOCALES).phone_number(), "PHONE_NUMBER"
        if slot == "credit_card_number":
            return self._card(), "CREDIT_CARD"
        if slot == "iban":
            iban = self._fk(self.IBAN_LOCALES).iban()
            if rng.random() < 0.4:
                iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
            return iban, "IBAN_CODE"
        if slot == "ssn":
            ssn = us.ssn()
            r = rng.random()
            if r < 0.1:
                ssn = ssn.replace("-", "")
            elif r < 0.2:
                ssn = ssn.replace("-", " ")
            return ssn, "US_SSN"
        if slot == "ip_address":
            return (us.ipv4() if rng.random() < 0.8 else us.ipv6()), "IP_ADDRESS"
        if slot == "url":
            return (us.url() if rng.random() < 0.5 else us.uri()), "URL"
        if slot == "date_of_birth":
            return us.date_of_birth().strftime(rng.choice(self.DOB_FORMATS)), "DATE_OF_BIRTH"
        return self._other(slot), ""

    def _card(self) -> str:
        digits = self.us.credit_card_number()
        r = self.rng.random()
        if r < 0.5:
            return digits
        sep = " " if r < 0.8 else "-"
        if len(digits) == 15:  # American Express: 4-6-5
            return sep.join((digits[:4], digits[4:10], digits[10:]))
        return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))

    def _other(self, slot: str) -> str:
        us, rng = self.us, self.rng
        simple: dict[str, Callable[[], str]] = {
            "organization": us.company, "address": lambda: us.address().replace("\n", ", "),
            "street_name": us.street_name, "building_number": us.building_number,
            "secondary_address": us.secondary_address, "postcode": us.postcode,
            "zipcode": us.zipcode, "job": us.job, "prefix_male": us.prefix_male,
            "prefix_female": us.prefix_female, "prefix": us.prefix, "year": us.year,
            "day_of_week": us.day_of_week, "age": lambda: str(rng.randint(1, 99)),
            "date_time": lambda: us.date_time().strftime(rng.choice(("%Y-%m-%d %H:%M",
                                                                     "%B %d, %Y", "%d/%m/%Y"))),
            "us_driver_license": lambda: us.bothify("?#######").upper(),
        }
        if slot in simple:
            return str(simple[slot]())
        if slot.startswith("nation"):
            nation = rng.choice(self.NATIONS)
            return nation + ("s" if slot == "nation_plural" else "")
        raise KeyError(f"no value for the placeholder {{{{{slot}}}}}")

    def fill(self, template: str) -> tuple[str, list[Gold]]:
        parts: list[str] = []
        gold: list[Gold] = []
        pos = length = 0
        for m in _SLOT.finditer(template):
            parts.append(template[pos:m.start()])
            length += m.start() - pos
            value, entity = self.value(m.group(1))
            gold.append((length, length + len(value), entity))
            parts.append(value)
            length += len(value)
            pos = m.end()
        parts.append(template[pos:])
        return "".join(parts), gold


def generate(split: str, per_template: int, seed: int) -> list[tuple[str, list[Gold]]]:
    filler = Filler(seed)
    return [filler.fill(t.text) for t in load_templates() if t.split == split
            for _ in range(per_template)]


Found = tuple[int, int, str]


def score(samples: list[tuple[str, list[Gold]]], found: list[list[Found]]
          ) -> dict[str, dict[str, float]]:
    """Per entity: gold and predicted counts, true positives, precision, recall, F2."""
    table: dict[str, dict[str, float]] = {}
    for entity in ENTITIES:
        tp = n_gold = n_pred = 0
        for (_, gold), pred in zip(samples, found, strict=True):
            g = {(s, e) for s, e, ent in gold if ent == entity}
            p = {(s, e) for s, e, ent in pred if ent == entity}
            tp += len(g & p)
            n_gold += len(g)
            n_pred += len(p)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f2 = 5 * prec * rec / (4 * prec + rec) if prec + rec else 0.0
        table[entity] = {"gold": n_gold, "pred": n_pred, "tp": tp, "precision": prec,
                         "recall": rec, "f2": f2}
    return table


def keelwork_engine() -> Callable[[str], list[Found]]:
    from keelwork.core.pii import PiiAnalyzer

    analyzer = PiiAnalyzer(ENTITIES)
    KEELWORK_ANALYZERS.append(analyzer)
    return lambda text: [(s.start, s.end, s.entity) for s in analyzer.analyze(text)]


KEELWORK_ANALYZERS: list[object] = []  # to print their failure counters


def presidio_engine() -> Callable[[str], list[Found]]:
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    # offline: the bundled public-suffix snapshot, not a fetch of the live list
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())

    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    nlp_engine.nlp = {"en": spacy.blank("en")}  # no model download: tokenizer only
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=nlp_engine, languages=["en"])
    registry.remove_recognizer("SpacyRecognizer")  # pattern recognisers only
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                              supported_languages=["en"])
    wanted = [e for e in ENTITIES if e != "DATE_OF_BIRTH"] + ["DATE_TIME"]

    def run(text: str) -> list[Found]:
        return [(r.start, r.end, PRESIDIO_ENTITY.get(r.entity_type, r.entity_type))
                for r in analyzer.analyze(text, language="en", entities=wanted)]

    return run


def timed(engine: Callable[[str], list[Found]], texts: list[str], min_cpu_s: float
          ) -> tuple[list[list[Found]], float]:
    """The findings and texts per CPU-second of this thread (repeats until ``min_cpu_s``)."""
    found = [engine(t) for t in texts]  # warm-up (lazy lists, regex caches) and the answer
    done, started = 0, time.process_time()
    while True:
        for t in texts:
            engine(t)
        done += len(texts)
        spent = time.process_time() - started
        if spent >= min_cpu_s:
            return found, done / spent


def render(name: str, table: dict[str, dict[str, float]]) -> str:
    lines = [f"{name}", "| entity | gold | found | precision | recall | F2 |",
             "|---|---:|---:|---:|---:|---:|"]
    for entity, row in table.items():
        lines.append(f"| {entity} | {row['gold']:.0f} | {row['pred']:.0f} | "
                     f"{row['precision']:.3f} | {row['recall']:.3f} | {row['f2']:.3f} |")
    return "\n".join(lines)


def latency_2kb(seed: int) -> None:
    """CPU time of scanning and redacting 2 KB texts (dev sentences run together): the cost
    a 2 KB request's free text adds on the serving path; then the same for the note that
    ``benchmarks/serving_redaction.py`` sends (2 KB, 55 findings), 200 times."""
    from keelwork.core.pii import PiiAnalyzer, redact

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serving_redaction import dense_note

    docs, cur = [], ""
    for text, _ in generate("dev", 20, seed):
        cur += text + " "
        if len(cur) >= 2048:
            docs.append(cur[:2048])
            cur = ""
    analyzer = PiiAnalyzer(ENTITIES)
    for d in docs:
        analyzer.analyze(d)

    def cpu(texts: list[str]) -> list[float]:
        took = []
        for d in texts:
            started = time.process_time()
            redact(d, analyzer.analyze(d))
            took.append(time.process_time() - started)
        return sorted(took)

    took = cpu(docs * 5)
    print(f"{len(docs)} texts of 2 KB x5: CPU per text p50 {took[len(took) // 2] * 1e3:.3f} ms, "
          f"p99 {took[int(len(took) * 0.99)] * 1e3:.3f} ms")
    took = cpu([dense_note()] * 200)
    print(f"serving_redaction.py's note x200: CPU per text p50 "
          f"{took[len(took) // 2] * 1e3:.3f} ms, p99 {took[int(len(took) * 0.99)] * 1e3:.3f} ms")


def write_sample(path: Path, per_template: int, seed: int) -> None:
    samples = generate("test", per_template, seed)
    with path.open("w", encoding="utf-8") as f:
        for text, gold in samples:
            f.write(json.dumps({"text": text, "spans": [[s, e, ent] for s, e, ent in gold
                                                        if ent]}) + "\n")
    print(f"wrote {len(samples)} held-out sentences to {path}")


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--per-template", type=int, default=20)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--min-cpu-s", type=float, default=2.0)
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--write-sample", type=Path)
    ap.add_argument("--latency-2kb", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.latency_2kb:
        latency_2kb(args.seed)
        return 0
    if args.write_sample:
        write_sample(args.write_sample, 3, args.seed + 1)
        return 0
    templates = load_templates()
    n_split = sum(t.split == args.split for t in templates)
    samples = generate(args.split, args.per_template, args.seed)
    texts = [t for t, _ in samples]
    print(f"{args.split} split: {n_split} of {len(templates)} templates, {len(samples)} "
          f"sentences, {sum(len(t) for t in texts) / len(texts):.0f} chars on average\n")
    engines = [("keelwork.core.pii", keelwork_engine())]
    if not args.no_presidio:
        engines.append(("presidio-analyzer (blank spaCy, pattern recognisers)",
                        presidio_engine()))
    speeds = {}
    for name, engine in engines:
        found, per_s = timed(engine, texts, args.min_cpu_s)
        speeds[name] = per_s
        print(render(f"{name}: {per_s:,.0f} texts/s per core", score(samples, found)) + "\n")
    for analyzer in KEELWORK_ANALYZERS:
        print(f"keelwork scans that failed closed: {analyzer.counters.snapshot()['failed']}")
    if len(speeds) == 2:
        (a, sa), (b, sb) = speeds.items()
        print(f"speed ratio {a} / {b}: {sa / sb:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
