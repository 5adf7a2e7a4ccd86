# Two commands: `make tutorial` runs every notebook and writes figures/; `make test` runs pytest and nbval.
# Both create .venv and install the package on first use; the install is redone only when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup tutorial test notebooks pretrained clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing vae_utils and its dependencies into $(VENV) (first run only)"
	$(BIN)/python -m pip install -qq -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

# execute notebooks/NN_*.ipynb in order with papermill into runs/tutorial/, writing figures/
tutorial: setup
	$(BIN)/python -m tools.tutorial

# unit tests, then every notebook under nbval on the reduced budget (VAE_SMOKE_TEST=1)
test: setup
	VAE_SMOKE_TEST=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks $(NBVAL)

# re-execute every notebook in place on the full budget and strip volatile metadata (before committing)
notebooks: setup
	$(BIN)/python -m tools.tutorial --in-place

# train the pretrained model (notebook 05 with params/pretrained.yaml) and ship it in vae_utils/pretrained/
pretrained: setup
	$(BIN)/python -m tools.pretrained

clean:
	rm -rf runs .pytest_cache
