# PneumoScan: `make run` serves the app, `make test` lints and runs the whole suite.
# Both build .venv on first use and reuse it afterwards (stamp files track the requirements).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
OPEN_DEMO ?= true

# apt-get runs only when a system package is missing; root runs it directly, others via sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q

.PHONY: run lint format test screenshot train bench load requirements system-test-deps clean distclean

# The database is brought to the code's schema first (the Procfile's release step).
# OPEN_DEMO: with no account yet the app runs open (with a banner), as suits a laptop on 127.0.0.1.
run: $(VENV)/.serve-stamp
	$(BIN)/alembic upgrade head
	MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 OPEN_DEMO=$(OPEN_DEMO) HOST=$(HOST) PORT=$(PORT) \
		$(BIN)/gunicorn app:app --config gunicorn.conf.py

# Tool settings (ruff, pytest) are in pyproject.toml.
lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites the code in ruff's format; `make lint` checks it.
format: $(VENV)/.dev-stamp
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint system-test-deps node_modules/axe-core/axe.min.js
	$(BIN)/python -m pytest

# The README's picture of the result page, from the browser test (needs chromium and the X-rays).
screenshot: $(VENV)/.dev-stamp system-test-deps
	$(BIN)/python -m pytest tests/test_browser.py --screenshot-to docs/screenshot-result.png

# The committed model: one network, trained and published by train.py's defaults (within the hour
# on 2 cores; the model card records the minutes as training.make_train_minutes).
train: $(VENV)/.dev-stamp
	$(BIN)/python train.py

bench: $(VENV)/.dev-stamp
	$(BIN)/python -m benchmarks.bench

load: $(VENV)/.serve-stamp
	$(BIN)/python -m scripts.load_test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every install is hash-checked: the .txt files are compiled, with hashes, from the .in files.
$(VENV)/.serve-stamp: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev-stamp: requirements-dev.txt requirements-weights.txt $(VENV)/.serve-stamp
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-weights.txt
	touch $@

# Recompiles requirements*.txt from requirements*.in (after adding or changing a package there):
# every package pinned, with the hashes of its files, for Python 3.11. Pins already in a .txt are
# kept unless the .in asks otherwise; add --upgrade to UV_COMPILE to move them all to the newest.
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --native-tls \
	--custom-compile-command "make requirements"
requirements: $(VENV)/.dev-stamp
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) --no-deps requirements-weights.in -o requirements-weights.txt

# axe-core for the browser tests' accessibility checks, at the version package-lock.json pins.
node_modules/axe-core/axe.min.js: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's chromium for the browser test, a PostgreSQL server for the PostgreSQL tests and
# redis-server for the several-instances test. Skipped where all are present, or where there is
# no apt-get (those tests then skip).
system-test-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -q && $(APT_INSTALL) $$missing; \
	elif [ -n "$$missing" ]; then \
		echo "no apt-get: the tests needing$$missing will skip"; \
	fi

clean:
	rm -rf .pytest_cache reports build
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Also removes the virtual environment (the instance folder with your data is kept).
distclean: clean
	rm -rf $(VENV)
