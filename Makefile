PYTHON ?= python3
SHARED ?= ../shared

.PHONY: install serve test test-deps lint format proto bench

install:
	$(PYTHON) -m pip install -e ".[dev]"

# Development machines cannot reach the model URLs: use the fixture weights beside the repo.
SHARED_MODELS := $(abspath $(SHARED)/models)
ifneq ($(wildcard $(SHARED_MODELS)/arcface_w600k_mbf_int8.onnx),)
serve: export FACEDB_DETECTOR ?= scrfd:$(SHARED_MODELS)/scrfd_500m_kps.onnx
serve: export FACEDB_RECOGNIZER ?= arcface:$(SHARED_MODELS)/arcface_w600k_mbf_int8.onnx
endif

# Install, then run the service on the embedded default (SQLite + local FAISS in ./facedb-data).
serve: install
	facedb serve --data-dir ./facedb-data --insecure-no-auth --http-port 8080

# Installs what the tests use (the milvus extra; Debian's chromium for the console's browser
# tests, when missing), then runs them. PostgreSQL is started by the tests (.ci/start-postgres).
test: test-deps
	$(PYTHON) -m pytest -q

test-deps:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	$(PYTHON) -m pip install -q -e ".[dev,milvus]"

lint:
	ruff check .
	ruff format --check .
	mypy

format:
	ruff check --fix .
	ruff format .

proto:
	$(PYTHON) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/facedb/v1/facedb.proto

bench:
	$(PYTHON) -m benchmarks.pipeline
	$(PYTHON) -m benchmarks.lfw
	$(PYTHON) -m benchmarks.gates
	$(PYTHON) -m benchmarks.search
	$(PYTHON) -m benchmarks.service
	$(PYTHON) -m benchmarks.ijb
