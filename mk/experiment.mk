# One experiment as file targets: each stage reruns only when its inputs, its config or its
# binary are newer than its outputs. Called by the top-level Makefile with CONFIG, EXP, BIN, SET.
# The file each stage writes last marks it complete (stages write atomically).

CONFIG ?= configs/demo.yaml
BIN ?= target/debug
SET ?=
ifeq ($(EXP),)
$(error EXP is not set: use `make experiment CONFIG=...` from the project root)
endif

SETS := $(foreach s,$(SET),--set $(s))
FLAGS := --config $(CONFIG) $(SETS) $(STAGE_FLAGS)

.PHONY: all
all: $(EXP)/report/index.html

$(EXP)/tensors/meta.json: $(CONFIG) $(BIN)/preprocess
	$(BIN)/preprocess $(FLAGS)

$(EXP)/train/model.onnx: $(EXP)/tensors/meta.json $(BIN)/train
	$(BIN)/train $(FLAGS)

$(EXP)/predictions/provenance.json: $(EXP)/train/model.onnx $(BIN)/infer
	$(BIN)/infer $(FLAGS)

$(EXP)/report/index.html: $(EXP)/predictions/provenance.json $(BIN)/report
	$(BIN)/report $(FLAGS)
