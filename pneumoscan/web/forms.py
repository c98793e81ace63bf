"""Flask-WTF forms shared by every feature: CSRF-protected, rendered by Jinja without JavaScript."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token is sent."""
