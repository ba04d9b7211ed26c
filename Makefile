# tuner: `make run` starts everything on this machine, `make test` runs the tests.
# Both install what is missing into .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/tuner/v1/*.proto)
FASHION_MNIST := /usr/share/datasets/fashion-mnist
CHROMIUM := /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help install run test test-slow check lint types generate check-generated proto-lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[trainer,embedded,dev]'
	touch $(STAMP)

install: $(STAMP) ## install everything into .venv (and Fashion-MNIST, Chromium where apt can)
	@test -d $(FASHION_MNIST) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; } || \
		echo "note: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; } || \
		echo "note: Chromium not installed, tests/web skip (apt-get install chromium)"

run: install ## start the whole stack on this machine and open the dashboard
	$(BIN)/tuner up $(ARGS)

test: check ## every quality gate: make check, then the tests (not the slow ones)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install ## run the slow fault tests
	$(BIN)/pytest -m "slow and not cluster and not chaos" $(PYTEST_ARGS)

check: lint types check-generated proto-lint ## the gates before the tests: lint, types, generated code, proto lint

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install ## mypy, strict, on the code, the tests and the benchmarks
	$(BIN)/mypy tuner scheduler trainer store tui tests benchmarks

# The one generator: grpcio-tools' protoc (pinned in pyproject.toml) with mypy-protobuf's grpc stubs.
PROTOC := $(BIN)/python -m grpc_tools.protoc -Iprotos
SERVICES := protos/tuner/v1/tuner_service.proto protos/tuner/v1/sweep.proto protos/tuner/v1/analysis.proto
GRPC_OUT = --grpc_python_out=$(1) --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$(1)

generate: install ## regenerate tuner/v1 from protos/
	rm -f tuner/v1/*_pb2*.py tuner/v1/*_pb2*.pyi
	$(PROTOC) --python_out=. --pyi_out=. $(PROTOS)
	$(PROTOC) $(call GRPC_OUT,.) $(SERVICES)

check-generated: install ## fail if tuner/v1 differs from what protos/ generates
	@tmp=$$(mktemp -d) && \
	$(PROTOC) --python_out=$$tmp --pyi_out=$$tmp $(PROTOS) && \
	$(PROTOC) $(call GRPC_OUT,$$tmp) $(SERVICES) >/dev/null && \
	for f in $$tmp/tuner/v1/*; do cmp -s $$f tuner/v1/$$(basename $$f) || \
		{ echo "tuner/v1/$$(basename $$f) is stale: run make generate"; rm -rf $$tmp; exit 1; }; done; \
	rm -rf $$tmp

# buf from npm, pinned, into .buf/ (gitignored); buf.yaml holds the lint rules (STANDARD).
BUF_VERSION := 1.75.0
BUF := .buf/node_modules/.bin/buf

proto-lint: ## buf lint (STANDARD rules) over protos/, installing the pinned buf if missing
	@test "$$($(BUF) --version 2>/dev/null)" = "$(BUF_VERSION)" || \
		npm install --prefix .buf --silent --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION)
	$(BUF) lint

bench: install ## run the benchmarks, append to benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks

.PHONY: compose-up compose-down test-cluster

compose-up: ## build the images, start MongoDB, NATS, scheduler, trainers (docker compose)
	@test -f .env || { cp .env.example .env; echo "created .env from .env.example: change its passwords"; }
	docker compose up -d --build

compose-down: ## stop the compose stack (its volumes stay)
	docker compose down

test-cluster: install ## the multi-host test: NATS cluster, services on network namespaces (root)
	$(BIN)/pytest -m cluster -rA $(PYTEST_ARGS)

.PHONY: test-chaos
test-chaos: install ## chaos: random faults, two scheduler replicas (TUNER_CHAOS_SEED, TUNER_CHAOS_SECONDS)
	$(BIN)/pytest -m chaos -rA tests/chaos $(PYTEST_ARGS)

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
