"""Metric-vs-human correlation at the response level (one point per item × system), as USR and GRADE report it.

Human scores are the mean over annotators of a response's Likert value (or MORPHEUS ranking score); metric values are
the per-item values of every metric of a preset that has them (:meth:`pdg_eval.metrics.base.Metric.item_values`;
corpus-level metrics such as Distinct have none). Pearson's r and Spearman's ρ get 95 % percentile CIs from item
resamples (an item's responses stay together); Kendall's τ-b is reported with its p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..metrics.base import Metric
from ..records import Record
from ..scoring import MetricResult, requested_metrics, score_records
from .analysis import ItemResampler, with_ranking_scores
from .frames import analysed, aspects_of

KEY = ["item", "system"]


def human_scores(frame: pd.DataFrame, task: str, gold: str | None = None, aspects: Sequence[str] | None = None
                 ) -> pd.DataFrame:
    """Per (item, system): the mean over annotators of each aspect (columns = aspects, in ``aspects`` order)."""
    if task == "pairwise":
        raise ConfigError("metric-vs-human correlation needs a score per response (a Likert or ranking study); "
                          "pairwise judgments only order two responses")
    data = analysed(frame, task)
    data["item"] = data["item"].astype(str)
    value = "value"
    if task == "ranking":
        data, value = with_ranking_scores(data, gold), "score"
    table = data.groupby(KEY + ["aspect"])[value].mean().unstack("aspect")
    return table[aspects_of(data, aspects)]


def record_key(record: Record) -> tuple[str, str]:
    """(item, system) of a record: ``meta.item`` (else the id) and ``system``."""
    if not record.system:
        raise ConfigError(f"{record.source}:{record.line or '?'}: record {record.id!r} has no 'system': "
                          "cannot be matched to human judgments")
    return str(record.meta.get("item", record.id)), record.system


def _column_label(metric: Metric, results: Sequence[MetricResult]) -> str:
    """``metric:variant``, plus the metric's signature options where another result has the same ``metric:variant``
    (e.g. ``p-f1:msp`` with and without ``stopwords=sklearn``)."""
    if sum(r.metric.label == metric.label for r in results) == 1:
        return metric.label
    return ",".join([metric.label, *(f"{k}={v}" for k, v in metric.signature_options().items())])


def metric_item_values(records: Iterable[Record], preset: str | None = None, metrics: Sequence[str] = (),
                       models: dict[str, str | None] | None = None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Per (item, system): every per-item value of the preset's metrics and of ``metrics`` (as
    :func:`~pdg_eval.scoring.requested_metrics` picks them: ``pdg`` when neither is given; ``models`` fills the NLI /
    Coh-Con slots), in columns ``metric:variant:key``; the signatures of the metrics used; and each requested metric
    left out with the reason (``"label: reason"``).

    Each system's records are scored on their own, as ``pdg-eval score`` would score its file; a metric that cannot
    run on every system (e.g. Hits@1 where one system has no candidate scores) is left out, and so is a corpus-level
    metric (no per-item values, e.g. Distinct over the corpus or MORPHEUS' P-Cover with its corpus idf)."""
    by_system: dict[str, list[Record]] = {}
    for record in records:
        by_system.setdefault(record_key(record)[1], []).append(record)
    frames, signatures, common = [], {}, None
    left_out: dict[str, str] = {}
    labels: dict[str, str] = {}  # column -> metric label
    for system, group in by_system.items():
        run = score_records(group, requested_metrics(preset, metrics, models), source=system)
        for note in run.skipped:
            label, _, reason = note.partition(": ")
            left_out.setdefault(label, reason)
        columns = {}
        for result in run.results:
            values = [result.metric.item_values(s) for s in result.stats]
            if any(v is None for v in values):
                left_out.setdefault(result.metric.label, "a corpus-level score (no per-item values)")
                continue
            signatures[str(result.signature)] = None
            for key in result.metric.keys:
                name = f"{_column_label(result.metric, run.results)}:{key}"
                columns[name], labels[name] = [float(v[key]) for v in values], result.metric.label
        index = pd.MultiIndex.from_tuples([record_key(r) for r in group], names=KEY)
        frames.append(pd.DataFrame(columns, index=index))
        common = list(columns) if common is None else [c for c in common if c in columns]
    for name, label in labels.items():
        if name not in (common or []):
            left_out.setdefault(label, "could not be computed for every system")
    table = pd.concat([f[common or []] for f in frames])
    if table.index.duplicated().any():
        raise ConfigError(f"two records share (item, system) {table.index[table.index.duplicated()][0]}")
    return table, list(signatures), [f"{label}: {reason}" for label, reason in left_out.items()]


#: a value at or below this is one of NLTK's floors for a sentence BLEU with a zero n-gram count (unsmoothed
#: BLEU-4 gives ~1e-155 to 1e-232 instead of 0), i.e. no overlap in practice
FLOOR = 1e-100
#: warn when at least this share of a metric's values are floors: their ranks order noise from lower n-gram orders
FLOOR_SHARE = 0.5


def floor_warnings(metrics: pd.DataFrame) -> list[str]:
    """A warning for each metric column whose values are mostly NLTK's near-zero floors (``0 < v <= FLOOR``)."""
    out = []
    for name in metrics.columns:
        values = metrics[name].to_numpy(float)
        share = float(np.mean((values > 0) & (values <= FLOOR))) if len(values) else 0.0
        if share >= FLOOR_SHARE:
            out.append(f"Warning: {100 * share:.0f}% of `{name}`'s values are NLTK's near-zero floors (0 < value "
                       f"<= {FLOOR:g}, a zero n-gram count without smoothing): its rank correlation mostly orders "
                       "those floors.")
    return out


def _rank_columns(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-2)


def _pearson_stack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every x column with every y column, for a stack of samples (R × n × ·)."""
    x = x - x.mean(axis=-2, keepdims=True)
    y = y - y.mean(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = np.einsum("...ni,...nj->...ij", x, y)
        return cov / np.sqrt(np.einsum("...ni,...ni->...i", x, x)[..., :, None]
                             * np.einsum("...nj,...nj->...j", y, y)[..., None, :])


def _bootstrap(x: np.ndarray, y: np.ndarray, rows_of_item: list[np.ndarray], resamples: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Pearson and Spearman matrices (resamples × metrics × aspects) over item resamples."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows_of_item), size=(resamples, len(rows_of_item)))
    if len({len(r) for r in rows_of_item}) == 1:  # balanced: one stacked computation
        rows = np.stack(rows_of_item)[picks].reshape(resamples, -1)
        return (_pearson_stack(x[rows], y[rows]), _pearson_stack(_rank_columns(x[rows]), _rank_columns(y[rows])))
    pearson, spearman = [], []
    for pick in picks:
        rows = np.concatenate([rows_of_item[i] for i in pick])
        pearson.append(_pearson_stack(x[rows], y[rows]))
        spearman.append(_pearson_stack(_rank_columns(x[rows]), _rank_columns(y[rows])))
    shape = (0, x.shape[1], y.shape[1])
    return (np.array(pearson).reshape(-1, *shape[1:]), np.array(spearman).reshape(-1, *shape[1:]))


@dataclass(frozen=True)
class Resampled:
    """The judged responses that have metric values (``x`` metric columns, ``y`` aspects) and their Pearson and
    Spearman matrices over item resamples (resamples × metrics × aspects); one draw serves both correlation tables."""

    aspects: list[str]
    names: list[str]
    x: np.ndarray
    y: np.ndarray
    items: list[str]
    pearson: np.ndarray
    spearman: np.ndarray
    resamples: int
    seed: int

    @property
    def interval(self):
        return ItemResampler(self.items, self.resamples, self.seed).interval


def resample_correlations(human: pd.DataFrame, metrics: pd.DataFrame, resamples: int = 1000, seed: int = 12345,
                          exclude_systems: Sequence[str] = ()) -> Resampled:
    """Join human scores and metric values and bootstrap their correlations by item (the same ``seed`` draws the same
    item resamples)."""
    joined = human.join(metrics, how="inner")
    joined = joined[~joined.index.get_level_values("system").isin(list(exclude_systems))]
    if len(joined) < 3:
        raise ConfigError(f"only {len(joined)} judged responses have metric values: check that the records' "
                          "ids/meta.item and system match the judgments")
    aspects, names = list(human.columns), list(metrics.columns)
    x, y = joined[names].to_numpy(float), joined[aspects].to_numpy(float)
    items = joined.index.get_level_values("item").astype(str)
    unique_items = sorted(set(items))
    pearson, spearman = _bootstrap(x, y, [np.flatnonzero(items == item) for item in unique_items], resamples, seed)
    return Resampled(aspects, names, x, y, unique_items, pearson, spearman, resamples, seed)


def same_metric_pairs(columns: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of metric columns that are the same metric and key with other options (``p-f1:msp:p-f1`` and
    ``p-f1:msp,stopwords=...:p-f1``): the comparisons a paired test of their correlations answers."""
    def family(column: str) -> tuple[str, str]:
        return column.split(":", 1)[0].split(",", 1)[0], column.rsplit(":", 1)[1]

    return [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:] if family(a) == family(b)]


def paired_spearman_differences(human: pd.DataFrame, metrics: pd.DataFrame, resamples: int = 1000,
                                seed: int = 12345, exclude_systems: Sequence[str] = (), *,
                                resampled: Resampled | None = None) -> pd.DataFrame:
    """Δρ = ρ(b) − ρ(a) for every :func:`same_metric_pairs` pair and aspect, with a CI and a two-sided p-value
    from the same item resamples (paired: both correlations are computed on each resample; the bootstrap test of a
    difference of dependent correlations, Wilcox 2009). ``resampled``: the draw already made for these arguments."""
    from scipy.stats import spearmanr

    r = resampled or resample_correlations(human, metrics, resamples, seed, exclude_systems)
    aspects, names, x, y, boot_s, interval = r.aspects, r.names, r.x, r.y, r.spearman, r.interval
    out = []
    for a, b in same_metric_pairs(names):
        i, k = names.index(a), names.index(b)
        for j, aspect in enumerate(aspects):
            if np.ptp(x[:, i]) == 0 or np.ptp(x[:, k]) == 0 or np.ptp(y[:, j]) == 0:
                continue  # a correlation with a constant is undefined
            delta = float(spearmanr(x[:, k], y[:, j]).statistic - spearmanr(x[:, i], y[:, j]).statistic)
            draws = boot_s[:, k, j] - boot_s[:, i, j]
            draws = draws[np.isfinite(draws)]
            p = min(1.0, 2 * min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0)))) if len(draws) else None
            out.append({"metric_a": a, "metric_b": b, "aspect": aspect, "n": len(x), "delta_spearman": delta,
                        "delta_ci": interval(np.r_[0.0, draws]), "p_bootstrap": p})
    return pd.DataFrame(out)


def metric_human_correlation(human: pd.DataFrame, metrics: pd.DataFrame, resamples: int = 1000, seed: int = 12345,
                             exclude_systems: Sequence[str] = (), *, resampled: Resampled | None = None
                             ) -> pd.DataFrame:
    """Pearson, Spearman (with item-bootstrap CIs) and Kendall τ-b of every metric column with every aspect; where
    either side is constant the correlation is undefined (NaN) and ``undefined`` says why. ``resampled``: the draw
    already made for these arguments."""
    from scipy.stats import kendalltau, pearsonr, spearmanr

    r = resampled or resample_correlations(human, metrics, resamples, seed, exclude_systems)
    aspects, names, x, y, unique_items = r.aspects, r.names, r.x, r.y, r.items
    boot_p, boot_s, interval = r.pearson, r.spearman, r.interval
    out = []
    for i, name in enumerate(names):
        for j, aspect in enumerate(aspects):
            xi, yj = x[:, i], y[:, j]
            row = {"metric": name, "aspect": aspect, "n": len(xi), "items": len(unique_items)}
            undefined = (f"the metric is constant ({xi[0]:g} on all {len(xi)} responses)" if np.ptp(xi) == 0 else
                         f"the human {aspect} scores are constant" if np.ptp(yj) == 0 else None)
            if undefined:  # a correlation with a constant is 0/0
                out.append(row | {"pearson": float("nan"), "spearman": float("nan"), "kendall": float("nan"),
                                  "undefined": undefined})
                continue
            pr, sr, kt = pearsonr(xi, yj), spearmanr(xi, yj), kendalltau(xi, yj)
            row |= {"pearson": float(pr.statistic), "pearson_p": float(pr.pvalue),
                    "pearson_ci": interval(np.r_[0.0, boot_p[:, i, j]]),
                    "spearman": float(sr.statistic), "spearman_p": float(sr.pvalue),
                    "spearman_ci": interval(np.r_[0.0, boot_s[:, i, j]]),
                    "kendall": float(kt.statistic), "kendall_p": float(kt.pvalue)}
            out.append(row)
    return pd.DataFrame(out)
