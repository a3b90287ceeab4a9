# Chest X-ray transfer-learning pipeline: set-up, demo, tests, benchmarks and experiments.
# `make demo` and `make test` are the two commands a new user runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
ORT_VERSION := 1.31.1
ORT_CPU := .ort/cpu/.done-$(ORT_VERSION)
RELEASE := target/release
BINS := $(RELEASE)/preprocess $(RELEASE)/train $(RELEASE)/infer $(RELEASE)/report
CONFIG ?= configs/demo.yaml
SET ?=

.PHONY: setup setup-cuda build test lint demo experiment bench clean help

help:
	@echo "make demo    - set up, then run the whole pipeline on the synthetic demo dataset"
	@echo "make test    - set up, then fmt + clippy + every test"
	@echo "make setup   - ONNX Runtime $(ORT_VERSION) into .ort/cpu (idempotent)"
	@echo "make experiment CONFIG=configs/x.yaml - run the stages that are out of date"
	@echo "make bench   - every benchmark"

## Set-up: ONNX Runtime's library from the PyPI wheel (idempotent; make skips it when done).
setup: $(ORT_CPU)
$(ORT_CPU):
	scripts/setup-onnxruntime.sh cpu

setup-cuda:
	scripts/setup-onnxruntime.sh cuda

build: setup
	$(CARGO) build --release --workspace --bins

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Tests build the debug binaries first: the end-to-end tests run the real ones.
test: setup lint
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

demo: build
	scripts/run-experiment.sh $(CONFIG) $(SET)

experiment: build
	scripts/run-experiment.sh $(CONFIG) $(SET)

bench: build

clean:
	rm -rf runs data/synthetic
	$(CARGO) clean
