"""PAA's data-efficiency experiment (PAA §Experiments, Figure 3): train on 10 %, 20 %, … 100 % of the training
dialogues and report validation perplexity for each fraction.

    python -m methods.paa.data_efficiency --config configs/paa_smollm2.yaml --out runs/paa_data_efficiency \\
        --fractions 0.1 0.2 0.3 0.5 1.0 [--set training.max_steps=...] [--method paa]

Each fraction is a dialogue-level subset drawn with ``data.split_seed`` (nested: the 10 % subset is inside the 20 %
one), trained from scratch into ``OUT/fraction-<f>/`` (a normal run folder with ``run.json``); validation PPL is the
token-level perplexity of the gold responses (``ppl:paa``: exp of the mean token NLL, PAA's convention) on
``data.eval``. ``OUT/summary.json``, ``summary.md`` and ``ppl_vs_fraction.png`` collect the results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from pdg_eval.render import markdown_table, pyplot, save_figure
from pdg_eval.cli.main import exit_status
from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import create_metric
from pdg_eval.files import atomic_writer

from methods.common.data import shuffled_dialogues
from methods.common.method import get_method, method_config
from methods.common.runner import MODEL_DIR, load_examples, train_run


def nested_subsets(n_dialogues: int, fractions: Sequence[float]) -> list[int]:
    """Dialogue counts per fraction (at least one dialogue each)."""
    return [max(1, round(n_dialogues * f)) for f in fractions]


def validation_ppl(method, examples, batch_size: int, progress: bool = False) -> float:
    """PAA's PPL: exp(mean token NLL) of the gold responses (pdg-eval's ``ppl:paa``)."""
    metric = create_metric("ppl", "paa")
    stats = []
    for example, values in zip(examples, method.reference_nll(examples, batch_size, progress=progress), strict=True):
        record = example.to_record()
        record.nll = values
        stats.append(metric.item_stats(record))
    return metric.aggregate(stats)["ppl"]


def run(method_name: str, config_path: str | None, overrides: Sequence[str], fractions: Sequence[float], out: Path,
        progress: bool = True) -> dict:
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ConfigError("--fractions must be in (0, 1]")
    base = method_config(method_name, config_path, overrides)
    train_all, train_info = load_examples(base.data.train, base.data.train_dialogues, "train")
    evaluation, eval_info = load_examples(base.data.eval, base.data.eval_dialogues, "eval")
    order = shuffled_dialogues(train_all, base.data.split_seed)
    rows = []
    for fraction, count in zip(sorted(fractions), nested_subsets(len(order), sorted(fractions))):
        keep = set(order[:count])
        folder = out / f"fraction-{fraction:g}"
        subset_spec = {"subset_of": train_info["spec"], "dialogues": count, "seed": base.data.split_seed}
        config = method_config(method_name, config_path, overrides)
        record = train_run(method_name, config, folder, progress=progress,
                           examples=[e for e in train_all if e.dialogue_id in keep], data_note=subset_spec)
        method = get_method(method_name)(config)
        method.build(folder / MODEL_DIR)
        ppl = validation_ppl(method, evaluation, config.decoding.batch_size, progress)
        rows.append({"fraction": fraction, "dialogues": count, "examples": record["data"]["train"]["examples"],
                     "steps": record["summary"]["steps"], "train_wall_s": round(record["summary"]["wall_s"], 1),
                     "validation_ppl": ppl, "run": str(folder)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    summary = {"method": method_name, "config": config_path, "overrides": list(overrides), "train": train_info,
               "eval": eval_info, "rows": rows, "metric": str(create_metric("ppl", "paa").signature())}
    write_summary(summary, out)
    return summary


def write_summary(summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / "summary.json") as handle:
        json.dump(summary, handle, indent=1, default=str)
        handle.write("\n")
    table = markdown_table(["fraction", "dialogues", "examples", "steps", "validation PPL"],
                           [[f"{r['fraction']:g}", r["dialogues"], r["examples"], r["steps"], f"{r['validation_ppl']:.2f}"]
                            for r in summary["rows"]], right=0)
    with atomic_writer(out / "summary.md") as handle:
        handle.write(f"# Data efficiency: {summary['method']}\n\n" + table
                     + f"\nPPL: `{summary['metric']}` on {summary['eval']['examples']} validation turns.\n")
    fig, ax = pyplot().subplots(figsize=(5, 3.2))
    ax.plot([100 * r["fraction"] for r in summary["rows"]], [r["validation_ppl"] for r in summary["rows"]], "o-")
    ax.set_xlabel("% of training dialogues")
    ax.set_ylabel("validation PPL")
    save_figure(fig, out / "ppl_vs_fraction.png")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="paa")
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 1.0])
    p.add_argument("--out", required=True)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    return exit_status(lambda: run(args.method, args.config, args.overrides, args.fractions, Path(args.out),
                                   progress=not args.quiet), prog="data_efficiency")


if __name__ == "__main__":
    sys.exit(main())
