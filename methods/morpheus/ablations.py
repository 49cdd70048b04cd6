"""MORPHEUS' Table 4 (ablations) and Figure 3 (codebook size) on pdg-eval's own runs, scored with the ``morpheus``
preset (``--preset`` to change).

    python -m pdg_eval_methods.morpheus.ablations table4 --config configs/morpheus_smollm2.yaml --stage1 runs/morpheus_stage1 --out DIR
    python -m pdg_eval_methods.morpheus.ablations codebook-size --config configs/morpheus_smollm2.yaml --stage1 RUN --out DIR
    python -m pdg_eval_methods.morpheus.ablations code-usage RUN [RUN ...]

Every variant is a joint stage trained from the same role-awareness run (``--stage1``) and generated on the
configuration's evaluation data: ``MORPHEUS`` (as configured), ``w/o CL`` (no contrastive loss), ``w/o RA`` (the joint
stage from the backbone, no role awareness), ``init random`` / ``init sequential`` / ``init mean`` (the other codebook
initialisations) and ``w/o PC`` (no codebook: the profile-free ``causal_lm_ft`` on the same data and training
settings, the paper's GPT-2 baseline). ``codebook-size`` trains N = 20, 50 and 100 (``--sizes``). ``--only NAME``
(repeatable) runs a subset. Runs and records go to ``OUT/<variant>/``; finished ones are read back, so the runner
continues after an interruption. ``code-usage`` prints, for trained runs, how many codes the distinct training
segments use (Eq. 8) and how far they lie from their nearest code — how a collapsed codebook shows (a role-awareness
run is measured against the codebook its joint stage would start from).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pdg_eval.cli.main import exit_status
from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.experiments import generated, score, write_summary
from pdg_eval_methods.common.method import method_config
from pdg_eval_methods.common.runner import train_run

TABLE4 = {"MORPHEUS": [], "w/o CL": ["model.loss_weights.C=0"], "w/o RA": ["model.role_awareness=false"],
          "init random": ["model.init=random"], "init sequential": ["model.init=sequential"],
          "init mean": ["model.init=mean"], "w/o PC": None}
SIZES = (20, 50, 100)


def folder_name(name: str) -> str:
    return name.replace("/", "").replace(" ", "_")


def variant(name: str, overrides: Sequence[str], config_path: str | None, extra: Sequence[str] | None, stage1: Path,
            out: Path, preset: str, progress: bool) -> dict:
    """Train (unless finished), generate and score one variant."""
    folder = out / folder_name(name)
    if extra is None:  # w/o PC: the profile-free causal LM on the same data and training settings
        method = "causal_lm_ft"
        base = method_config("morpheus", config_path, overrides)
        settings = [f"backbone={base.backbone}", "model.with_persona=false", "model.format=plain"]
        config = method_config(method, None, settings)
        config.data, config.training, config.decoding, config.seed = base.data, base.training, base.decoding, base.seed
        init = None
    else:
        method, init = "morpheus", None if "model.role_awareness=false" in extra else stage1
        config = method_config("morpheus", config_path, [*overrides, "model.stage=joint", *extra])
    if not (folder / "run.json").is_file():
        resume = (folder / "checkpoints").is_dir() and any((folder / "checkpoints").glob("checkpoint-*"))
        train_run(method, config, folder, resume=resume, progress=progress, init_from=init)
    records = folder / "records.jsonl"
    provenance = generated(method, config, records, folder, progress)
    return {"name": name, "scores": score(records, preset), "wall_s": provenance["cost"]["wall_s"],
            "method_notes": provenance["method_notes"]}


def run(args: argparse.Namespace) -> dict:
    stage1, out = Path(args.stage1), Path(args.out)
    if args.table == "table4":
        variants = dict(TABLE4)
        label, numeric = "variant", False
    else:
        variants = {str(n): [f"model.codebook_size={n}"] for n in args.sizes}
        label, numeric = "codebook size N", True
    if args.only:
        unknown = sorted(set(args.only) - set(variants))
        if unknown:
            raise ConfigError(f"--only: unknown variants {unknown}; expected some of {sorted(variants)}")
        variants = {name: extra for name, extra in variants.items() if name in args.only}
    rows = [variant(name, args.overrides, args.config, extra, stage1, out, args.preset, not args.quiet)
            for name, extra in variants.items()]
    summary = {"figure": args.table, "stage1": str(stage1), "preset": args.preset, "rows": rows}
    write_summary(summary, out, label, f"MORPHEUS: {args.table}", numeric=numeric)
    return summary


def code_usage(runs: Sequence[str]) -> list[dict]:
    """:meth:`~pdg_eval_methods.morpheus.method.MORPHEUS.code_usage` of each trained run on its own training data,
    printed as JSON lines."""
    import json

    from pdg_eval_methods.common.method import get_method, read_run_file
    from pdg_eval_methods.common.runner import MODEL_DIR, load_examples, trained_config

    rows = []
    for run_dir in runs:
        config = trained_config(run_dir, read_run_file(run_dir), "morpheus")
        method = get_method("morpheus")(config)
        method.build(Path(run_dir) / MODEL_DIR)
        examples, _ = load_examples(config.data.train, config.data.train_dialogues, "train")
        rows.append({"run": str(run_dir)} | method.code_usage(examples))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="table", required=True)
    for name in ("table4", "codebook-size"):
        c = commands.add_parser(name)
        c.add_argument("--config")
        c.add_argument("--set", dest="overrides", action="append", default=[])
        c.add_argument("--stage1", required=True, help="the role-awareness run every variant starts from")
        c.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="codebook-size: the N to train")
        c.add_argument("--only", action="append", default=[], help="run only this variant (repeatable)")
        c.add_argument("--preset", default="morpheus")
        c.add_argument("--out", required=True)
        c.add_argument("-q", "--quiet", action="store_true")
    usage = commands.add_parser("code-usage", help="how many codes trained runs use on their training segments")
    usage.add_argument("runs", nargs="+", metavar="RUN")
    args = p.parse_args(argv)
    if args.table == "code-usage":
        return exit_status(lambda: code_usage(args.runs), prog="pdg_eval_methods.morpheus.ablations")
    return exit_status(lambda: run(args), prog="pdg_eval_methods.morpheus.ablations")


if __name__ == "__main__":
    sys.exit(main())
