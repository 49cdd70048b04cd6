# Resumable steps for the method run scripts (sourced by scripts/pal_runs.sh and scripts/idl_runs.sh):
#   train METHOD OUT [options...]      skip a finished run (OUT/run.json), resume one with checkpoints
#   generate METHOD RUN OUT [options...]   skip existing records, resume a stopped generation (OUT.partial)
train() {
    local method=$1 dir=$2
    shift 2
    if [[ -f $dir/run.json ]]; then return; fi
    if compgen -G "$dir/checkpoints/checkpoint-*" > /dev/null; then
        pdg-eval run "$method" train --out "$dir" --resume "$@"
    else
        pdg-eval run "$method" train --out "$dir" "$@"
    fi
}

generate() {
    local method=$1 run=$2 records=$3
    shift 3
    if [[ -f $records ]]; then return; fi
    if [[ -f $records.partial ]]; then
        pdg-eval run "$method" generate --checkpoint "$run" --out "$records" --resume "$@"
    else
        pdg-eval run "$method" generate --checkpoint "$run" --out "$records" "$@"
    fi
}
