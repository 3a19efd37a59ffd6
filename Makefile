# Linli: `make run` serves the demo district, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test bench bench-vision lint browser-deps vision-deps install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/linli db upgrade
	$(BIN)/linli demo --if-empty
	LINLI_DEMO_LIVE=$${LINLI_DEMO_LIVE:-true} $(BIN)/linli serve

# Debian's Chromium and CJK fonts for the browser tests; installed when missing and apt is usable.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and fonts-noto-cjk with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null \
	      || echo "apt-get failed: browser tests will say they skipped"; \
	  else echo "no /usr/bin/chromium and no root apt-get: browser tests will say they skipped"; fi; \
	fi

# Debian's ffmpeg and rtsp-server-perl for the RTSP stream test of linli.vision.source (a real server on loopback).
vision-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v rtsp-server-perl >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing ffmpeg and rtsp-server-perl with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg rtsp-server-perl) >/dev/null \
	      || echo "apt-get failed: the RTSP test will say it skipped"; \
	  else echo "no ffmpeg/rtsp-server-perl and no root apt-get: the RTSP test will say it skipped"; fi; \
	fi

test: install browser-deps vision-deps
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/ingest.py $(BENCH_INGEST_ARGS)

# Throw detection (issue #5): renders the labelled clips once (data/bench-vision/), detects on one core.
bench-vision: install
	$(BIN)/python -m bench.vision.run $(BENCH_VISION_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
