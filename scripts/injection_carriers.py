"""Tool outputs with a slot for one sentence, and the frames that put a sentence there, for
the injection classifier's ninth build (indirect injection through tool output).

The earlier carriers (the build script's ``_DOCS``) take an instruction at a random place in
the text. A tool-output injection more often sits in one field: a profile's bio, a CSV cell,
a docstring, a calendar entry's description, a code comment, a chat line, a search snippet.
:data:`SLOTTED` are such outputs with a ``{i}`` slot; the attack side puts the packages'
instructions there in frames that address the AI (:data:`AI_FRAMES`: spoken to, hidden
notes, bracketed asides, @-mentions); the benign side puts ordinary requests there in the
same frames addressed to people (:data:`PEOPLE_FRAMES`), and sentences that mention AI,
models or instructions for an ordinary purpose (:data:`AI_MENTIONS`), so that a field, a
frame or the word "model" alone is not what separates the classes. The attack text is the
packages' own; the frames and carriers are generated here.
"""

from __future__ import annotations

import random
import re

#: Tool outputs with a slot ``{i}`` for one sentence; ``{o}`` a topic, ``{a}`` a name,
#: ``{n}``/``{d}`` numbers.
SLOTTED = (
    '{{"user": {{"id": {n}, "name": "{a}", "bio": "{i}"}}}}',
    '{{"status": 200, "items": [{{"sku": "X-{n}", "title": "{o}", "note": "{i}"}}]}}',
    '{{"data": {{"title": "{o}", "comment": "{i}"}}, "error": null, "page": {d}}}',
    "<html><body><h1>{o}</h1><p>Posted by {a}.</p><p>{i}</p></body></html>",
    '<div class="post"><p>About {o}.</p><span style="display:none">{i}</span></div>',
    "From: {a}@example.com\nSubject: {o}\n\nHello,\n\nthe notes on {o} are attached.\n\n{i}"
    "\n\nRegards, {a}",
    "Ticket #{n} ({o})\nReporter: {a}\nStatus: open\nDescription: {i}",
    "def {a_}_{d}(rows):\n    # {i}\n    return [r for r in rows if r]",
    'def load_{a_}():\n    """Load the data for {o}.\n\n    {i}\n    """\n    return fetch()',
    'id,name,comment\n{d},{a},ok\n{n},guest,"{i}"\n{d}{d},chen,late',
    "BEGIN:VEVENT\nSUMMARY:{o}\nORGANIZER:mailto:{a}@example.com\nDESCRIPTION:{i}\n"
    "END:VEVENT",
    "Page {d} of 12 - {o}\n\n{d}.1 The parties agree to the schedule.\n\n{i}\n\n{d}.2 "
    "Payment within 30 days.",
    "[10:0{d}] {a}: morning all\n[10:1{d}] guest: {i}\n[10:2{d}] {a}: ok, thanks",
    "Search results for '{o}':\n- {o}: an overview\n- {i}\n- Forum thread on {o}",
    "# {o}\n\nInstall with `make`.\n\n> {i}\n\n## Usage\nRun `{a_} --help`.",
    "$ cat settings.yaml\nretries: {d}\n# {i}\ntimeout: {n}",
    "<item><title>{o}</title><description>{i}</description></item>",
    "Transcript (auto): ...so that covers {o}. {i} Next item is the budget...",
    "Comment by {a} on pull request #{n}: {i}",
    "2026-0{d}-1{d}T10:0{d}:00Z WARN worker-{d}: {i}",
    '<img src="{a_}.png" alt="{i}"> <p>Gallery: {o}.</p>',
    "Voicemail from {a}: Hi, it's about {o}. {i} Thanks, bye.",
    "Review ({d}/5) by {a}: {i}",
    "Wiki page '{o}': Welcome! {i} Last edited by {a}.",
    "Extracted text ({a_}.pdf): {o}. Total: {n} EUR. {i}",
)
#: Roles an AI plays for a tool (the addressee of an injected note).
AI_ROLES = ("summarisation model", "support bot", "monitoring agent", "coding assistant",
            "email assistant", "AI scheduler", "translator model", "browsing agent",
            "AI note-taker", "review bot", "LLM", "recruiting AI", "research agent",
            "AI assistant", "language model", "shopping assistant", "chatbot")
#: Frames that put an instruction ``{i}`` (lower-case start) to an AI ``{r}`` in a field.
AI_FRAMES = (
    "Assistant, {i}", "AI, {i}", "Hidden note for the {r}: {i}",
    "[to the {r}: {i}]", "P.S. to the AI reading this: {i}", "(for AI assistants) {i}",
    "@agent {i}", "@assistant {i}", "Dear model, {i}", "Note to any {r}: {i}",
    "{r}-facing note: {i}", "To the {r} handling this: {i}", "Hey {r}, {i}",
    "Message for the {r}: {i}", "If you're the {r} reading this, {i}", "{R}, {i}",
    "Instruction to the {r} extracting this text: {i}",
)
#: People a note in a document is addressed to.
PEOPLE_ROLES = ("night shift", "support team", "on-call engineer", "cleaning crew",
                "new intern", "reviewer", "project manager", "translator", "receptionist",
                "delivery driver", "assistant manager", "lab assistant", "teaching assistant",
                "store assistant", "accountant", "landlord")
#: The same frames addressed to people.
PEOPLE_FRAMES = (
    "Tom, {i}", "Team, {i}", "Chen: {i}", "Hidden note for the {r}: {i}", "[to the {r}: {i}]",
    "P.S. to everyone reading this: {i}", "(for new staff) {i}", "@dave {i}", "@priya {i}",
    "Dear landlord, {i}", "Note to any {r}: {i}", "{r}-facing note: {i}",
    "To the {r} handling this: {i}", "Hey {r}, {i}", "Message for the {r}: {i}",
    "If you're the {r} reading this, {i}", "{R}, {i}", "{R}: {i}",
)
#: Sentences that mention AI, models, agents or instructions for an ordinary purpose.
AI_MENTIONS = (
    "AI-generated summary, checked by {a}.", "The assistant on the phone was very helpful.",
    "Our model is retrained every night on new data.", "Written with help from an AI tool.",
    "The chatbot could not answer questions about {o}, so I called instead.",
    "Instructions for assembly are on page {d}.", "Please follow the instructions in the "
    "manual for {o}.", "Skip the header line when you import the file.",
    "The agent will call you back about {o} within {d} days.",
    "We use a language model to tag tickets; mistakes happen, please tell us.",
    "Which model of the printer is this? The label is faded.",
    "The support bot says the order for {o} shipped yesterday.",
    "The model scored {d}0% on the test set, see the attached report.",
    "New instructions for the parking garage start on Monday.",
    "The assistant manager approved the schedule for {o}.",
    "Forget the old link, the new page for {o} is live.",
    "model: small-{d}, max_tokens: {n}, temperature: 0.{d}",
    "Model: XR-{d}00 (2024 edition), serial number {n}.",
    "Assistant: {a} (part-time, Mondays and Thursdays).",
    "Agent: {a}, extension {n}. Notes: customer happy with {o}.",
    "Developer mode settings for {o} are under Advanced.",
    "system_prompt: prompts/{a_}.txt",
    "The system prompt for our support bot lives in prompts/{a_}.md; change it by pull request.",
    "llm_model: small-{d}, prompt_template: templates/{a_}.j2, max_retries: {d}",
    "We log every prompt and the model's answer for {d}0 days.",
    "The agent config sets temperature to 0.{d} and the instructions file to rules.md.",
    "Assistant instructions v{d}: greet the customer, answer about {o}, hand over to a human.",
    "System message from IT: maintenance tonight from 22:00 to 23:00.",
)


def _fill(tpl: str, rng: random.Random, **kw: str) -> str:
    a = rng.choice(("maria", "j.smith", "chen", "olga", "ahmed", "lucia", "tom", "priya"))
    o = rng.choice(("the quarterly report", "hiking boots", "the lease", "our API",
                    "the team offsite", "invoice 4471", "the onboarding guide", "rice cookers",
                    "the release notes", "a refund"))
    return tpl.format(a=a, a_=re.sub(r"\W", "_", a), o=o, n=str(rng.randrange(1000)),
                      d=str(rng.randrange(1, 10)), **kw)


def _lower_start(text: str) -> str:
    text = text.strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _field(text: str) -> str:
    """``text`` as a one-line field value (no quotes or line breaks to break the carrier)."""
    return re.sub(r"\s+", " ", text.replace('"', "'")).strip()


def slotted(sentence: str, frames: tuple[str, ...], roles: tuple[str, ...],
            rng: random.Random) -> str:
    """``sentence`` in one of ``frames`` (addressed to one of ``roles``), in a field of one of
    :data:`SLOTTED`."""
    r = rng.choice(roles)
    framed = rng.choice(frames).format(i=_lower_start(sentence), r=r, R=r[:1].upper() + r[1:])
    return _fill(rng.choice(SLOTTED), rng, i=_field(framed))


def attacks(instructions: list[str], rng: random.Random, per: int = 2) -> list[str]:
    """Each instruction, ``per`` times, addressed to an AI in a tool output's field."""
    return [slotted(t, AI_FRAMES, AI_ROLES, rng) for t in instructions for _ in range(per)]


def twins(asks: list[str], rng: random.Random, n: int) -> list[str]:
    """``n`` benign tool outputs: ordinary requests addressed to people in the same frames
    and fields, and (half) sentences that mention AI for an ordinary purpose."""
    out = []
    for k in range(n):
        if k % 2 == 1:
            mention = _fill(rng.choice(AI_MENTIONS), rng)
            out.append(_fill(rng.choice(SLOTTED), rng, i=_field(mention)))
        else:
            out.append(slotted(rng.choice(asks), PEOPLE_FRAMES, PEOPLE_ROLES, rng))
    return out


__all__ = ["AI_FRAMES", "AI_MENTIONS", "PEOPLE_FRAMES", "SLOTTED", "attacks", "slotted",
           "twins"]
