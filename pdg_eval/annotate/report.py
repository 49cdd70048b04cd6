"""``pdg-eval annotate report``: an :class:`~pdg_eval.annotate.analysis.Analysis` as Markdown, PNG plots and JSON.

The same judgments, options and seed give byte-identical files (PNG metadata carries no date or version).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..files import all_or_nothing, atomic_writer
from ..render import fmt_p, markdown_table, pyplot, save_figure
from .analysis import BT_ALPHA, Analysis

REPORT = "report.md"
SUMMARY = "report.json"
COLORS = {"win": "#4c9a5b", "tie": "#b9b9b9", "lose": "#c8553d"}
STAT_NAMES = {"cohen_kappa": "Cohen's κ", "fleiss_kappa": "Fleiss' κ", "krippendorff_alpha": "Krippendorff's α"}


def _num(value: Any, places: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{places}f}"


def _pct(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _ci(ci: Any, fmt: Callable[[Any], str] = _num) -> str:
    """``[low, high]``, or nothing where there is no interval (None, or NaN in a table column)."""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]" if isinstance(ci, (tuple, list)) else ""


# -- plots -------------------------------------------------------------------------------------------------------

def plot_win_tie_lose(table: pd.DataFrame, path: Path) -> str:
    """IDL Figure 3 style: one horizontal bar per (pair, aspect), split into Win / Tie / Lose shares."""
    plt = pyplot()
    labels = [f"{r.first} vs {r.second}: {r.aspect}" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    left = np.zeros(len(table))
    for outcome in ("win", "tie", "lose"):
        shares = table[f"{outcome}_rate"].to_numpy(float) * 100
        ax.barh(labels, shares, left=left, color=COLORS[outcome], label=outcome.capitalize())
        for y, (x0, w) in enumerate(zip(left, shares)):
            if w >= 6:
                ax.text(x0 + w / 2, y, f"{w:.1f}", ha="center", va="center", fontsize=8)
        left += shares
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of judgments")
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return save_figure(fig, path)


def plot_grouped(table: pd.DataFrame, value: str, path: Path, ylabel: str, aspects: Sequence[str],
                 systems: Sequence[str]) -> str:
    """Bars per aspect, one per system, with CI whiskers."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(aspects) * max(1, len(systems)) / 3), 3.6))
    width = 0.8 / max(1, len(systems))
    for k, system in enumerate(systems):
        rows = table[table["system"] == system].set_index("aspect").reindex(aspects)
        x = np.arange(len(aspects)) + (k - (len(systems) - 1) / 2) * width
        means = rows[value].to_numpy(float)
        low = [m - c[0] if isinstance(c, (tuple, list)) else 0 for m, c in zip(means, rows["ci"])]
        high = [c[1] - m if isinstance(c, (tuple, list)) else 0 for m, c in zip(means, rows["ci"])]
        ax.bar(x, means, width, yerr=[low, high], capsize=2, label=system)
    ax.set_xticks(np.arange(len(aspects)), aspects)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=min(3, len(systems)), frameon=False)
    return save_figure(fig, path)


def plot_intervals(table: pd.DataFrame, value: str, group: str, path: Path, xlabel: str,
                   reference: float | None = None) -> str:
    """Points with CIs, one row per (aspect, ``group``)."""
    plt = pyplot()
    labels = [f"{getattr(r, 'aspect')}: {getattr(r, group)}" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    for y, (v, ci) in enumerate(zip(table[value], table["ci"])):
        if isinstance(ci, (tuple, list)):
            ax.plot(ci, [y, y], color="#555555")
        ax.plot([v], [y], "o", color="#1f77b4")
    if reference is not None:
        ax.axvline(reference, color="#999999", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return save_figure(fig, path)


def plot_correlation(table: pd.DataFrame, path: Path) -> str:
    plt = pyplot()
    grid = table.pivot(index="metric", columns="aspect", values="spearman")
    grid = grid.reindex(columns=list(dict.fromkeys(table["aspect"])), index=list(dict.fromkeys(table["metric"])))
    fig, ax = plt.subplots(figsize=(1.1 * grid.shape[1] + 3.5, 0.3 * grid.shape[0] + 1.5))
    image = ax.imshow(grid.to_numpy(float), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=7)
    for (i, j), v in np.ndenumerate(grid.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="Spearman ρ")
    return save_figure(fig, path)


# -- markdown ------------------------------------------------------------------------------------------------------

def _section_win_tie_lose(a: Analysis, out: Path, md: list[str]) -> None:
    table = a.tables["win_tie_lose"]
    md.append("## Win / Tie / Lose (IDL §4.4.2)\n")
    md.append("Shares of all judgments (IDL's winning rate = wins / judgments, ties included), from the first "
              "system's side; *p* = exact two-sided binomial test of wins against losses (ties left out). "
              "Judgment-level tests treat an item's judgments as independent; the CIs resample items.\n")
    rows = [[r.first, r.second, r.aspect, r.items, r.judgments, _pct(r.win_rate), _ci(r.win_rate_ci, _pct),
             _pct(r.tie_rate), _pct(r.lose_rate), _pct(r.win_share_decisive), fmt_p(r.p_binomial, "–")]
            for r in table.itertuples()]
    md.append(markdown_table(["first", "second", "aspect", "items", "judgments", "win %", "win % CI", "tie %",
                              "lose %", "win % of decisive", "p"], rows, right=3))
    md.append(f"\n![Win/Tie/Lose]({plot_win_tie_lose(table, out / 'win_tie_lose.png')})\n")


def _section_scores(a: Analysis, out: Path, md: list[str]) -> None:
    if a.task == "ranking":
        table = a.tables["ranking"]
        md.append("## Ranking scores (MORPHEUS §4.3)\n")
        md.append("Each ranking of *n* responses gives (n − rank)/(n − 1); responses ranked above "
                  f"the ground truth (`{a.options.gold}`) get 1. Mean over items and annotators.\n"
                  if a.options.gold else "Each ranking of *n* responses gives (n − rank)/(n − 1) (no ground-truth "
                                         "anchor). Mean over items and annotators.\n")
        rows = [[r.system, r.aspect, r.items, r.judgments, _num(r.mean), _ci(r.ci), _num(r.mean_rank, 2)]
                for r in table.itertuples()]
        md.append(markdown_table(["system", "aspect", "items", "judgments", "score", "95% CI", "mean rank"], rows,
                                 right=2))
        figure = plot_grouped(table, "mean", out / "ranking_scores.png", "score (0-1)", a.aspects, a.systems)
        md.append(f"\n![Ranking scores]({figure})\n")
    else:
        table = a.tables["likert"]
        md.append("## Likert ratings\n")
        rows = [[r.system, r.aspect, r.items, r.judgments, _num(r.mean), _ci(r.ci), _num(r.median, 1),
                 f"{_num(r.q1, 1)}–{_num(r.q3, 1)}"] for r in table.itertuples()]
        md.append(markdown_table(["system", "aspect", "items", "judgments", "mean", "95% CI", "median", "IQR"], rows,
                                 right=2))
        figure = plot_grouped(table, "mean", out / "likert_means.png", "mean rating", a.aspects, a.systems)
        md.append(f"\n![Likert means]({figure})\n")
    tests = a.tables.get("tests")
    if tests is not None and len(tests):
        md.append("\nPaired Wilcoxon signed-rank tests on per-item means, Holm-adjusted within each aspect:\n")
        rows = [[r.aspect, r.a, r.b, r.items, _num(r.mean_a), _num(r.mean_b), fmt_p(r.p_wilcoxon, "–"), fmt_p(r.p_holm, "–")]
                for r in tests.itertuples()]
        md.append(markdown_table(["aspect", "a", "b", "items", "mean a", "mean b", "p", "p (Holm)"], rows, right=3))


def _section_bradley_terry(a: Analysis, out: Path, md: list[str]) -> None:
    table = a.tables["bradley_terry"]
    md.append("## Bradley–Terry strengths\n")
    pairs = "rankings give every pair of responses" if a.task == "ranking" else "a tie is half a win each way"
    md.append("Log-strengths (centred: 0 = an average system), fitted with `choix.ilsr_pairwise_dense` "
              f"(alpha {BT_ALPHA}); {pairs}. CIs refit the model on each item resample.\n")
    rows = [[r.system, r.aspect, _num(r.strength), _ci(r.ci), f"{r.comparisons:g}", _pct(r.win_share)]
            for r in table.itertuples()]
    md.append(markdown_table(["system", "aspect", "strength", "95% CI", "comparisons", "win %"], rows, right=2))
    figure = plot_intervals(table, "strength", "system", out / "bradley_terry.png", "log-strength", 0.0)
    md.append(f"\n![Bradley-Terry]({figure})\n")


def _section_position(a: Analysis, out: Path, md: list[str]) -> None:
    table = a.tables.get("position_bias")
    md.append("## Position bias audit\n")
    if table is None:
        md.append("Display positions are unknown for these judgments.\n")
        return
    if a.task == "pairwise":
        md.append("Share of decisive judgments that chose the response shown first (A); *p* = exact binomial test "
                  "against 1/2.\n")
        rows = [[r.aspect, r.judgments, r.decisive, _pct(r.left_share), fmt_p(r.p_binomial, "–")] for r in table.itertuples()]
        md.append(markdown_table(["aspect", "judgments", "decisive", "A chosen %", "p"], rows))
        per = a.tables["position_bias_annotators"]
        md.append("\nPer annotator:\n")
        rows = [[r.annotator, r.judgments, r.decisive, _pct(r.left_share), fmt_p(r.p_binomial, "–")] for r in per.itertuples()]
        md.append(markdown_table(["annotator", "judgments", "decisive", "A chosen %", "p"], rows))
        return
    value = "score" if a.task == "ranking" else "rating"
    md.append(f"Mean {value} by the position the response was shown in; *p* = Kruskal–Wallis test across "
              "positions.\n")
    positions = [c for c in table.columns if c.startswith("mean@")]
    rows = [[r["aspect"], r["judgments"], *[_num(r[c]) for c in positions], fmt_p(r["p_kruskal"], "–")]
            for _, r in table.iterrows()]
    md.append(markdown_table(["aspect", "judgments", *[f"position {c[5:]}" for c in positions], "p"], rows))


def _section_agreement(a: Analysis, md: list[str]) -> None:
    md.append("## Agreement\n")
    md.append("Units are what was rated (pairwise: an item, each answer oriented to the pair's first system; "
              "ranking/Likert: an item × system). Cohen's κ: mean over annotator pairs, quadratic weights unless the "
              "level is nominal; Fleiss' κ: values as categories (MORPHEUS: ranks as categories); Krippendorff's α: "
              "at the level shown. 95% CIs resample units.\n")
    rows = []
    for aspect in a.aspects:
        stats = {s.statistic: s for s in a.agreement.get(aspect, [])}
        cells = []
        for name in STAT_NAMES:
            stat = stats.get(name)
            cells.append("–" if stat is None else f"{_num(stat.value)} {_ci(stat.ci)}".strip())
        any_stat = next(iter(stats.values()), None)
        cohen = stats.get("cohen_kappa")
        rows.append([aspect, a.levels[aspect], cohen.options["weights"] if cohen else "–", *cells,
                     any_stat.n_units if any_stat else "–", any_stat.n_raters if any_stat else "–"])
    md.append(markdown_table(["aspect", "level", "κ weights", *STAT_NAMES.values(), "units", "raters"], rows,
                             right=3))


def _section_correlation(a: Analysis, out: Path, md: list[str]) -> None:
    table = a.correlation
    md.append("## Metric vs human correlation\n")
    md.append("Spearman's ρ [95% CI] at the response level (one point per item × system; human score = mean over "
              "annotators); CIs resample items. Pearson's r and Kendall's τ-b with p-values are in `report.json`. "
              + " ".join(a.correlation_notes) + "\n")
    aspects = list(dict.fromkeys(table["aspect"]))
    n = int(table["n"].iloc[0]) if len(table) else 0
    rows, undefined = [], {}
    for metric, group in table.groupby("metric", sort=False):
        by_aspect = group.set_index("aspect")
        cells = []
        for aspect in aspects:
            why = by_aspect.at[aspect, "undefined"] if "undefined" in by_aspect else None
            if isinstance(why, str):
                undefined.setdefault(f"`{metric}`: {why}", []).append(aspect)
                cells.append("undefined")
                continue
            ci = by_aspect.at[aspect, "spearman_ci"] if "spearman_ci" in by_aspect else None
            cells.append(f"{_num(by_aspect.at[aspect, 'spearman'], 2)} {_ci(ci, lambda v: _num(v, 2))}".strip())
        rows.append([metric, *cells])
    md.append(f"{n} responses.\n")
    md.append(markdown_table(["metric", *aspects], rows))
    for why, where in undefined.items():
        md.append(f"- Undefined correlation ({', '.join(where) if len(where) < len(aspects) else 'every aspect'}): "
                  f"{why}.")
    for line in a.correlation_left_out:
        label, _, reason = line.partition(": ")
        md.append(f"- Left out of the table: `{label}`: {reason}.")
    md.append(f"\n![Correlation]({plot_correlation(table, out / 'correlation.png')})\n")
    differences = a.correlation_differences
    if differences is not None and len(differences):
        md.append("### Same metric, other options: paired difference of Spearman's ρ\n")
        md.append("Δρ = ρ(b) − ρ(a) on the same responses; CI and two-sided p from the same item resamples (both "
                  "correlations computed on each resample).\n")
        md.append(markdown_table(["a", "b", "aspect", "Δρ [95% CI]", "p"], [
            [f"`{r.metric_a}`", f"`{r.metric_b}`", r.aspect,
             f"{_num(r.delta_spearman, 3)} {_ci(r.delta_ci, lambda v: _num(v, 3))}".strip(),
             "–" if r.p_bootstrap is None else _num(r.p_bootstrap, 3)] for r in differences.itertuples()]))


def render(a: Analysis, out: Path) -> str:
    md = [f"# Human evaluation: {a.name}\n"]
    c = a.counts
    md.append(f"{a.task.capitalize()} study: {c['items']} items, {c['systems']} systems ({', '.join(a.systems)}), "
              f"{c['annotators']} annotators, {c['judgments']} judgments analysed"
              + (f" ({c['check_judgments_left_out']} attention-check judgments left out)"
                 if c["check_judgments_left_out"] else "") + f"; aspects: {', '.join(a.aspects)}.\n")
    for note in a.notes:
        md.append(f"- Note: {note}")
    if a.notes:
        md.append("")
    checks = a.tables.get("checks")
    if checks is not None:
        md.append("## Attention checks\n")
        rows = [[r.annotator, f"{r.checks_passed} / {r.checks_answered}"] for r in checks.itertuples()]
        md.append("Instructed-response items (their judgments are left out of every statistic below).\n")
        md.append(markdown_table(["annotator", "check answers passed"], rows))
    if a.task == "pairwise":
        _section_win_tie_lose(a, out, md)
    else:
        _section_scores(a, out, md)
    if "bradley_terry" in a.tables:
        _section_bradley_terry(a, out, md)
    _section_position(a, out, md)
    _section_agreement(a, md)
    if a.correlation is not None:
        _section_correlation(a, out, md)
    md.append("## Signatures\n")
    md.append(f"- statistics: `{a.options.signature}`")
    for aspect in a.aspects:
        for stat in a.agreement.get(aspect, []):
            md.append(f"- {aspect}, {STAT_NAMES[stat.statistic]}: `{stat.signature}`")
    for sig in a.metric_signatures:
        md.append(f"- metric: `{sig}`")
    return "\n".join(md) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def summary(a: Analysis) -> dict[str, Any]:
    """Every number of the report as JSON."""
    tables = {name: [{k: _jsonable(v) for k, v in row.items()} for row in table.to_dict("records")]
              for name, table in a.tables.items()}
    return {"name": a.name, "task": a.task, "aspects": a.aspects, "systems": a.systems, "counts": a.counts,
            "levels": a.levels, "notes": a.notes, "signature": a.options.signature, "tables": tables,
            "agreement": {aspect: [s.to_json() for s in stats] for aspect, stats in a.agreement.items()},
            "correlation": None if a.correlation is None else
            [{k: _jsonable(v) for k, v in row.items()} for row in a.correlation.to_dict("records")],
            "correlation_left_out": a.correlation_left_out,
            "correlation_differences": None if a.correlation_differences is None else
            [{k: _jsonable(v) for k, v in row.items()} for row in a.correlation_differences.to_dict("records")]}


def write_report(a: Analysis, out: str | Path) -> Path:
    """Write ``report.md``, ``report.json`` and the PNG plots into ``out``; returns the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with all_or_nothing():  # the plots, report.json and report.md together, or none of them
        text = render(a, out)
        with atomic_writer(out / SUMMARY) as handle:
            json.dump(summary(a), handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        with atomic_writer(out / REPORT) as handle:
            handle.write(text)
    return out / REPORT
