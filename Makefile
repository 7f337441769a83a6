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

# System packages the end-to-end tests drive: headless Neovim (the editor plugin's test), and Chromium with its driver
# (the writing pad's browser tests). Each is installed from the system's packages when missing and apt can be used
# (as root, or with sudo that asks no password); otherwise those tests are skipped, saying why.
# $(call apt_install,PACKAGES,COMMAND THEY PROVIDE,WHAT IS SKIPPED WITHOUT THEM)
define apt_install
	@command -v $(2) >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null; then \
	    $$SUDO apt-get update -qq >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(1) >/dev/null || echo "could not install $(1): $(3) will be skipped"; \
	  else echo "no $(2) and no apt to install it with: $(3) will be skipped"; fi; }
endef

editor:
	$(call apt_install,neovim,nvim,the editor end-to-end test)
	$(call apt_install,chromium chromium-driver,chromedriver,the writing pad's browser tests)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	$(BIN)/python -m contract.compiled  # the sampler chain compiled once now, not at the first suggestion
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
