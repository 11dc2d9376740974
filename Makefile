# The two commands a newcomer needs: `make run` and `make test`. Everything else is theirs.
SHELL := /bin/bash
PY := .venv/bin/python
UV := .tools/bin/uv
UV_VERSION := 0.13.8
FED := infra/federation
ASYNCAPI := infra/asyncapi
SERVICE_PACKAGES := identity engagement rewards

.PHONY: run test env node services check lint typecheck supergraph catalogue bench drills clean

## Set-up: Python environment from uv.lock, Node tools from package-lock.json
env: .venv/.synced
.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q "uv==$(UV_VERSION)"
.venv/.synced: .tools/bin/uv uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python python3
	touch $@

node: $(FED)/node_modules/.installed $(ASYNCAPI)/node_modules/.installed
$(FED)/node_modules/.installed: $(FED)/package-lock.json
	npm ci --prefix $(FED) --no-audit --no-fund --loglevel=error
	touch $@
$(ASYNCAPI)/node_modules/.installed: $(ASYNCAPI)/package-lock.json
	npm ci --prefix $(ASYNCAPI) --no-audit --no-fund --loglevel=error
	touch $@

services:
	@infra/local/ensure-services.sh

## Run everything (migrations, demo tenant, four services) until Ctrl-C
run: env services
	PYTHONPATH=. $(PY) infra/local/run.py

## The whole suite against the real PostgreSQL and RabbitMQ (own database and vhost), plus gates
test: env node services check
	$(PY) -m pytest -q

check: lint typecheck
lint: env
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
typecheck: env
	.venv/bin/mypy shared services tests infra/local $(wildcard bench)

## Compose the supergraph from the subgraphs' SDL with standard composition; commit the result
supergraph: env node
	$(PY) infra/local/print_subgraphs.py | node $(FED)/compose.mjs > infra/supergraph.graphql.tmp
	mv infra/supergraph.graphql.tmp infra/supergraph.graphql

## The event catalogue (JSON Schema per type, AsyncAPI) from the event models; commit the result
catalogue: env node
	$(PY) -m crm_shared.events.catalogue $(SERVICE_PACKAGES) --out docs/events
	node $(ASYNCAPI)/validate.mjs docs/events/asyncapi.yaml > /dev/null

## Benchmarks (not part of `make test`): figures with their floors and peers, JSON in bench/results/
## BULK_ROWS=20000 makes the bulk run quick; the default is the full 1,000,000.
BULK_ROWS ?= 1000000
bench: env node services
	$(PY) -m bench.ledger
	$(PY) -m bench.pipeline
	$(PY) -m bench.bulk --rows $(BULK_ROWS)
	$(PY) -m bench.gateway
	$(PY) bench/subgraph_client.py
	$(PY) -m bench.influence
	PYTHONPATH=. $(PY) bench/sentiment_agreement.py
	PYTHONPATH=. $(PY) bench/realdata.py

## The long fault drills (private broker and database, 10,000 events, repeated crashes, fuzzing)
drills: env node services
	$(PY) -m pytest -q -s -m drill tests/reliability

clean:
	rm -rf .venv .tools $(FED)/node_modules $(ASYNCAPI)/node_modules
