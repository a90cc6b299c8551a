# modelrollout: every command a user and CI rely on. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)
E2E_DIR ?= $(CURDIR)/.e2e

.PHONY: help system system-down images setup lock test-min-deps lint unit e2e e2e-long e2e-kind e2e-kind-smoke test cluster-up cluster-down crds argocd-fixtures bench bench-scale run demo clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

system:  ## install Debian's prometheus, openssl, docker.io and debootstrap if missing, start dockerd if none answers; sudo when not root
	@bash e2e/install-system-packages.sh

system-down:  ## stop the dockerd that `make system` started (never one it found running)
	@bash e2e/dockerd.sh down

images: system  ## build modelrollout:dev and modelrollout-modelserver:dev on a local Debian base (cached by content)
	@bash e2e/images/build.sh

setup: $(VENV)/.installed  ## create .venv with the operator and its dev/e2e dependencies, from requirements.lock

# The locked versions (hashes checked), then the project itself on top of them.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

lock: setup  ## rewrite requirements.lock from pyproject.toml (uv pip compile: every platform, Python 3.11+)
	$(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra e2e --python-version 3.11 --universal \
		--generate-hashes --quiet --custom-compile-command "make lock" -o requirements.lock

MIN_VENV := .venv-min
test-min-deps:  ## make unit with the declared minimum kubernetes, kopf, pydantic and httpx
	python3 -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q --upgrade pip
	$(MIN_VENV)/bin/python .ci/minimum-versions.py pyproject.toml kubernetes kopf pydantic httpx \
		> $(MIN_VENV)/minimum.txt
	$(MIN_VENV)/bin/pip install -q -c $(MIN_VENV)/minimum.txt -e '.[dev,e2e]'
	$(MIN_VENV)/bin/pip list 2>/dev/null | grep -iE '^(kubernetes|kopf|pydantic|httpx) '
	touch $(MIN_VENV)/.installed
	$(MAKE) unit VENV=$(MIN_VENV)

lint: setup  ## ruff, mypy --strict, import contracts, CRD drift
	@test ! -e operator/__init__.py || { echo "operator/__init__.py must not exist: it shadows the standard library"; exit 1; }
	$(VENV)/bin/ruff check operator tests e2e bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m modelrollout.api.crd --check crds/modeldeployments.yaml
	$(PY) -m modelrollout.api.crd --check charts/modelrollout/crds/modeldeployments.yaml

UNIT_WORKERS ?= 2
unit: setup  ## unit and integration tests of the pure core and adapters (two workers: the integration tests mostly wait on scrapes)
	$(PY) -m pytest tests -q --durations=15 $(if $(filter-out 0 1,$(UNIT_WORKERS)),-n $(UNIT_WORKERS) --dist worksteal)

# Three worlds: under two the machine was 55-70 % idle (vmstat every 30 s), the tests waiting on
# scrapes and analysis windows; under three it is 32 % idle (median), and e2e takes 31 minutes
# warm instead of 45.
E2E_WORKERS ?= 3
# loadgroup: the real node's tests share one worker (one host has room for one kube-proxy; e2e/fixtures/scheduling.py).
e2e: setup system  ## end-to-end tests; E2E_WORKERS (default 3) worlds in parallel, or 1: the default world (started if not running)
	$(PY) -m pytest e2e -q --durations=30 -m "not long" $(if $(filter-out 0 1,$(E2E_WORKERS)),-n $(E2E_WORKERS) --dist loadgroup)

e2e-long: setup system  ## the long e2e cases CI leaves out (30 s and 60 s scrapes, examples rolled out elsewhere too: about 22 minutes)
	$(PY) -m pytest e2e -q --durations=10 -m long

# The scenarios proven on kind so far (e2e/kind/), on a kind cluster built offline, then deleted
# (E2E_KEEP_WORLD=1 keeps it).
KIND_E2E ?= e2e/scenarios/test_canary.py e2e/scenarios/test_strategies.py e2e/scenarios/test_gpu.py \
	e2e/scenarios/test_kind_chart.py e2e/test_readme.py
e2e-kind: setup system  ## the e2e scenarios proven on kind, on a kind cluster built offline (E2E_CLUSTER=kind)
	@started=$$SECONDS; export E2E_CLUSTER=kind; \
	if $(PY) -m e2e.cluster up; then \
	  echo "::: kind cluster up took $$((SECONDS - started)) s"; started=$$SECONDS; \
	  $(PY) -m pytest $(KIND_E2E) -q --durations=10 -m "not long"; status=$$?; \
	  echo "::: kind tests took $$((SECONDS - started)) s"; \
	else status=1; fi; started=$$SECONDS; \
	test -n "$$E2E_KEEP_WORLD" || { $(PY) -m e2e.cluster down; \
	  echo "::: kind cluster down took $$((SECONDS - started)) s"; }; exit $$status

# The kind smoke test: the smallest cluster the canary example fits (the control plane and one
# a100 worker), one promotion and one rollback, in a folder of its own (.e2e/kind) beside the
# local worlds'. `make test` runs it after the e2e tests, never beside them: a kind cluster
# starting on two cores starved their model servers, and a latency regression went unseen.
KIND_SMOKE ?= e2e/scenarios/test_canary.py::test_healthy_canary_promotes \
	e2e/scenarios/test_canary.py::test_faulty_canary_rolls_back_before_half_the_traffic
e2e-kind-smoke: setup system  ## a two-node kind cluster built offline, one promotion, one rollback, then deleted
	E2E_DIR=$(E2E_DIR)/kind KIND_POOLS=a100 KIND_WORKERS_PER_POOL=1 \
		$(MAKE) --no-print-directory e2e-kind KIND_E2E="$(KIND_SMOKE)"

# Unit and e2e tests both mostly wait (on scrapes and analysis windows), so `make test` runs the
# unit tests beside the e2e workers: one process, in a world of its own (E2E_UNIT_WORLD,
# e2e/cluster/layout.py). Their output follows e2e's. Then the kind smoke test, alone.
test: lint setup system  ## everything CI runs: lint, the unit tests beside the e2e tests, then the kind smoke test
	@mkdir -p $(E2E_DIR)/workers; unit_log=$(E2E_DIR)/workers/unit.log; \
	E2E_UNIT_WORLD=1 $(MAKE) --no-print-directory unit UNIT_WORKERS=1 > $$unit_log 2>&1 & unit_pid=$$!; \
	$(MAKE) --no-print-directory e2e; e2e_status=$$?; \
	wait $$unit_pid; unit_status=$$?; \
	echo "::: make unit, run beside make e2e (exit $$unit_status):"; cat $$unit_log; \
	echo "::: make e2e-kind-smoke"; started=$$SECONDS; \
	$(MAKE) --no-print-directory e2e-kind-smoke; kind_status=$$?; \
	echo "::: make e2e-kind-smoke took $$((SECONDS - started)) s (exit $$kind_status)"; \
	exit $$(( e2e_status || unit_status || kind_status ))

cluster-up: setup system  ## start the e2e world (idempotent); writes .e2e/env
	$(PY) -m e2e.cluster up

cluster-down: setup  ## stop the e2e world; leaves no process or port behind
	$(PY) -m e2e.cluster down

crds: setup  ## regenerate crds/ from the pydantic models
	$(PY) -m modelrollout.api.crd --write crds/modeldeployments.yaml
	$(PY) -m modelrollout.api.crd --write charts/modelrollout/crds/modeldeployments.yaml

argocd-fixtures: setup  ## re-record tests/argocd/fixtures/recorded/ from e2e runs (headers kept)
	E2E_RECORD_ARGOCD=tests/argocd/fixtures/recorded $(PY) -m pytest -q e2e/scenarios/test_canary.py \
		e2e/scenarios/test_manual.py -k "healthy or faulty or pause_waits"

bench: setup  ## every benchmark; tables on stdout, JSON under bench/results/
	$(PY) -m bench.run_all

bench-scale: setup system  ## the fleet at scale on the e2e world (BENCH_SCALE_OBJECTS=1000, _PROGRESSING=50); bench/results/scale.json
	$(PY) -m bench.scale

# In the e2e world (.e2e/env written, $$KUBECONFIG unset or the world's), the operator also takes the
# world's Prometheus as its default and reaches model servers at the loopback address the pod runner
# writes into each pod's annotation: kwok's pod IPs answer nothing. Settings already exported win.
run: setup  ## run the operator from source against $$KUBECONFIG (default: the e2e world's)
	@world_kubeconfig=$$( [ -f $(E2E_DIR)/env ] && . $(E2E_DIR)/env && echo "$$KUBECONFIG" ); \
	if [ -n "$$world_kubeconfig" ] && [ "$${KUBECONFIG:-$$world_kubeconfig}" = "$$world_kubeconfig" ]; then \
	  prometheus_url=$$( . $(E2E_DIR)/env && echo "$$PROMETHEUS_URL" ); \
	  export KUBECONFIG=$$world_kubeconfig; \
	  export MODELROLLOUT_PROMETHEUS_URL=$${MODELROLLOUT_PROMETHEUS_URL:-$$prometheus_url}; \
	  export MODELROLLOUT_POD_ADDRESS_ANNOTATION=$${MODELROLLOUT_POD_ADDRESS_ANNOTATION:-e2e.modelrollout.io/address}; \
	  echo "make run: the e2e world ($$KUBECONFIG), Prometheus $$MODELROLLOUT_PROMETHEUS_URL"; \
	fi; \
	export MODELROLLOUT_LISTEN_HOST=$${MODELROLLOUT_LISTEN_HOST:-127.0.0.1}; \
	exec $(PY) -m modelrollout

demo: setup system  ## set up everything and roll out one healthy and one faulty version, live
	$(PY) -m e2e.demo

clean: cluster-down  ## stop the world and remove local state
	rm -rf .e2e
