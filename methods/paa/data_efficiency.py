"""PAA's data-efficiency experiment (PAA §Experiments, Figure 3): train on 10 %, 20 %, … 90 % of the training
dialogues and report validation perplexity for each fraction; the paper's robustness study re-runs with five seeds.

    python -m pdg_eval_methods.paa.data_efficiency --config configs/paa_smollm2.yaml --out runs/paa_data_efficiency \\
        [--fractions 0.1 0.2 ... 0.9] [--seeds 13 14 15 16 17] [--set training.max_steps=...] [--method paa]

For each seed, each fraction is a dialogue-level subset drawn with that seed (nested: the 10 % subset is inside the
20 % one), trained from scratch with that seed into ``OUT/seed-<s>/fraction-<f>/`` (a normal run folder with
``run.json``; ``OUT/fraction-<f>/`` when one seed is given); validation PPL is the token-level perplexity of the gold
responses (``ppl:paa``: exp of the mean token NLL, PAA's convention) on ``data.eval``. ``OUT/summary.json``,
``summary.md`` (mean and standard deviation over the seeds) and ``ppl_vs_fraction.png`` collect the results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Sequence

from pdg_eval.render import markdown_table, pyplot, save_figure
from pdg_eval.cli.main import exit_status
from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import create_metric
from pdg_eval.files import atomic_writer

from pdg_eval_methods.common.data import shuffled_dialogues
from pdg_eval_methods.common.method import get_method, method_config
from pdg_eval_methods.common.runner import MODEL_DIR, load_examples, train_run
from pdg_eval_methods.common.training import gold_perplexity


def nested_subsets(n_dialogues: int, fractions: Sequence[float]) -> list[int]:
    """Dialogue counts per fraction (at least one dialogue each)."""
    return [max(1, round(n_dialogues * f)) for f in fractions]


#: Figure 3's grid: 10 % to 90 % of the training data
PAPER_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def run(method_name: str, config_path: str | None, overrides: Sequence[str], fractions: Sequence[float], out: Path,
        progress: bool = True, seeds: Sequence[int] | None = None) -> dict:
    """Every (seed, fraction) run; ``seeds`` None: one run per fraction with the configuration's ``data.split_seed``
    for the subsets and its ``seed`` for training."""
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ConfigError("--fractions must be in (0, 1]")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ConfigError("--seeds must be distinct integers")
    base = method_config(method_name, config_path, overrides)
    train_all, train_info = load_examples(base.data.train, base.data.train_dialogues, "train")
    evaluation, eval_info = load_examples(base.data.eval, base.data.eval_dialogues, "eval")
    rows = []
    for seed in seeds or [None]:
        seeded = list(overrides) if seed is None else [*overrides, f"seed={seed}", f"data.split_seed={seed}"]
        split_seed = method_config(method_name, config_path, seeded).data.split_seed
        order = shuffled_dialogues(train_all, split_seed)
        for fraction, count in zip(sorted(fractions), nested_subsets(len(order), sorted(fractions))):
            keep = set(order[:count])
            folder = (out if seed is None else out / f"seed-{seed}") / f"fraction-{fraction:g}"
            subset_spec = {"subset_of": train_info["spec"], "dialogues": count, "seed": split_seed}
            config = method_config(method_name, config_path, seeded)
            record = train_run(method_name, config, folder, progress=progress,
                               examples=[e for e in train_all if e.dialogue_id in keep], data_note=subset_spec)
            method = get_method(method_name)(config)
            method.build(folder / MODEL_DIR)
            ppl = gold_perplexity(method, evaluation, config.decoding.batch_size, "paa", progress)["ppl"]
            rows.append({"seed": config.seed, "fraction": fraction, "dialogues": count,
                         "examples": record["data"]["train"]["examples"], "steps": record["summary"]["steps"],
                         "train_wall_s": round(record["summary"]["wall_s"], 1), "validation_ppl": ppl,
                         "run": str(folder)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    summary = {"method": method_name, "config": config_path, "overrides": list(overrides), "train": train_info,
               "eval": eval_info, "seeds": list(seeds) if seeds else [base.seed],
               "rows": rows, "by_fraction": by_fraction(rows), "metric": str(create_metric("ppl", "paa").signature())}
    write_summary(summary, out)
    return summary


def by_fraction(rows: Sequence[dict]) -> list[dict]:
    """Mean and sample standard deviation (None for one seed) of the validation PPL per fraction."""
    out = []
    for fraction in sorted({r["fraction"] for r in rows}):
        values = [r["validation_ppl"] for r in rows if r["fraction"] == fraction]
        out.append({"fraction": fraction, "dialogues": next(r["dialogues"] for r in rows if r["fraction"] == fraction),
                    "runs": len(values), "mean_ppl": statistics.fmean(values),
                    "std_ppl": statistics.stdev(values) if len(values) > 1 else None})
    return out


def write_summary(summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / "summary.json") as handle:
        json.dump(summary, handle, indent=1, default=str)
        handle.write("\n")
    table = markdown_table(["fraction", "dialogues", "runs", "validation PPL (mean)", "std"],
                           [[f"{r['fraction']:g}", r["dialogues"], r["runs"], f"{r['mean_ppl']:.2f}",
                             "–" if r["std_ppl"] is None else f"{r['std_ppl']:.2f}"] for r in summary["by_fraction"]],
                           right=0)
    with atomic_writer(out / "summary.md") as handle:
        handle.write(f"# Data efficiency: {summary['method']}\n\n" + table
                     + f"\nPPL: `{summary['metric']}` on {summary['eval']['examples']} validation turns; seeds "
                     + ", ".join(map(str, summary["seeds"])) + ".\n")
    fig, ax = pyplot().subplots(figsize=(5, 3.2))
    points = summary["by_fraction"]
    ax.errorbar([100 * r["fraction"] for r in points], [r["mean_ppl"] for r in points],
                yerr=[r["std_ppl"] or 0.0 for r in points], fmt="o-", capsize=3)
    ax.set_xlabel("% of training dialogues")
    ax.set_ylabel("validation PPL")
    save_figure(fig, out / "ppl_vs_fraction.png")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="paa")
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--fractions", type=float, nargs="+", default=list(PAPER_FRACTIONS),
                   help="shares of the training dialogues (default: Figure 3's 0.1 … 0.9)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="one run per seed and fraction (subset and training seed); the paper's robustness study used five")
    p.add_argument("--out", required=True)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    return exit_status(lambda: run(args.method, args.config, args.overrides, args.fractions, Path(args.out),
                                   progress=not args.quiet, seeds=args.seeds), prog="data_efficiency")


if __name__ == "__main__":
    sys.exit(main())
