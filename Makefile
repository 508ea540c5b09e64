# The README's two commands. Each target sets itself up on a fresh machine:
# it installs uv with pip when it is missing, syncs the workspace, then runs.

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif

.PHONY: setup test lint typecheck pytest demo bench

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.8"
	$(UV) sync --locked --all-packages

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports

typecheck: setup
	$(UV) run mypy

pytest: setup
	$(UV) run pytest

test: lint typecheck pytest

demo: setup
	$(UV) run ib-middleware demo

bench: setup
	$(UV) run python bench/estimator_accuracy.py
