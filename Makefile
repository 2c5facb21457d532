# tsim: `make run` runs the default experiment, `make test` runs the test suite.
# Both create .venv/ on first use. GPU users: make TORCH_SPEC="torch" (or any spec) run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
OUT ?= results/default
BENCH_THREADS ?= 1
STAMP := $(VENV)/.installed

.PHONY: setup run test bench results clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,deep]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tsim run --out $(OUT)

# one pytest worker per core (pytest-xdist): a cold run compiles different Numba kernels in parallel
TEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy on this kind of machine: unset for benchmarks only.
bench: $(STAMP)
	@# one process per file: torch's OpenMP threads left spinning by one file slowed the next
	for f in benchmarks/bench_*.py; do \
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE TSIM_BENCH_THREADS=$(BENCH_THREADS) \
		$(PY) -m pytest $$f -q --benchmark-enable --benchmark-only -p no:cacheprovider || exit 1; \
	done
	$(PY) benchmarks/render.py

# Every study in experiments/ into docs/results/NAME (results.csv, summary.json, figures; the SQLite
# stores there are git-ignored and make a rerun resume), then one report page. Deep studies run their
# [quick] variant unless DEEP_FLAGS is emptied (a GPU makes the full ones practical).
EXPERIMENTS ?= $(sort $(wildcard experiments/*.toml))
RESULTS_FLAGS ?= --workers 2
DEEP_FLAGS ?= --quick --device auto
results: $(STAMP)
	@for f in $(EXPERIMENTS); do \
		name=$$(basename $$f .toml); flags="$(RESULTS_FLAGS)"; \
		if grep -q '^study = "deep"' $$f; then flags="$$flags $(DEEP_FLAGS)"; fi; \
		echo "== $$name ($$flags)"; \
		$(VENV)/bin/tsim run $$f --out docs/results/$$name $$flags --no-progress > /dev/null || exit 1; \
	done
	$(VENV)/bin/tsim report $$(ls -d docs/results/*/) --out docs/results/report.md

clean:
	rm -rf $(VENV) results .benchmarks
