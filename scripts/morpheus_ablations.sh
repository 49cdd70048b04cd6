#!/usr/bin/env bash
# MORPHEUS' Table 4 ablations and Figure 3 codebook sizes at CPU scale, on SmolLM2-135M-Instruct
# (configs/morpheus_smollm2.yaml): one role-awareness run on the first 40 dialogues of the ConvAI2 train sample,
# then each variant's joint stage from it on the same 40 dialogues (w/o RA: from the backbone; w/o PC: the
# profile-free causal_lm_ft), generated persona-free on the first 10 ConvAI2 valid dialogues and scored with the
# morpheus preset. N = 100 of Figure 3 is Table 4's MORPHEUS row (the same configuration), so the sweep trains 20
# and 50. Run from the repository root with the shared data at ../shared; every finished step is read back, so the
# script can be run again after an interruption. On a GPU, raise data.train_dialogues / eval_dialogues.
#   scripts/morpheus_ablations.sh [OUT_DIR]          (default: runs/morpheus_ablations)
set -euo pipefail
out=${1:-runs/morpheus_ablations}
cfg=configs/morpheus_smollm2.yaml
# micro-batches of 4 with 4 accumulated: the configuration's 16 examples a step, in about half the memory (two joint
# runs side by side at 8 x 2 held 10-11 GB each on a 23 GB machine)
scale=(--set data.train_dialogues=40 --set data.eval_dialogues=10 --set training.batch_size=4
       --set training.gradient_accumulation=4)

source "$(dirname "$0")/run_steps.sh"

# stage 1 alone, at the configuration's micro-batches (8 x 2)
time train morpheus "$out/stage1" --config "$cfg" --set data.train_dialogues=40 --set data.eval_dialogues=10
time python -m pdg_eval_methods.morpheus.ablations table4 --config "$cfg" "${scale[@]}" --stage1 "$out/stage1" \
    --out "$out/table4" -q
time python -m pdg_eval_methods.morpheus.ablations codebook-size --config "$cfg" "${scale[@]}" --sizes 20 50 \
    --stage1 "$out/stage1" --out "$out/codebook_size" -q
