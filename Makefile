# tagloop: two commands on a fresh machine.
#   make serve   set up .venv (torch CPU first) and run the server on its embedded default
#   make test    set up .venv and Label Studio's own venv, then ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
LS_VENV ?= .ls-venv
HOST   ?= 127.0.0.1
PORT   ?= 9090
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tagloop-installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: serve test setup setup-ls services tools lint typecheck pytest clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup-ls: $(LS_VENV)/bin/label-studio

$(LS_VENV)/bin/label-studio:
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q label-studio==1.23.2

serve: setup
	$(BIN)/tagloop serve --host $(HOST) --port $(PORT)

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log

# docker-compose (Debian's 1.29) validates docker/compose.yaml in the tests; best effort: the test skips without it
tools:
	@command -v docker-compose >/dev/null 2>&1 || apt-get install -y -q docker-compose >/dev/null 2>&1 || echo "docker-compose could not be installed: tests/backend/test_docker_files.py skips its compose check"

lint: setup
	$(BIN)/ruff check backend strategies tools tests docker
	$(BIN)/ruff format --check backend strategies tools tests docker
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

pytest: setup setup-ls services tools
	TAGLOOP_LS_VENV=$(abspath $(LS_VENV)) $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(LS_VENV) var
