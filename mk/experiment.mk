# One experiment as file targets. Called by the top-level Makefile with CONFIG, EXP and BIN
# (and SET), which reach the stages through the environment (scripts/stage.sh), unsplit.
#
# A stage reruns when its input file, its binary or its stamp is newer than its output. The
# stamp EXP/.make/<stage>.hash holds the hash of the config sections the stage depends on
# (`<stage> --print-stage-hash`); it is rewritten only when that hash changes, so a changed
# SET or config file reruns exactly the stages it affects, and nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CONFIG ?= configs/demo.yaml
BIN ?= target/debug
SET ?=
ADAPT_FROM ?=
export CONFIG SET
ifeq ($(EXP),)
$(error EXP is not set: use `make experiment CONFIG=...` from the project root)
endif
ifneq ($(words $(EXP)),1)
$(error EXP "$(EXP)" has a space, which make cannot use in file names: choose an experiment.name and workdir without spaces)
endif

STAGE := scripts/stage.sh
STAMPS := $(EXP)/.make

.PHONY: all FORCE
all: $(EXP)/report/index.html

$(STAMPS)/%.hash: FORCE
	@mkdir -p $(STAMPS)
	@hash="$$($(STAGE) $(BIN)/$* --print-stage-hash)$(if $(filter train,$*),$(ADAPT_FROM))"; \
	if [[ ! -f $@ || "$$(cat $@)" != "$$hash" ]]; then echo "$$hash" > $@.tmp && mv $@.tmp $@; fi

$(EXP)/tensors/meta.json: $(STAMPS)/preprocess.hash $(BIN)/preprocess
	$(STAGE) $(BIN)/preprocess $(STAGE_FLAGS)

# ADAPT_FROM=SOURCE_EXP: `train --adapt-from` (site adaptation); reruns when the source model changes.
$(EXP)/train/model.onnx: $(EXP)/tensors/meta.json $(STAMPS)/train.hash $(BIN)/train $(if $(ADAPT_FROM),$(ADAPT_FROM)/train/model.onnx)
	$(STAGE) $(BIN)/train $(STAGE_FLAGS) $(if $(ADAPT_FROM),--adapt-from $(ADAPT_FROM))

$(EXP)/predictions/provenance.json: $(EXP)/train/model.onnx $(STAMPS)/infer.hash $(BIN)/infer
	$(STAGE) $(BIN)/infer $(STAGE_FLAGS)

$(EXP)/report/index.html: $(EXP)/predictions/provenance.json $(STAMPS)/report.hash $(BIN)/report
	$(STAGE) $(BIN)/report $(STAGE_FLAGS)
