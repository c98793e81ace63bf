"""The optional case reference typed at upload: a pseudonymous case or study number that finds
several images of one patient together. Short, printable, one line; never a name (the form says so)."""

from __future__ import annotations

from pneumoscan.errors import Refused

MAX_LENGTH = 64
HELP = "pseudonymous case or study number — do not enter names"


class CaseReferenceInvalid(Refused):
    """The message says what is wrong, for the form and the API."""


def clean_case_reference(raw: str | None) -> str | None:
    """The reference as stored (surrounding spaces dropped), None when empty; raises CaseReferenceInvalid."""
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) > MAX_LENGTH:
        raise CaseReferenceInvalid(f"the case reference is limited to {MAX_LENGTH} characters")
    if not text.isprintable():
        raise CaseReferenceInvalid("the case reference must be printable text on one line")
    return text
