"""Rendering a :class:`~pdg_eval.scoring.ScoreRun`: text table, JSON, per-item CSV; atomic writes."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError
from .files import atomic_writer
from .render import text_table
from .scoring import ScoreRun


def display_value(value: float | None, factor: float) -> str:
    """A stored value on the printed scale, two decimals (scientific for tiny non-zero values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    shown = value * factor
    if shown != 0 and abs(shown) < 0.005:
        return f"{shown:.2e}"
    return f"{shown:.2f}"


def score_rows(run: ScoreRun) -> list[dict[str, Any]]:
    """One row per reported number, with its signature."""
    rows = []
    for result in run.results:
        metric = result.metric
        sig = result.signature
        for key in metric.keys:
            value = result.scores[key]
            rows.append({"metric": metric.name, "variant": metric.variant, "key": key,
                         "tokenizer": sig.tokenizer, "value": value,
                         "display": value * metric.display_factor, "display_scale": metric.display_factor,
                         "scale": metric.scale_label,
                         "higher_is_better": metric.higher_is_better, "signature": str(sig)})
    return rows


def format_table(run: ScoreRun) -> str:
    """Readable table: values x100 where the papers print percentages (stated in the column)."""
    rows = score_rows(run)
    sigs: list[str] = []
    for row in rows:
        if row["signature"] not in sigs:
            sigs.append(row["signature"])
    header = ("metric", "variant", "tok", "scale", "value", "sig")
    body = []
    for row in rows:
        scale = row["scale"]
        arrow = "" if row["higher_is_better"] else " (lower better)"
        body.append((row["key"] + arrow, row["variant"], row["tokenizer"].split("@")[0], scale,
                     display_value(row["value"], row["display_scale"]), f"[{sigs.index(row['signature']) + 1}]"))
    out = io.StringIO()
    preset = f", preset {run.preset}" if run.preset else ""
    out.write(f"pdg-eval {__version__}: {run.source}, {run.n_items:,} items{preset}\n\n")
    out.write(text_table(header, body, right={4}))
    out.write("\nsignatures:\n")
    for i, sig in enumerate(sigs, start=1):
        out.write(f"  [{i}] {sig}\n")
    for note in run.skipped:
        out.write(f"skipped: {note}\n")
    return out.getvalue()


def to_json(run: ScoreRun, item_stats: bool = True) -> dict[str, Any]:
    """Values, signatures and (optionally) per-item sufficient statistics keyed by signature, so
    significance tests can re-aggregate any resample without re-tokenising."""
    doc: dict[str, Any] = {
        "pdg_eval_version": __version__, "source": run.source, "n_items": run.n_items, "preset": run.preset,
        "scores": score_rows(run),
        "metrics": [{"name": r.metric.name, "variant": r.metric.variant, "spec": r.metric.spec, "keys": r.metric.keys,
                     "values": r.scores, "higher_is_better": r.metric.higher_is_better,
                     "scored_against": list(r.metric.scored_against()),
                     "signature": r.signature.to_json()} for r in run.results],
        "skipped": run.skipped, "warnings": run.warnings,
    }
    if item_stats:
        doc["items"] = {"ids": run.ids, "stats": {str(r.signature): r.stats for r in run.results},
                        "fingerprints": run.fingerprints}
    return doc


def write_json(run: ScoreRun, path: str | Path, item_stats: bool = True) -> None:
    with atomic_writer(path) as handle:
        json.dump(to_json(run, item_stats), handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")


def value_names(run: ScoreRun) -> list[tuple[str, Any, str]]:
    """``(name, result, key)`` for every reported number: ``metric:variant:key``, or ``spec:key`` where the run holds
    one convention twice (e.g. with two tokenizers)."""
    labels = [r.metric.label for r in run.results]
    return [(f"{r.metric.label if labels.count(r.metric.label) == 1 else r.metric.spec}:{key}", r, key)
            for r in run.results for key in r.metric.keys]


def per_item_table(run: ScoreRun) -> tuple[list[str], list[list[Any]]]:
    """Per-item values of the sentence-level metrics: the columns (``id``, then :func:`value_names`) and one row per
    item (None where a guard skipped the item). Corpus-level metrics have no per-item value and are left out."""
    columns = []
    for name, result, key in value_names(run):
        if any(result.metric.item_values(s) is not None for s in result.stats):
            columns.append((name, result, key))
    rows = []
    for i, item_id in enumerate(run.ids):
        row: list[Any] = [item_id]
        for _, result, key in columns:
            values = result.metric.item_values(result.stats[i])
            row.append(None if values is None else float(values[key]))
        rows.append(row)
    return ["id", *[c[0] for c in columns]], rows


def write_per_item_csv(run: ScoreRun, path: str | Path) -> list[str]:
    """:func:`per_item_table` as CSV; returns the value columns written."""
    header, rows = per_item_table(run)
    with atomic_writer(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row[0], *("" if v is None else repr(v) for v in row[1:])])
    return header[1:]


def plot_per_item(run: ScoreRun, path: str | Path) -> list[str]:
    """Box plots of the per-item values of every sentence-level metric key (printed scale; the diamond is the mean,
    the score); returns the keys drawn."""
    from .render import pyplot, save_figure

    header, rows = per_item_table(run)
    factors = {name: r.metric.display_factor for name, r, _ in value_names(run)}
    names = header[1:]
    if not names:
        raise ConfigError("--plot: no sentence-level metric among those scored (corpus-level values have no "
                          "per-item distribution)")
    data = [[row[k + 1] * factors[name] for row in rows if row[k + 1] is not None] for k, name in enumerate(names)]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.32 * len(names)))
    ax.boxplot(data[::-1], orientation="horizontal", showmeans=True, meanprops={"marker": "D", "markersize": 4}, widths=0.6,
               flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(names) + 1), names[::-1], fontsize=7)
    ax.set_xlabel("per-item value (printed scale); diamond: mean")
    ax.set_title(f"{Path(run.source).name}: {run.n_items:,} items", fontsize=8, loc="left")
    save_figure(fig, Path(path))
    return names
