# dipgw tasks. Quick start: `make demo` (the whole pipeline on local Kafka + embedded
# PostgreSQL with a demo feed) and `make test` (the test suite against the real broker/server).
# Everything installs itself: a virtualenv in .venv (pip cache reused), the Kafka broker jars
# from Maven Central into ~/.cache/dipgw (once per machine).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install kafka demo up test lint check clean image image-test

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) deploy/bootstrap.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

kafka: $(STAMP)
	@$(BIN)/dipgw kafka fetch >/dev/null

demo: kafka
	$(BIN)/dipgw demo

up: kafka
	$(BIN)/dipgw up

lint: $(STAMP)
	$(BIN)/ruff check gateway contracts adapters workers tests
	$(BIN)/ruff format --check --quiet gateway contracts adapters workers tests
	$(BIN)/mypy

# The test command of the README and of CI: lint (ruff; mypy strict on the pure core), then
# every test against the real Kafka broker and PostgreSQL.
test: lint kafka
	$(BIN)/python -m pytest

# The container image (deploy/container: Debian bookworm base made with debootstrap, podman with
# runc) and its smoke test: the image's gateway and workers against the local Kafka and
# PostgreSQL, one list pushed and scored. Not part of `make test` (the first build takes
# minutes: debootstrap, apt-get, PyPI).
image:
	deploy/container/build.sh

image-test: image $(STAMP) kafka
	deploy/container/smoke.sh

clean:
	rm -rf $(VENV) .dipgw .pytest_cache .mypy_cache .ruff_cache
