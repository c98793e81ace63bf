"""Errors that carry the HTTP status and message a user should see."""

from __future__ import annotations


class ImageRejected(ValueError):
    """An upload the app cannot or should not score, with a message a person can act on."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
