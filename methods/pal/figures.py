"""PAL's Figure 3 (inference strategies) and Figure 4 (scores against persona-alignment training steps), on
pdg-eval's own runs, scored with the ``pal`` preset (``--preset`` to change).

    python -m pdg_eval_methods.pal.figures strategies --config configs/pal_smollm2.yaml --checkpoint runs/pal_stage2 --out DIR
    python -m pdg_eval_methods.pal.figures alignment-steps --config configs/pal_smollm2.yaml --stage2 runs/pal_stage2 --out DIR
    python -m pdg_eval_methods.pal.figures alignment-steps --config configs/pal_smollm2.yaml --init-from runs/pal_stage1 \\
        --every 10 --out DIR

``strategies`` generates with ``direct`` (no persona highlighted), ``select_then_generate`` and ``gold`` (the label
line highlighted: an oracle) from one trained run. ``alignment-steps`` generates (select-then-generate) with the
stage-1 model (step 0) and every checkpoint of a stage-2 (DPO) run: one that kept its checkpoints
(``model.align_training.save_total_limit``), or one trained here from a stage-1 run with a checkpoint every
``--every`` steps. Each writes ``OUT/<name>.jsonl`` records, their scores (``.scores.json``), ``summary.json``,
``summary.md`` and a PNG.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

from pdg_eval.cli.main import exit_status
from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.method import method_config, read_run_file, write_run_file
from pdg_eval_methods.common.experiments import generated, score, write_summary
from pdg_eval_methods.common.runner import MODEL_DIR, train_run

from .method import STRATEGIES


def strategies(config_path: str | None, overrides: Sequence[str], checkpoint: Path, out: Path, preset: str,
               progress: bool = True) -> dict:
    rows = []
    for strategy in STRATEGIES:
        config = method_config("pal", config_path, [*overrides, f"model.strategy={strategy}"])
        records = out / f"{strategy}.jsonl"
        provenance = generated("pal", config, records, checkpoint, progress)
        rows.append({"name": strategy, "scores": score(records, preset), "wall_s": provenance["cost"]["wall_s"],
                     "selection": provenance["method_notes"].get("selection")})
        print(json.dumps({k: rows[-1][k] for k in ("name", "wall_s")}), file=sys.stderr)
    summary = {"figure": "strategies", "checkpoint": str(checkpoint), "preset": preset, "rows": rows}
    write_summary(summary, out, "name", "PAL: strategies")
    return summary


def step_run(stage2: Path, checkpoint: Path, step: int) -> Path:
    """A run folder for the DPO checkpoint at ``step``: its weights, the final run's tokenizer and record."""
    folder = stage2 / "steps" / f"step-{step}"
    model = folder / MODEL_DIR
    if model.exists():
        shutil.rmtree(model)
    model.mkdir(parents=True)
    for source in [*checkpoint.glob("*.safetensors"), checkpoint / "config.json", checkpoint / "generation_config.json",
                   *(p for p in (stage2 / MODEL_DIR).iterdir() if "token" in p.name or p.name == "chat_template.jinja")]:
        if source.is_file():
            (model / source.name).symlink_to(source.resolve())
    record = read_run_file(stage2) | {"note": f"DPO checkpoint at step {step} of {stage2}"}
    write_run_file(folder, record)
    return folder


def alignment_steps(config_path: str | None, overrides: Sequence[str], out: Path, preset: str,
                    init_from: Path | None = None, every: int = 10, stage2: Path | None = None,
                    progress: bool = True) -> dict:
    """Scores of the stage-1 model (step 0) and of every kept DPO checkpoint: of ``stage2`` (a finished stage-2 run
    that kept its checkpoints), or of a stage 2 trained here from ``init_from`` with a checkpoint every ``every``
    steps."""
    if stage2 is None:
        if init_from is None or every < 1:
            raise ConfigError("alignment-steps needs --stage2 RUN, or --init-from STAGE1_RUN with --every >= 1")
        stage2 = out / "stage2"
        config = method_config("pal", config_path, [*overrides, "model.stage=align",
                                                    f"model.align_training.save_steps={every}",
                                                    "model.align_training.save_total_limit=100000"])
        train_run("pal", config, stage2, progress=progress, init_from=init_from)
    record = read_run_file(stage2)
    if record["method"] != "pal" or not record.get("init_from"):
        raise ConfigError(f"{stage2} is not a PAL stage-2 run (trained with --init-from a stage-1 run)")
    checkpoints = sorted((int(p.name.split("-")[1]), p) for p in (stage2 / "checkpoints").glob("checkpoint-*"))
    if not checkpoints:
        raise ConfigError(f"{stage2} kept no checkpoints (model.align_training.save_steps / save_total_limit)")
    runs = [(0, Path(record["init_from"]["folder"]))] + [(step, step_run(stage2, p, step)) for step, p in checkpoints]
    rows = []
    for step, folder in runs:
        records = out / f"step-{step}.jsonl"
        generated("pal", method_config("pal", config_path, overrides), records, folder, progress)
        rows.append({"name": step, "scores": score(records, preset)})
        print(json.dumps({"step": step}), file=sys.stderr)
    summary = {"figure": "alignment-steps", "stage2": str(stage2), "init_from": record["init_from"]["folder"],
               "preset": preset, "train": record["summary"], "rows": rows}
    write_summary(summary, out, "DPO step", "PAL: alignment-steps", numeric=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=("strategies", "alignment-steps"))
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--checkpoint", help="strategies: the trained run to generate with")
    p.add_argument("--stage2", help="alignment-steps: a stage-2 run that kept its checkpoints")
    p.add_argument("--init-from", help="alignment-steps without --stage2: the stage-1 run to train stage 2 from")
    p.add_argument("--every", type=int, default=10, help="alignment-steps with --init-from: checkpoint interval")
    p.add_argument("--preset", default="pal")
    p.add_argument("--out", required=True)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    return exit_status(lambda: run(args), prog="pdg_eval_methods.pal.figures")


def run(args: argparse.Namespace) -> None:
    if args.figure == "strategies":
        if not args.checkpoint:
            raise ConfigError("strategies needs --checkpoint RUN")
        strategies(args.config, args.overrides, Path(args.checkpoint), Path(args.out), args.preset,
                   progress=not args.quiet)
    else:
        alignment_steps(args.config, args.overrides, Path(args.out), args.preset,
                        init_from=Path(args.init_from) if args.init_from else None, every=args.every,
                        stage2=Path(args.stage2) if args.stage2 else None, progress=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
