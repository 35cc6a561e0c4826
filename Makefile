# Front door: `make demo` runs the whole pipeline here, `make test` runs every test.
VENV := .venv
BIN := $(VENV)/bin
# Seconds the demo runs; 0 runs it until interrupted.
DURATION ?= 120

.PHONY: setup demo test lint bench bench-export clean

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/commons demo $(if $(filter 0,$(DURATION)),,--duration $(DURATION))

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/export.py

# Exports of a year of hourly and a month of 5-minute readings from 100 nodes (docs/exports.md).
bench-export: setup
	$(BIN)/python bench/export.py

clean:
	-$(BIN)/commons stack down
	rm -rf .commons

# The files to copy to an ESP32 (mpy-cross output in build/firmware/); prints the mpremote steps.
.PHONY: firmware
firmware: setup
	$(BIN)/python scripts/build_firmware.py
