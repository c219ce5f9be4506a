# The two commands the README names:
#   make demo   set up, then build the demo site and open the workbench on it
#   make test   set up, then run the test suite
# Everything else here is what those two need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch 2.13.0 must be the CPU build on the project's machines: constraints.txt pins it on every install
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: setup demo test browser bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip wheel
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	touch $@

demo: setup
	$(BIN)/sitetwin demo --serve

# Headless Chromium and its driver for the browser tests (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: setup browser
	$(BIN)/pytest

bench: setup
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) sitetwin-demo.duckdb* demo-site .pytest_cache
