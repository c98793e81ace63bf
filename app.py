"""Entry point for `gunicorn app:app` and `flask --app app run`.

A bad setting stops the start with its one line (pneumoscan.web.config), not a traceback.
"""

from pneumoscan.web import create_app
from pneumoscan.web.config import SettingsError

try:
    app = create_app()
except SettingsError as error:
    raise SystemExit(str(error)) from None
