#!/usr/bin/env bash
# MORPHEUS' runs for the convai2_first100 board on SmolLM2-135M-Instruct (configs/morpheus_smollm2.yaml): stage 1
# (role awareness), the codebook initialisation and joint stage, persona-free generation on the first 100 ConvAI2
# valid dialogues; then the profile-free causal_lm_ft baseline (model.with_persona=false, the same 735 training turns)
# and the same MORPHEUS runs with the LM frozen (model.peft=true) with their LoRA baseline (MORPHEUS' Table 6). Run
# from the repository root with the shared data at ../shared. Each step is skipped when its output exists, and
# training continues from its last checkpoint, so the script can be run again after an interruption until everything
# is there.
#   scripts/morpheus_runs.sh [OUT_DIR]          (default: runs/morpheus)
set -euo pipefail
out=${1:-runs/morpheus}
cfg=configs/morpheus_smollm2.yaml
ft=configs/causal_lm_ft_smollm2_convai2.yaml

source "$(dirname "$0")/run_steps.sh"

time train morpheus "$out/stage1" --config "$cfg"
time train morpheus "$out/joint" --config "$cfg" --init-from "$out/stage1" --set model.stage=joint
time generate morpheus "$out/joint" "$out/joint/convai2_first100.jsonl" --config "$cfg"

time train causal_lm_ft "$out/profile_free" --config "$ft" --set data.train_dialogues=100 --set model.with_persona=false
time generate causal_lm_ft "$out/profile_free" "$out/profile_free/convai2_first100.jsonl" --config "$ft" \
    --set data.eval_dialogues=100 --with-nll

time train morpheus "$out/peft_stage1" --config "$cfg" --set model.peft=true
time train morpheus "$out/peft_joint" --config "$cfg" --init-from "$out/peft_stage1" --set model.stage=joint \
    --set model.peft=true
time generate morpheus "$out/peft_joint" "$out/peft_joint/convai2_first100.jsonl" --config "$cfg"

# MORPHEUS' Table 6 protocol: the profile-free causal_lm_ft with LoRA at a trainable share like MORPHEUS-PEFT's
# (rank 72 on the seven projections of every layer of SmolLM2-135M: 14.0 %, against 14.5 %)
time train causal_lm_ft "$out/profile_free_lora" --config "$ft" --set data.train_dialogues=100 \
    --set model.with_persona=false \
    --set 'training.lora={"r": 72, "alpha": 72, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}'
time generate causal_lm_ft "$out/profile_free_lora" "$out/profile_free_lora/convai2_first100.jsonl" --config "$ft" \
    --set data.eval_dialogues=100
