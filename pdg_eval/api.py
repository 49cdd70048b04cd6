"""The Python API: what ``pdg-eval score`` and ``pdg-eval compare`` compute, as objects for notebooks and scripts
(``pdg_eval.compare`` is the module of the comparison itself, hence ``compare_systems``).

    >>> import pdg_eval
    >>> scores = pdg_eval.score("preds.jsonl", preset="pdg")
    >>> scores.values["bleu:sacrebleu:bleu-4"], scores.signatures["bleu:sacrebleu:bleu-4"]
    >>> scores.to_pandas()                     # one row per metric key, with its signature
    >>> pdg_eval.compare_systems({"ours": "ours.jsonl", "base": "base.jsonl"}, baseline="base").to_pandas()

Values are on the printed scale (the papers' percentages where they print them; the signature's ``scale`` says
which), exactly as the command line prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .compare import Comparison, SystemRun
from .compare import compare as compare_runs
from .errors import ConfigError
from .records import Record, record_from_dict
from .report import per_item_table, score_rows, to_json, value_names
from .scoring import ScoreRun, requested_metrics, score_file, score_records
from .tables import render

if TYPE_CHECKING:
    import pandas as pd

#: the Hugging Face ``evaluate`` module: ``evaluate.load(EVALUATE_MODULE, config_name=PRESET)``
EVALUATE_MODULE = str(Path(__file__).resolve().parent / "hf_evaluate" / "pdg_eval.py")
#: what :func:`score` takes: a predictions file (any format ``pdg-eval score`` reads), records, or record dicts
Data = str | Path | Iterable[Record | Mapping[str, Any]]


@dataclass
class Scores:
    """One system's scores (:class:`~pdg_eval.scoring.ScoreRun` underneath, ``.run``)."""

    run: ScoreRun
    name: str = "system"

    @property
    def values(self) -> dict[str, float]:
        """``{"metric:variant:key": value}`` on the printed scale."""
        return {name: r.scores[key] * r.metric.display_factor for name, r, key in value_names(self.run)}

    @property
    def signatures(self) -> dict[str, str]:
        """The signature of each value (same keys as :attr:`values`)."""
        return {name: str(r.signature) for name, r, key in value_names(self.run)}

    @property
    def skipped(self) -> list[str]:
        """Metrics that could not run on these records, with the reason."""
        return list(self.run.skipped)

    @property
    def warnings(self) -> list[str]:
        return list(self.run.warnings)

    def per_item(self) -> "pd.DataFrame":
        """One row per item (``id``), one column per sentence-level value, on the stored scale (0–1 where the value
        is a share)."""
        import pandas as pd

        header, rows = per_item_table(self.run)
        return pd.DataFrame(rows, columns=header)

    def to_pandas(self) -> "pd.DataFrame":
        """Tidy: one row per metric key (system, metric, variant, key, value, higher_is_better, signature)."""
        import pandas as pd

        return pd.DataFrame([{"system": self.name, **{k: row[k] for k in ("metric", "variant", "key")},
                              "value": row["display"], "higher_is_better": row["higher_is_better"],
                              "signature": row["signature"]} for row in score_rows(self.run)])

    def to_json(self, item_stats: bool = True) -> dict[str, Any]:
        """What ``pdg-eval score --json`` writes."""
        return to_json(self.run, item_stats)


@dataclass
class ComparisonResult:
    """Systems compared on every metric key (:class:`~pdg_eval.compare.Comparison` underneath, ``.comparison``)."""

    comparison: Comparison

    @property
    def values(self) -> dict[str, dict[str, float]]:
        """``{system: {"metric:variant:key": value}}`` on the printed scale."""
        cmp = self.comparison
        return {name: {col.label: cmp.cells[(name, j)].value * col.display_factor for j, col in enumerate(cmp.columns)}
                for name in cmp.systems}

    @property
    def signatures(self) -> dict[str, str]:
        return {col.label: col.signature for col in self.comparison.columns}

    def to_pandas(self) -> "pd.DataFrame":
        """Tidy: one row per system x metric key, with the CI, the test against the baseline and the signature."""
        import pandas as pd

        cmp, rows = self.comparison, []
        for j, col in enumerate(cmp.columns):
            for name in cmp.systems:
                cell = cmp.cells[(name, j)]
                low, high = (v * col.display_factor for v in cell.ci) if cell.ci else (None, None)
                rows.append({"system": name, "baseline": name == cmp.baseline, "metric": col.label.rsplit(":", 1)[0],
                             "key": col.key, "value": cell.value * col.display_factor, "ci_low": low,
                             "ci_high": high, "p": cell.p, "p_adjusted": cell.p_adjusted,
                             "significant": cell.significant, "group": cell.group,
                             "higher_is_better": col.higher_is_better, "signature": col.signature})
        return pd.DataFrame(rows)

    def table(self, fmt: str = "markdown") -> str:
        """The table ``pdg-eval compare -f FMT`` prints (text, markdown, latex, json)."""
        return render(self.comparison, fmt)


def score(data: Data, preset: str | None = None, metrics: Sequence[str] = (), *, name: str = "system",
          fmt: str = "auto", dataset: str | Path | None = None, tokenizer: str | None = None,
          models: Mapping[str, str] | None = None) -> Scores:
    """Score one system: ``data`` is a predictions file, or records (:class:`~pdg_eval.records.Record` or dicts in
    the record schema). ``preset`` and ``metrics`` (spec strings) as ``--preset`` / ``-m``; without either, the
    ``pdg`` preset. ``models``: ``{"nli": ..., "cohcon": ...}`` as ``--nli-model`` / ``--cohcon-model``."""
    specs = requested_metrics(preset, list(metrics), models=dict(models or {}))
    if isinstance(data, (str, Path)):
        run, _ = score_file(data, specs, fmt, dataset=dataset, tokenizer=tokenizer)
    else:
        records = (r if isinstance(r, Record) else record_from_dict(r, "<records>", k + 1)
                   for k, r in enumerate(data))
        run = score_records(records, specs, tokenizer=tokenizer)
    return Scores(run, name)


def compare_systems(systems: Mapping[str, Data | Scores], baseline: str | None = None, preset: str | None = None,
            metrics: Sequence[str] = (), *, test: str = "ar", resamples: int = 10_000, seed: int = 12345,
            ci_resamples: int = 1000, ceilings: Sequence[str] = (), **score_options: Any) -> ComparisonResult:
    """Compare systems (``{name: data or Scores}``) on the same items: values, bootstrap CIs, paired tests against
    ``baseline`` (default: the first), Holm-corrected, and tie groups, as ``pdg-eval compare``."""
    if len(systems) < 2:
        raise ConfigError("compare needs at least two systems")
    runs = []
    for system, data in systems.items():
        scores = data if isinstance(data, Scores) else score(data, preset, metrics, name=system, **score_options)
        runs.append(SystemRun.from_score_run(system, scores.run))
    return ComparisonResult(compare_runs(runs, baseline, test, resamples, seed, ci_resamples=ci_resamples,
                                         ceilings=ceilings))
