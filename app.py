"""Entry point for `gunicorn app:app` and `flask --app app run`."""

from pneumoscan.web import create_app

app = create_app()
