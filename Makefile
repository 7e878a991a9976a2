# Hearth's one task runner. `make run` serves Hearth; `make test` runs the whole suite.
# Both install what they need first: uv (into .tools/ if it is not on PATH), then the
# locked dependencies (into .venv/).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --locked --no-sync

.DEFAULT_GOAL := help
.PHONY: help run test pytest test-fast browser mail-server reverse-proxy validators screenshots lint fmt typecheck migrate check docs requirements bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

.tools/bin/uv:
	@scripts/bootstrap-uv.sh $(PYTHON) $(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

.env: | .venv/.synced
	$(RUN) hearth init

run: .venv/.synced .env ## serve Hearth at http://127.0.0.1:8000 with a worker (embedded PostgreSQL unless DATABASE_URL is set)
	$(RUN) hearth serve --with-worker

test: lint typecheck test-compose pytest ## lint, type-check and run every test (needs PostgreSQL and Redis, see README)

# Bytecode for all of .venv, once. The tests start many Python processes (hearth, python -c,
# pytest itself); where PYTHONDONTWRITEBYTECODE is set none of them keeps what it compiles,
# and each compiles SQLAlchemy, FastAPI and the rest again: make test-fast took 61 s instead
# of 36 s on a 2-core machine.
.venv/.compiled: .venv/.synced
	$(UV) sync --locked --compile-bytecode --quiet
	@touch $@

pytest: .venv/.compiled browser mail-server reverse-proxy validators ## run the tests only, with branch coverage of src/hearth
	$(RUN) pytest --cov=hearth --cov-branch --cov-report=term-missing:skip-covered

# The tests that need none of what the markers name (pyproject.toml): no service, no
# Chromium, no Dovecot, no nginx, no systemd, no PostgreSQL of their own. Without coverage,
# to stay fast.
FAST := not (postgres or redis or embedded_postgres or worker or browser or mail or nginx or systemd or docker)

test-fast: .venv/.compiled ## the tests that need no service, browser or database of their own (under a minute)
	$(RUN) pytest -q -m "$(FAST)"

mail-server: ## make sure Dovecot is installed for the mail tests (apt-get as root)
	@scripts/ensure-dovecot.sh

reverse-proxy: ## make sure nginx is installed for the reverse-proxy tests (apt-get as root)
	@scripts/ensure-nginx.sh

validators: ## make sure shellcheck and systemd-analyze are installed for the deployment tests (apt-get as root)
	@scripts/ensure-validators.sh

browser: ## make sure Chromium is installed for the browser tests (apt-get as root)
	@scripts/ensure-chromium.sh

screenshots: .venv/.synced browser ## refresh docs/dashboard.png and docs/config.png from the browser tests
	HEARTH_SCREENSHOT_DIR=docs $(RUN) pytest -q tests/web/test_browser.py -k operator_console

lint: .venv/.synced ## ruff check and ruff format --check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: .venv/.synced ## format the code and apply safe fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: .venv/.synced ## mypy, strict
	$(RUN) mypy

migrate: .venv/.synced .env ## apply database migrations
	$(RUN) hearth migrate

check: .venv/.synced ## check each component once (exit 1 unless all is ok)
	$(RUN) hearth check

docs: .venv/.synced ## regenerate docs/configuration.md from the settings model and the allowlist
	$(RUN) python -m hearth.config.reference > docs/configuration.md

requirements: .venv/.synced ## regenerate requirements.txt from uv.lock
	$(UV) export --locked --no-dev --no-emit-project --quiet -o requirements.txt

bench: .venv/.synced ## measure start-up, memory, /health and task throughput, task latency, log cost
	$(RUN) python -m bench.server
	$(RUN) python -m bench.logs
	$(RUN) python -m bench.tasks

soak: .venv/.synced ## hold a steady mixed load for SOAK_MINUTES (30) and report each process's memory slope
	$(RUN) python -m bench.soak

clean: ## remove the virtual environments and caches (keeps .env and data/)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# Docker Compose: the stack in docker-compose.yml (README, "Deployment").
.PHONY: secrets up down logs test-compose

secrets: ## write the Compose stack's secrets into ./secrets/ (only the missing ones)
	@deploy/docker/init-secrets.sh

up: secrets ## build and start the Compose stack in the background (docker compose up -d)
	docker compose up -d --build

down: ## stop the Compose stack (its volumes, your data, stay)
	docker compose down

logs: ## follow the Compose stack's logs
	docker compose logs --follow --tail 100

test-compose: .venv/.synced ## test the Compose stack on a real Docker engine (as root: installs and starts one)
	@scripts/test-compose.sh
