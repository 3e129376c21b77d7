# The two commands of README.md: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
PORT ?= 8000
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: demo test setup lint

setup:
	@scripts/python-env.sh

demo: setup
	uv run careloop demo --port $(PORT)

test: setup
	@scripts/system-deps.sh
	@scripts/check-translations.sh
	uv run python manage.py makemigrations --check --dry-run
	uv run ruff check .
	uv run pytest $(PYTEST_ARGS)

lint: setup
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy careloop
