# The two commands the README names:
#   make demo   set up, then build the demo site and open the workbench on it
#   make test   set up, then run the test suite and the checks
# Everything else here is what those two need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch 2.13.0 must be the CPU build on the project's machines: constraints.txt pins it on every install
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: setup demo test check browser fonts bench clean viewer viewer-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip wheel
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	# compile the distance kernels into numba's cache now, so that the first survey compiles nothing
	$(BIN)/python -m sitetwin.twin.distance --warm >/dev/null
	touch $@

demo: setup fonts
	$(BIN)/sitetwin demo --serve

# Headless Chromium and its driver for the browser tests (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

# CJK fonts: WenQuanYi Micro Hei (TrueType outlines) for the Chinese PDF reports, which matplotlib embeds
# as TrueType; Noto Sans CJK for the browser; poppler's pdffonts/pdftotext, which the report tests read
# the PDFs back with (Debian packages; needs root or sudo).
fonts:
	@{ fc-list 2>/dev/null | grep -q 'WenQuanYi Micro Hei' && fc-list | grep -q 'Noto Sans CJK'; } \
	  && command -v pdftotext >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq \
	  && $$SUDO apt-get install -y -qq fonts-wqy-microhei fonts-noto-cjk poppler-utils >/dev/null; }

# The tests first, then the checks: a failing test says more than a failing check.
# The suite runs on every core (pytest-xdist, one test file per worker: module fixtures are built once);
# plain `pytest` runs it in one process.
test: setup browser fonts
	$(BIN)/pytest -n auto --dist loadfile
	$(MAKE) --no-print-directory check

# What the tests cannot see (ARCHITECTURE.md, "Tests, checks and benchmarks"), cheapest first:
# the layer contracts, lint, types over the packages, and the install check (a wheel from the
# checkout in a fresh venv without extras: --help everywhere, both servers start and stop).
# Each one failing fails the target.
check: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	VENV=$(VENV) .ci/typecheck
	VENV=$(VENV) .ci/install-check

# The 3D twin's WebGL viewer: dashboards/viewer_src (three.js, pinned in package-lock.json) bundled by
# esbuild into dashboards/assets/sitetwin-viewer.js, which is committed (the workbench needs no npm);
# viewer-check rebuilds it and compares byte for byte (needs node 20 and npm).
viewer:
	cd dashboards/viewer_src && npm ci --no-audit --no-fund && node build.mjs

viewer-check:
	cd dashboards/viewer_src && npm ci --no-audit --no-fund && node build.mjs --check

bench: setup
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) sitetwin-demo.duckdb* demo-site .pytest_cache build/typecheck build/mypy-cache
