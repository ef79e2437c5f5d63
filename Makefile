# snake_llama: `make run` sets everything up and serves the app; `make test` runs every test.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# `make run PORT=4000` passes a flag; unset, the server takes .env, the environment or its default.
SERVE_FLAGS := $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

TAILWIND := node_modules/.bin/tailwindcss

.PHONY: setup run watch test lint bench clean

setup: $(VENV)/.installed node_modules/.installed static/.vendored style/output.css model

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --only-binary=:all: -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Also builds static/app/ (precompiled stdlib, wheels and client bundle: scripts/vendor.py), so it
# follows the client's sources; the server serves the client file by file while they differ.
static/.vendored: $(VENV)/.installed node_modules/.installed scripts/vendor.py scripts/pyc.py server/static.py \
		client/index.html $(wildcard client/*.py client/components/*.py wire/*.py)
	$(PY) scripts/vendor.py
	$(PY) -m server.static static
	touch $@

style/output.css: style/input.css node_modules/.installed $(wildcard client/*.py client/components/*.py client/index.html)
	$(TAILWIND) -i style/input.css -o style/output.css --minify

model: $(VENV)/.installed
	@$(PY) -c "from server.default_model import default_model_path as p; p()"

run: setup
	$(PY) -m server $(SERVE_FLAGS)

# Hot reload: uvicorn restarts on server/ changes, Tailwind rebuilds the CSS, and in dev mode the
# open page reloads itself when client/ or the CSS changes.
watch: setup
	trap 'kill 0' EXIT; \
	$(TAILWIND) -i style/input.css -o style/output.css --watch=always & \
	$(PY) -m server $(SERVE_FLAGS) --reload --dev

test: setup
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check server client wire tests
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules static style/output.css .pytest_cache .mypy_cache .ruff_cache .hypothesis
