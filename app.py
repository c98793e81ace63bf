"""Entry point for `gunicorn app:app` and `flask --app app run`.

A bad setting stops the start with its one line (pneumoscan.web.config), not a traceback.
"""

from pneumoscan.web import create_app
from pneumoscan.web.config import stop_on_bad_setting

with stop_on_bad_setting():
    app = create_app()
