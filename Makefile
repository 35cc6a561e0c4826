# Front door: `make demo` runs the whole pipeline here, `make test` runs every test.
VENV := .venv
BIN := $(VENV)/bin
# Seconds the demo runs; 0 runs it until interrupted.
DURATION ?= 120

.PHONY: setup demo test lint bench clean

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

clean:
	-$(BIN)/commons stack down
	rm -rf .commons

# The files to copy to an ESP32 (mpy-cross output in build/firmware/); prints the mpremote steps.
.PHONY: firmware
firmware: setup
	$(BIN)/python scripts/build_firmware.py
