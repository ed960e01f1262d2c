# Everything a fresh machine needs, from nothing but Python 3.11 and make.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Installed packages as bytecode, and the workspace's own compiled below: a process then starts in about half the
# time, which every service restart and every test that starts `conveyor` feels.
export UV_COMPILE_BYTECODE := 1
UV = $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: help bootstrap up test lint typecheck services pytest bench

help:
	@echo "make up     start Conveyor (every service, the API on 127.0.0.1:8080, data in .conveyor/)"
	@echo "make test   install what the tests need, then lint, type-check and run the whole test suite"
	@echo "make bench  run the benchmarks"

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked --all-packages
	$(UV) run --no-sync python -m compileall -q libs services apps >/dev/null

up: bootstrap
	$(UV) run conveyor up

lint: bootstrap
	$(UV) run ruff check .

typecheck: bootstrap
	$(UV) run mypy

# What the tests use, installed and started before they run (the tests' own set-up then finds it ready):
# Podman's API socket with locally built images, a single-node Kafka broker, a throw-away PostgreSQL, and
# GitHub's toolkit clients of the results service from npm.
services:
	bash scripts/containers.sh
	bash scripts/kafka.sh
	bash scripts/postgres.sh
	bash scripts/actions-toolkit.sh

pytest: bootstrap
	$(UV) run pytest

test: lint typecheck services pytest

bench: bootstrap
	$(UV) run python -m benchmarks
