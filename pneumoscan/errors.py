"""Refusals: what the app answers with a 4xx, each with the message a person should see."""

from __future__ import annotations


class Refused(ValueError):
    """A request the app will not carry out: a message a person can act on and its HTTP status.

    The web app's error handlers answer every uncaught one alike (JSON for the API, a page or the
    form again otherwise); a view that shows the message beside a form catches it itself.
    """

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ImageRejected(Refused):
    """An upload the app cannot or should not score."""

    status = 422
