"""Metric protocol: one item → sufficient statistics; statistics → scores; a signature.

The shape follows sacreBLEU's ``Metric`` (mjpost/sacrebleu ``metrics/base.py``): because every
metric can re-aggregate any subset (or resample with repeats) of its per-item statistics,
significance tests and bootstrap intervals are exact, including for corpus-level metrics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .. import __version__
from ..errors import ConfigError
from ..records import Record
from ..tokenize import Tokenizer, get_tokenizer

Stats = Any  # JSON-serialisable per-item statistics (numbers or lists of numbers)


@dataclass(frozen=True)
class Signature:
    """Everything needed to reproduce a number (sacreBLEU-style ``key:value|...`` string)."""

    metric: str
    variant: str
    tokenizer: str
    scale: str
    options: tuple[tuple[str, str], ...] = ()
    preset: str | None = None
    version: str = __version__

    def __str__(self) -> str:
        parts = [f"{self.metric}:{self.variant}", f"tok:{self.tokenizer}"]
        parts += [f"{k}:{v}" for k, v in self.options]
        parts += [f"scale:{self.scale}"]
        if self.preset:
            parts.append(f"preset:{self.preset}")
        parts.append(f"version:pdg-eval-{self.version}")
        return "|".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "variant": self.variant, "tokenizer": self.tokenizer,
                "options": dict(self.options), "scale": self.scale, "preset": self.preset,
                "version": self.version, "string": str(self)}


@dataclass(frozen=True)
class VariantInfo:
    """What a variant is, which tokenizer it uses by default, and where the convention comes from."""

    description: str
    tokenizer: str | None = "whitespace"  # None: the variant fixes its own text handling, named by text_units
    source: str = ""
    bug_compatible: bool = False
    text_units: str = "none"


class Metric(ABC):
    """Base class. Subclasses set ``name``, ``variants``, ``keys`` and implement the two steps."""

    name: ClassVar[str]
    variants: ClassVar[dict[str, VariantInfo]]
    default_variant: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    #: Record fields the metric needs beyond ``response`` (e.g. ``candidate_scores``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Multiplier from stored values to printed values (papers print percentages).
    display_factor: ClassVar[float] = 100.0
    #: True when the reference library itself reports x100 (sacreBLEU, multi-bleu.perl).
    native_x100: ClassVar[bool] = False
    #: Allowed options and their defaults; values arrive as strings from the CLI.
    option_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, variant: str | None = None, tokenizer: str | None = None, **options: Any):
        self.variant = variant or self.default_variant
        if self.variant not in self.variants:
            raise ConfigError(f"unknown variant {self.variant!r} of {self.name}; "
                              f"choose from {', '.join(self.variants)}")
        info = self.variants[self.variant]
        unknown = set(options) - set(self.option_defaults)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} for {self.name}; "
                              f"known: {', '.join(self.option_defaults) or 'none'}")
        self.options = {**self.option_defaults, **{k: v for k, v in options.items() if v is not None}}
        if info.tokenizer is None:
            if tokenizer:
                raise ConfigError(f"{self.name}:{self.variant} fixes its own tokenization; drop tok={tokenizer}")
            self.tokenizer: Tokenizer | None = None
        else:
            self.tokenizer = get_tokenizer(tokenizer or info.tokenizer)
        self.preset: str | None = None
        self.setup()

    # -- subclass hooks -------------------------------------------------------------------------
    def setup(self) -> None:
        """Validate/convert options after construction."""

    @property
    @abstractmethod
    def keys(self) -> list[str]:
        """Names of the numbers this metric reports (e.g. ``bleu-1`` … ``bleu-4``)."""

    @abstractmethod
    def item_stats(self, record: Record) -> Stats:
        """Sufficient statistics of one record."""

    @abstractmethod
    def aggregate(self, stats: Sequence[Stats]) -> dict[str, float]:
        """Scores from the statistics of any multiset of records."""

    def items_stats(self, records: Sequence[Record]) -> list[Stats]:
        """Statistics of a chunk of records; model-based metrics override this to batch."""
        return [self.item_stats(r) for r in records]

    def item_values(self, stats: Stats) -> dict[str, float] | None:
        """Per-item scores for sentence-level metrics (None for corpus-level ones)."""
        return None

    def signature_options(self) -> dict[str, Any]:
        return dict(self.options)

    # -- vectorised resampling (pdg_eval.resampling) ----------------------------------------------
    def linear_matrix(self, stats: Sequence[Stats]):
        """Items x columns matrix whose weighted column sums determine the scores (``scores_from_sums``), or None.

        Default: sentence-level metrics whose score is the mean of the per-item values (items whose
        ``item_values`` is None, e.g. skipped by ROUGE's guards, are left out of the mean, as ``aggregate`` does).
        """
        import numpy as np

        values = [self.item_values(s) for s in stats]
        if all(v is None for v in values):
            return None
        keys = self.keys
        return np.array([[float(v[k]) for k in keys] + [1.0] if v is not None else [0.0] * len(keys) + [0.0]
                         for v in values], dtype=np.float64)

    def scores_from_sums(self, sums):
        """Scores for each row of weighted column sums of :meth:`linear_matrix` (default: the means)."""
        import numpy as np

        count = sums[:, -1]
        safe = np.where(count > 0, count, 1.0)
        return {k: np.where(count > 0, sums[:, i] / safe, 0.0) for i, k in enumerate(self.keys)}

    def bootstrap_bias(self) -> str | None:
        """Why resampling with replacement misstates this metric (None: it does not). AR never duplicates items."""
        return None

    def resampling_form(self, stats_a: Sequence[Stats], stats_b: Sequence[Stats]):
        """A vectorised form of this metric for the pair (:mod:`pdg_eval.resampling`); None: re-aggregate."""
        from ..resampling import LinearForm

        matrix_a = self.linear_matrix(stats_a)
        if matrix_a is None:
            return None
        matrix_b = self.linear_matrix(stats_b)
        return None if matrix_b is None else LinearForm(self, matrix_a, matrix_b)

    # -- shared ---------------------------------------------------------------------------------
    def tok(self, text: str) -> tuple[str, ...]:
        assert self.tokenizer is not None
        return self.tokenizer(text)

    @property
    def spec(self) -> str:
        """A spec string that rebuilds this exact metric with :func:`build_metric`."""
        parts = [f"{self.name}:{self.variant}"]
        parts += [f"{k}={_fmt(v)}" for k, v in sorted(self.options.items()) if v is not None]
        if self.tokenizer is not None:
            parts.append(f"tok={self.tokenizer.name}")
        return ",".join(parts)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.variant}"

    @property
    def scale_label(self) -> str:
        """Unit of the printed value: x100 (percent) or x1."""
        return "x100" if self.display_factor == 100 or self.native_x100 else "x1"

    def signature(self) -> Signature:
        tok = self.tokenizer.signature if self.tokenizer is not None else self.variants[self.variant].text_units
        scale = self.scale_label
        opts = tuple((k, _fmt(v)) for k, v in sorted(self.signature_options().items()))
        return Signature(self.name, self.variant, tok, scale, opts, self.preset)


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    return str(value)


# -- provenance of model-filled record fields (Hits@1's candidate_scores, PPL's nll) ------------
def note_scorer(seen: set[tuple[str, ...]], record: Record, field: str) -> None:
    """Remember which scorer filled ``field`` (``pdg-eval rank`` / ``ppl`` record it in ``meta[field]``)."""
    info = record.meta.get(field)
    if isinstance(info, dict) and info.get("by"):
        seen.add((str(info["by"]), str(info.get("score", "")), str(info.get("prompt", ""))))
    else:
        seen.add(("unrecorded", "", ""))


def scorer_provenance(seen: set[tuple[str, ...]]) -> dict[str, str]:
    """Signature entries naming the model behind model-filled fields; ``by:mixed`` when records disagree."""
    if not seen or seen == {("unrecorded", "", "")}:
        return {}
    if len(seen) > 1:
        return {"by": "mixed"}
    by, score, prompt = next(iter(seen))
    return {k: v for k, v in (("by", by), ("lm_score", score), ("prompt", prompt)) if v}


# -- registry (in the spirit of lm-evaluation-harness' ``register_metric``) -------------------
METRICS: dict[str, type[Metric]] = {}


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: make a metric available by its ``name``."""
    if cls.name in METRICS:
        raise ValueError(f"metric {cls.name!r} registered twice")
    METRICS[cls.name] = cls
    return cls


def parse_metric_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Parse ``name[:variant][,key=value...]`` (``tok=`` selects the tokenizer)."""
    head, *opt_parts = spec.split(",")
    name, _, variant = head.partition(":")
    options: dict[str, str] = {}
    last_key: str | None = None
    for part in opt_parts:
        key, eq, value = part.partition("=")
        if not eq and last_key is not None:  # list value, e.g. grams=2,3,4
            options[last_key] += "," + part.strip()
            continue
        if not eq or not key:
            raise ConfigError(f"bad option {part!r} in metric spec {spec!r}: expected key=value")
        last_key = key.strip()
        options[last_key] = value.strip()
    return name.strip(), (variant.strip() or None), options


def create_metric(name: str, variant: str | None = None, options: dict[str, str] | None = None) -> Metric:
    """Instantiate a registered metric; ``options['tok']`` selects the tokenizer."""
    from . import load_all

    load_all()
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(sorted(METRICS))}")
    options = dict(options or {})
    tokenizer = options.pop("tok", None)
    return METRICS[name](variant, tokenizer, **options)


def build_metric(spec: str) -> Metric:
    """Instantiate a metric from a spec string such as ``bleu:nltk_sentence_avg,tok=treebank``."""
    return create_metric(*parse_metric_spec(spec))


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean as the reference scripts compute it (``sum / len``); 0.0 for no items."""
    return sum(values) / len(values) if values else 0.0


__all__ = ["Metric", "Signature", "VariantInfo", "METRICS", "register_metric", "build_metric", "create_metric",
           "parse_metric_spec", "mean", "Stats", "note_scorer", "scorer_provenance"]
