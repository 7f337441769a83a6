# Two entry points: `make demo` (the main job) and `make test` (the suite CI runs); `make docs` builds the site.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch is enough for the demo and the tests; pass TORCH=torch for your platform's default build.
TORCH ?= torch==2.13.0
# Use the project's local copy of the corpora when it is there; otherwise corpora are downloaded.
SHARED_CORPORA := $(abspath ../shared/corpora)
ifneq ($(wildcard $(SHARED_CORPORA)),)
export ASSISTANT_CORPORA ?= $(SHARED_CORPORA)
endif

.PHONY: demo test lint install editor docs

install: $(VENV)/.installed editor

# Headless Neovim for the editor plugin's end-to-end test: installed from the system's packages when it is
# missing and apt can be used (as root, or with sudo that asks no password); otherwise that one test is skipped.
editor:
	@command -v nvim >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null; then \
	    $$SUDO apt-get update -qq >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim >/dev/null \
	      || echo "could not install neovim: the editor end-to-end test will be skipped"; \
	  else echo "no nvim and no apt to install it with: the editor end-to-end test will be skipped"; fi; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $@

demo: install
	$(BIN)/assistant finetune pkd --model char --size small --target-loss 1.5 --target-on val --max-time 4m --name pkd-demo --force
	@echo; echo "--- prompted sample ---"
	$(BIN)/assistant generate pkd-demo --prompt "The robot looked at the man and said" --length 400 --seed 1
	@echo; echo "--- unconditional sample ---"
	$(BIN)/assistant generate pkd-demo --length 400 --seed 2

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The documentation site in site/ (docs/, mkdocs.yml), strictly: a broken link, a missing page or figure fails it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
