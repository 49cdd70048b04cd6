#!/usr/bin/env bash
# PAL's runs for the convai2_first100 board, the Chinese pipeline check and the Fig. 3 / Fig. 4 runners, on
# SmolLM2-135M-Instruct (configs/pal_smollm2.yaml, configs/pal_smollm2_zh.yaml). Run from the repository root with
# the shared data at ../shared. Each step is skipped when its output exists, and training continues from its last
# checkpoint, so the script can be run again after an interruption (CPU sessions) until everything is there.
#   scripts/pal_runs.sh [OUT_DIR]          (default: runs/pal)
# The figures use the first 20 valid dialogues (152 turns): Fig. 4 generates once per kept DPO checkpoint.
set -euo pipefail
out=${1:-runs/pal}
cfg=configs/pal_smollm2.yaml
zh=configs/pal_smollm2_zh.yaml

source "$(dirname "$0")/run_steps.sh"

time train pal "$out/stage1" --config "$cfg"
time generate pal "$out/stage1" "$out/stage1/convai2_first100.jsonl" --config "$cfg" --with-nll
time train pal "$out/stage2" --config "$cfg" --init-from "$out/stage1" --set model.stage=align
time generate pal "$out/stage2" "$out/stage2/convai2_first100.jsonl" --config "$cfg" --with-nll

time train pal "$out/zh_stage1" --config "$zh"
time train pal "$out/zh_stage2" --config "$zh" --init-from "$out/zh_stage1" --set model.stage=align
time generate pal "$out/zh_stage2" "$out/zh_stage2/clv_test.jsonl" --config "$zh"
time generate pal "$out/zh_stage2" "$out/zh_stage2/morpheus_test.jsonl" --config "$zh" \
    --set "data.eval=shared:data/zh/morpheus_samples/test_datas_zh.json"

[[ -f $out/fig3/summary.json ]] || time python -m pdg_eval_methods.pal.figures strategies --config "$cfg" \
    --checkpoint "$out/stage2" --set data.eval_dialogues=20 --out "$out/fig3"
[[ -f $out/fig4/summary.json ]] || time python -m pdg_eval_methods.pal.figures alignment-steps --config "$cfg" \
    --stage2 "$out/stage2" --set data.eval_dialogues=20 --out "$out/fig4"
