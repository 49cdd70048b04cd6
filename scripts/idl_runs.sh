#!/usr/bin/env bash
# IDL's runs for the convai2_first100 board, the ablation (IDL Table 3) and the sessions curve (IDL Fig. 4), on
# SmolLM2-135M-Instruct (configs/idl_smollm2.yaml). Run from the repository root with the shared data at ../shared.
# Each step is skipped when its output exists, and training continues from its last checkpoint, so the script can
# be run again after an interruption (CPU sessions) until everything is there.
#   scripts/idl_runs.sh [OUT_DIR]          (default: runs/idl)
# Cornell and LIGHT cannot make sessions from the shared samples: the ablation and the curve run on ConvAI2.
# "w/o SPI" is not trained: no person of the train sample has 2c = 6 dialogues (no clustering) or more than k = 5
# others, so SPI selects every other dialogue either way and the MSL data would be the same.
set -euo pipefail
out=${1:-runs/idl}
cfg=configs/idl_smollm2.yaml
ext=(--set "model.extractor=$out/extractor")

source "$(dirname "$0")/run_steps.sh"

time train idl "$out/extractor" --config "$cfg" --set model.stage=extractor
time train idl "$out/msl" --config "$cfg" "${ext[@]}"
time train idl "$out/dpoc" --config "$cfg" "${ext[@]}" --set model.stage=dpoc --init-from "$out/msl"
time generate idl "$out/msl" "$out/msl/convai2_first100.jsonl" --config "$cfg" --with-nll      # w/o DPA
time generate idl "$out/dpoc" "$out/dpoc/convai2_first100.jsonl" --config "$cfg" --with-nll    # IDL

# ablation: w/o criterion (plain DPO on chosen/rejected), w/o DPI (references in SPI order, then DPOC)
time train idl "$out/dpo" --config "$cfg" "${ext[@]}" --set model.stage=dpoc --init-from "$out/msl" \
    --set model.dpoc_training.preference.loss=dpo --set model.dpoc_training.preference.penalty=null
time generate idl "$out/dpo" "$out/dpo/convai2_first100.jsonl" --config "$cfg"
time train idl "$out/msl_no_dpi" --config "$cfg" "${ext[@]}" --set model.ordering=none
time train idl "$out/dpoc_no_dpi" --config "$cfg" "${ext[@]}" --set model.stage=dpoc --init-from "$out/msl_no_dpi"
time generate idl "$out/dpoc_no_dpi" "$out/dpoc_no_dpi/convai2_first100.jsonl" --config "$cfg"

# sessions curve: at most 0, 1, 2 and 3 of the person's other dialogues before the current one
for n in 0 1 2 3; do
    time generate idl "$out/dpoc" "$out/sessions/references_$n.jsonl" --config "$cfg" --set "model.max_references=$n"
done
