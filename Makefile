# Front door: `make demo` runs the whole pipeline here, `make test` runs every test.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/commons demo $(if $(DURATION),--duration $(DURATION),)

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/pipeline.py

clean:
	-$(BIN)/commons stack down
	rm -rf .commons
