# Bureau: `make run` and `make test` work on a fresh machine (they install
# what they need into .venv). See README.md.
PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Local development runs with DEBUG on (a dev SECRET_KEY, static files served
# by runserver). Production sets DEBUG=false and a real SECRET_KEY (README
# "Production"). /metrics is open to this machine only.
RUN_ENV := DEBUG=$${DEBUG:-true} METRICS_ALLOWED_IPS=$${METRICS_ALLOWED_IPS-127.0.0.1,::1}

.PHONY: run test test-sqlite test-postgres install migrate bench scale-bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

migrate: $(STAMP)
	mkdir -p var
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py sync_schedules

run: migrate
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py run_bureau

test: $(STAMP)
	PYTHON=$(PY) bash scripts/test.sh $(PYTEST_ARGS)

test-sqlite: $(STAMP)
	env -u DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	bash scripts/with-postgres.sh $(PY) -m pytest $(PYTEST_ARGS)

BENCHES := bench/operations_bench.py bench/approvals_bench.py bench/scanning_bench.py \
	bench/automation_bench.py bench/metrics_bench.py bench/backtest_bench.py

# Benchmarks print figures (they are not tests): each on SQLite, then on a
# throwaway PostgreSQL (or the DATABASE_URL given). The web bench (gunicorn,
# with and without the connection pool) is PostgreSQL only.
bench: $(STAMP)
	for b in $(BENCHES); do env -u DATABASE_URL $(PY) $$b || exit 1; done
	bash scripts/with-postgres.sh sh -c 'for b in $(BENCHES) bench/web_bench.py; do $(PY) $$b || exit 1; done'

# Issue 11's table at 100,000 rows per table: PostgreSQL (a throwaway cluster unless
# DATABASE_URL names one), gunicorn, 1/2/4 qclusters, the Knox simulator. About 10 minutes.
scale-bench: $(STAMP)
	$(PY) bench/scale_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
