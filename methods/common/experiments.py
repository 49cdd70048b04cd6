"""What the methods' figure and ablation runners share: generate once (read back or resumed after an interruption),
score with a preset, and write ``summary.json``, ``summary.md`` and a PNG of the rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pdg_eval.errors import ConfigError
from pdg_eval.files import atomic_writer

from .method import get_method
from .runner import PARTIAL_SUFFIX, generate_run


def generated(name: str, config, records: Path, checkpoint: Path, progress: bool) -> dict[str, Any]:
    """The provenance of ``records``: generated here, continued from its partial file, or read back when an earlier
    (interrupted) runner wrote it with the same checkpoint, decoding, evaluation subset and generation options."""
    provenance = records.with_name(records.name + ".run.json")
    if records.is_file() and provenance.is_file():
        kept = json.loads(provenance.read_text("utf-8"))
        options = get_method(name).generation_options
        same = (kept["checkpoint"] == str(checkpoint) and kept["config"]["decoding"] == dataclasses.asdict(config.decoding)
                and kept["config"]["data"]["eval_dialogues"] == config.data.eval_dialogues
                and all(kept["config"]["model"].get(k) == config.model[k] for k in options if k in config.model))
        if not same:
            raise ConfigError(f"{records} holds the records of another run: choose another --out")
        return kept
    resume = records.with_name(records.name + PARTIAL_SUFFIX).is_file()
    return generate_run(name, config, records, checkpoint=checkpoint, progress=progress, resume=resume)


def score(records: Path, preset: str) -> dict[str, float]:
    """``pdg-eval score RECORDS --preset PRESET``: every value of every metric, by its key."""
    from pdg_eval.cli.main import main

    out = records.with_suffix(".scores.json")
    if main(["score", str(records), "--preset", preset, "--json", str(out), "-q"]) != 0:
        raise ConfigError(f"scoring {records} failed")
    scores = json.loads(out.read_text("utf-8"))
    return {key: value for metric in scores["metrics"] for key, value in metric["values"].items()}


def write_summary(summary: dict[str, Any], out: Path, label: str, title: str, numeric: bool = False) -> None:
    """``summary.json``, a markdown table (``summary.md``) and ``<figure>.png``: one panel per score, bars over the
    rows' names, or a line over them when they are numbers (``numeric``)."""
    from pdg_eval.render import markdown_table, pyplot, save_figure

    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / "summary.json") as handle:
        json.dump(summary, handle, indent=1, default=str)
        handle.write("\n")
    keys = list(summary["rows"][0]["scores"])
    table = markdown_table([label, *keys], [[row["name"], *(f"{row['scores'][k]:.4g}" for k in keys)]
                                            for row in summary["rows"]])
    with atomic_writer(out / "summary.md") as handle:
        handle.write(f"# {title} (preset `{summary['preset']}`)\n\n{table}")
    fig, axes = pyplot().subplots(1, len(keys), figsize=(2.6 * len(keys), 2.8), squeeze=False)
    names = [str(row["name"]) for row in summary["rows"]]
    for ax, key in zip(axes[0], keys):
        values = [row["scores"][key] for row in summary["rows"]]
        if numeric:
            ax.plot([float(n) for n in names], values, "o-")
            ax.set_xlabel(label)
        else:
            ax.bar(names, values)
            ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(key, fontsize=9)
    save_figure(fig, out / f"{summary['figure']}.png")
