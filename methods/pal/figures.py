"""PAL's Figure 3 (inference strategies) and Figure 4 (scores against persona-alignment training steps), on
pdg-eval's own runs, scored with the ``pal`` preset (``--preset`` to change).

    python -m pdg_eval_methods.pal.figures strategies --config configs/pal_smollm2.yaml --checkpoint runs/pal_stage2 --out DIR
    python -m pdg_eval_methods.pal.figures alignment-steps --config configs/pal_smollm2.yaml --stage2 runs/pal_stage2 --out DIR
    python -m pdg_eval_methods.pal.figures alignment-steps --config configs/pal_smollm2.yaml --init-from runs/pal_stage1 \\
        --every 10 --out DIR

    python -m pdg_eval_methods.pal.figures selection --config configs/pal_smollm2.yaml --checkpoint runs/pal_stage1 --out DIR

``selection`` does not generate: it asks how the select pass ranks "No personal description." and every persona line
of each evaluation turn (sequence log-probabilities and first-token probabilities; ``PAL.selection_scores``) against
the turn's persona label, to tell a model that has not learnt which line the reply uses from one whose decoding
hides it. ``strategies`` generates with ``direct`` (no persona highlighted), ``select_then_generate`` and ``gold`` (the label
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

from .labels import NO_LABEL
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


def selection(config_path: str | None, overrides: Sequence[str], checkpoint: Path, out: Path,
              progress: bool = True) -> dict:
    """The select pass's ranking of the possible targets against the persona labels of the evaluation turns."""
    from pdg_eval.files import atomic_writer
    from pdg_eval.render import markdown_table

    from pdg_eval_methods.common.method import get_method
    from pdg_eval_methods.common.runner import load_examples

    config = method_config("pal", config_path, overrides)
    method = get_method("pal")(config)
    method.build(checkpoint / MODEL_DIR)
    examples, data_info = load_examples(config.data.eval, config.data.eval_dialogues, "eval")
    labels = method.label(examples, progress)
    scores = method.selection_scores(examples, progress)
    summary = {"figure": "selection", "checkpoint": str(checkpoint), "eval": data_info,
               "labels": labels} | selection_summary(
        [method.labels[e.id] for e in examples], scores)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / "summary.json") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    rows = [[name, f"{value:.4f}" if isinstance(value, float) else value] for name, value in summary.items()
            if not isinstance(value, dict) and name not in ("figure", "checkpoint")]
    with atomic_writer(out / "summary.md") as handle:
        handle.write(f"# PAL: how the select pass ranks the persona lines ({checkpoint})\n\n"
                     + markdown_table(["", "value"], rows))
    return summary


def selection_summary(labels: Sequence[int], scores: Sequence[dict[str, list[float]]]) -> dict:
    """Argmax agreement with the labels over all targets and, on labelled turns, over the persona lines only (with
    chance levels); the labelled line's mean rank among the lines (0 = first); the first-token probability of "No"
    and of any line number."""
    def argmax(values: Sequence[float]) -> int:
        return max(range(len(values)), key=values.__getitem__)

    picks = [argmax(row["logps"]) - 1 for row in scores]
    labelled = [(label, row) for label, row in zip(labels, scores) if label != NO_LABEL]
    line_picks = [argmax(row["logps"][1:]) for _, row in labelled]
    ranks = [sorted(row["logps"][1:], reverse=True).index(row["logps"][label + 1]) for label, row in labelled]
    lines = [len(row["logps"]) - 1 for _, row in labelled]
    mean = (lambda values: sum(values) / len(values) if values else None)
    return {
        "turns": len(scores), "labelled_turns": len(labelled),
        "argmax_none_share": mean([p == NO_LABEL for p in picks]),
        "argmax_accuracy": mean([p == label for p, label in zip(picks, labels)]),
        "argmax_accuracy_labelled": mean([p == label for p, label in zip(picks, labels) if label != NO_LABEL]),
        "line_accuracy_labelled": mean([p == label for p, (label, _) in zip(line_picks, labelled)]),
        "line_accuracy_chance": mean([1 / n for n in lines]),
        "labelled_line_mean_rank": mean(ranks), "labelled_line_rank_chance": mean([(n - 1) / 2 for n in lines]),
        "first_token_p_none": mean([row["first_token_p"][0] for row in scores]),
        "first_token_p_any_line": mean([sum(row["first_token_p"][1:]) for row in scores]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=("strategies", "alignment-steps", "selection"))
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--checkpoint", help="strategies, selection: the trained run")
    p.add_argument("--stage2", help="alignment-steps: a stage-2 run that kept its checkpoints")
    p.add_argument("--init-from", help="alignment-steps without --stage2: the stage-1 run to train stage 2 from")
    p.add_argument("--every", type=int, default=10, help="alignment-steps with --init-from: checkpoint interval")
    p.add_argument("--preset", default="pal")
    p.add_argument("--out", required=True)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    return exit_status(lambda: run(args), prog="pdg_eval_methods.pal.figures")


def run(args: argparse.Namespace) -> None:
    if args.figure in ("strategies", "selection") and not args.checkpoint:
        raise ConfigError(f"{args.figure} needs --checkpoint RUN")
    if args.figure == "selection":
        selection(args.config, args.overrides, Path(args.checkpoint), Path(args.out), progress=not args.quiet)
    elif args.figure == "strategies":
        strategies(args.config, args.overrides, Path(args.checkpoint), Path(args.out), args.preset,
                   progress=not args.quiet)
    else:
        alignment_steps(args.config, args.overrides, Path(args.out), args.preset,
                        init_from=Path(args.init_from) if args.init_from else None, every=args.every,
                        stage2=Path(args.stage2) if args.stage2 else None, progress=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
