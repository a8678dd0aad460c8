# Set-up and the two everyday jobs. `make demo` and `make test` create the
# virtual environment on first use (Python >= 3.12, DOLFINx from the
# dolfinx-solver-real wheel) and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fe2x-installed
NP ?= 2

.PHONY: demo test test-serial test-mpi lint venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "fe2x needs Python >= 3.12 (found " + sys.version.split()[0] + "); set PYTHON=python3.12")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[wheel,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fe2x homogenize demos/fibre_composite_2d.toml --out results/fibre_composite_2d

test: test-serial test-mpi lint

test-serial: $(STAMP)
	$(BIN)/python -m pytest -q tests

# One MPI job per test file, so that one file's failure or hang is seen on its own. (A single
# job over the whole suite once ran out of MPICH's 2046 communicator context ids: RVE and macro
# solvers were never freed, as their SNES callbacks kept them alive; see petsc_setup.weak_method.)
test-mpi: $(STAMP)
	set -e; for f in tests/test_*.py; do \
		echo "== mpiexec -n $(NP) pytest $$f"; \
		$(BIN)/mpiexec -n $(NP) $(BIN)/python -m pytest -q -p no:cacheprovider $$f; \
	done
	# FE² rank and group-size independence also on 4 (oversubscribed) ranks
	$(BIN)/mpiexec -n 4 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fe2.py -k same_answer

lint: $(STAMP)
	$(BIN)/ruff check fe2x tests demos benchmarks
	$(BIN)/ruff format --check fe2x tests demos benchmarks
	$(BIN)/mypy fe2x
