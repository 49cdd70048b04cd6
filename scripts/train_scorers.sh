#!/usr/bin/env bash
# Train every consistency scorer that ships with pdg-eval, by the recipes recorded in their manifests
# (pdg_eval/models/shipped/*/manifest.json). Run from the repository root with the shared data at ../shared.
#   scripts/train_scorers.sh [OUT_DIR] [extra options for both, e.g. --backbone DIR or --epochs N]
# An interrupted run continues with --resume (checkpoints every 200 steps). On a CUDA machine the same commands
# use the GPU (the manifest records the device and the wall time).
set -euo pipefail
out=${1:-pdg_eval/models/shipped}
shift || true
data=../shared/data
# what every NLI scorer trains on (RCDG pairs and pairs rebuilt from the ConvAI2 test triples) and is held out on
nli_train=(--train "$data/consistency/dnli_style_pairs/nli-train.txt"
           --train "$data/consistency/dnli_triples_convai2/test_both_original_final.txt")
nli_valid=(--valid "$data/consistency/dnli_style_pairs/nli-valid.txt"
           --valid "$data/consistency/dnli_triples_convai2/valid_both_original_final.txt")
personaext=runs/scorers/personaext-pairs-balanced.txt
# pdg-eval/nli-minilm-l6, the earlier default
pdg-eval scorers train nli --out "$out/nli-minilm-l6" "${nli_train[@]}" "${nli_valid[@]}" --epochs 4 "$@"
# the default pdg-eval/nli-minilm-l6-personaext: the same recipe with DNLI-style pairs from PersonaExt's relation
# triples added, as many of each label as there are contradictions
mkdir -p runs/scorers
pdg-eval scorers pairs --personaext "$data/personaext/splits" --balance --out "$personaext"
pdg-eval scorers train nli --out "$out/nli-minilm-l6-personaext" "${nli_train[@]}" --train "$personaext" \
    "${nli_valid[@]}" --epochs 4 "$@"
sample=$data/convai2_train_sample
pdg-eval scorers train cohcon --out "$out/cohcon-minilm-l6" \
    --train "$sample/per-train.txt,$sample/src-train.txt,$sample/tgt-train.txt" \
    --train "$data/consistency/dnli_triples_convai2/test_both_original_final.txt" \
    --valid "$sample/per-val.txt,$sample/src-val.txt,$sample/tgt-val.txt" \
    --epochs 1 "$@"
# With PDG_EVAL_WITH_MPNET=1 (the all-mpnet-base-v2 wheels installed; see the README): the opt-in MPNet scorers.
# pdg-eval/nli-mpnet-base (RCDG + rebuilt pairs), pdg-eval/nli-mpnet-personaext (continued from it for one epoch
# with the PersonaExt pairs added), and pdg-eval/nli-minilm-mpnet-personaext, the average of the last one and the
# default (a manifest only).
if [[ "${PDG_EVAL_WITH_MPNET:-0}" == 1 ]]; then
    mpnet=sentence-transformers/all-mpnet-base-v2
    pdg-eval scorers train nli --out "$out/nli-mpnet-base" --backbone "$mpnet" "${nli_train[@]}" "${nli_valid[@]}" \
        --epochs 4
    pdg-eval scorers train nli --out "$out/nli-mpnet-personaext" --backbone "$mpnet" --init "$out/nli-mpnet-base" \
        "${nli_train[@]}" --train "$personaext" "${nli_valid[@]}" --epochs 1 --lr 5e-4
    pdg-eval scorers ensemble --out "$out/nli-minilm-mpnet-personaext" \
        --member "$out/nli-minilm-l6-personaext" --member "$out/nli-mpnet-personaext"
fi
