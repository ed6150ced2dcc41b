# The two commands: `make demo` (the main job on the embedded dataset) and `make test`.
# Each creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= runs/demo

.PHONY: demo test bench venv clean reference docs

# The packages install with uv (itself from the package index into the venv): on this 2-core
# machine ".[dev]" into an empty venv took 60 s where pip took about 140 s. --compile-bytecode
# as pip does: where PYTHONDONTWRITEBYTECODE is set (it is on this machine) nothing is cached
# at run time, and every process compiled TensorFlow's Python again (import 28 CPU-s, not 12;
# make test 2,461 CPU-s instead of about 2,100). Where uv cannot be had or fails, pip does it.
$(VENV)/.created:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mrigan-tf needs Python >= 3.11; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv || $(PY) -m pip install --quiet --upgrade pip
	@touch $@

INSTALL = $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) $(1) \
	|| { echo "uv could not install $(1); installing with pip" >&2; \
	     $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet $(1); }

$(VENV)/.installed-base: $(VENV)/.created pyproject.toml
	$(call INSTALL,-e .)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.created pyproject.toml
	$(call INSTALL,-e ".[dev]")
	@touch $@

venv: $(VENV)/.installed-dev

demo: $(VENV)/.installed-base
	$(VENV)/bin/mrigan-tf demo --out $(DEMO_OUT)

# The import layers first (seconds; pyproject.toml's [tool.importlinter]), then the suite in
# PYTEST_WORKERS processes (pytest-xdist), each test file whole on one worker so that module
# fixtures are built once, the notebook runs spread one by one (tests/conftest.py groups
# them). Much of a test's time is single-threaded (tracing, Python), so two workers pay off
# even on two cores. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(VENV)/.installed-dev
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run_all.py

# Every notebook executed at the cpu profile (Papermill), in order and in one working
# directory so that 03 and 04 reuse 02's and 03's runs; its HTML with outputs goes to
# docs/notebooks/NAME.html and its wall-clock, with the load average, to
# docs/notebooks/timings.json. One or some: make docs NOTEBOOKS="02_vanilla_gan 03_dcgan";
# from one on: make docs FROM=04_wgan.
NOTEBOOKS ?=
FROM ?=
DOCS_PROFILE ?= cpu
DOCS_RUNS ?= runs/docs
docs: $(VENV)/.installed-dev
	$(PY) docs/build_notebooks.py --profile $(DOCS_PROFILE) --workdir $(DOCS_RUNS) \
		$(if $(FROM),--from $(FROM)) $(NOTEBOOKS)

# The reference model shipped in mrigan_tf/reference/phantom64 (its README.md has the
# figures): the demo's phantom, a long training run (about 100 minutes on 2 CPU cores; add
# --resume to REFERENCE_TRAIN to continue an interrupted one), then its evaluation and TSTR.
REFERENCE_DIR ?= mrigan_tf/reference/phantom64
REFERENCE_RUNS ?= runs/reference
REFERENCE_TRAIN := train --model cwgan-gp --data $(REFERENCE_RUNS)/phantom --out $(REFERENCE_RUNS)/run \
	--steps 12000 --steps-per-epoch 250 --batch-size 32 --width 16 --latent-dim 64 --n-critic 3 \
	--augment translation,cutout --seed 0
reference: $(VENV)/.installed-base
	$(VENV)/bin/mrigan-tf phantom --out $(REFERENCE_RUNS)/phantom --subjects 40 --size 64 --seed 0 --overwrite
	$(VENV)/bin/mrigan-tf $(REFERENCE_TRAIN)
	$(PY) -m mrigan_tf.reference --run $(REFERENCE_RUNS)/run --data $(REFERENCE_RUNS)/phantom \
		--out $(REFERENCE_DIR) --overwrite --command "mrigan-tf $(REFERENCE_TRAIN)"
	$(VENV)/bin/mrigan-tf generate --run $(REFERENCE_DIR) --n 10000 --seed 0 \
		--out $(REFERENCE_RUNS)/synthetic --overwrite
	$(VENV)/bin/mrigan-tf evaluate --real $(REFERENCE_RUNS)/phantom --synthetic $(REFERENCE_RUNS)/synthetic \
		--out $(REFERENCE_DIR)/evaluation --seed 0 --overwrite
	$(VENV)/bin/mrigan-tf tstr --real $(REFERENCE_RUNS)/phantom --synthetic $(REFERENCE_RUNS)/synthetic \
		--out $(REFERENCE_DIR)/tstr --seed 0 --overwrite

clean:
	rm -rf $(VENV) runs .pytest_cache
