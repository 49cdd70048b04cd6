#!/usr/bin/env bash
# PAA's τ study on the convai2_first100 board budget (configs/paa_smollm2.yaml: SmolLM2-135M-Instruct, the first 100
# training dialogues, one epoch): the paper's context numerator (Eq. 6) against the persona numerator of the authors'
# README command, same seed and data. 10 % of the training dialogues are held out: the dev perplexity is computed
# every 23 steps (4 times in the epoch) and the best checkpoint is kept, as the paper selects by validation
# perplexity. Each run records its open-mask shares (training and generation) in its run.json / <records>.run.json
# under method_notes.mask_rates, and its dev curve and selected step under summary; a paired comparison closes the
# study. Resumable: finished steps are skipped, stopped ones continue.
#   scripts/paa_tau_runs.sh [OUT_DIR]          (default: runs/paa_tau)
set -euo pipefail
out=${1:-runs/paa_tau}
cfg=configs/paa_smollm2.yaml

source "$(dirname "$0")/run_steps.sh"

for numerator in context persona; do
    time train paa "$out/$numerator" --config "$cfg" --set model.tau_numerator=$numerator \
        --set data.dev_fraction=0.1 --set training.eval_strategy=steps --set training.eval_steps=23 \
        --set training.select_best=true
    time generate paa "$out/$numerator" "$out/$numerator/convai2_first100.jsonl" --config "$cfg" --with-nll
done
for preset in paa pdg; do
    [[ -f $out/compare_$preset.md ]] || pdg-eval compare "$out/context/convai2_first100.jsonl" \
        "$out/persona/convai2_first100.jsonl" --name context --name persona --preset $preset \
        --output-format markdown --out "$out/compare_$preset.md"
done
