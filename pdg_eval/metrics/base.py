"""Metric protocol: one item → sufficient statistics; statistics → scores; a signature.

The shape follows sacreBLEU's ``Metric`` (mjpost/sacrebleu ``metrics/base.py``): because every
metric can re-aggregate any subset (or resample with repeats) of its per-item statistics,
significance tests and bootstrap intervals are exact, including for corpus-level metrics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .. import __version__
from ..errors import ConfigError
from ..records import Record
from ..tokenize import Tokenizer, get_tokenizer, with_parlai_normalization
from ..values import read_int

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


#: Text handling of a variant without a tokenizer (``VariantInfo.text_units``), as errors explain it.
TEXT_UNITS = {"none": "it reads no text", "model": "its model tokenizes the text",
              "raw-chars": "it compares raw characters, as published"}


@dataclass(frozen=True)
class VariantInfo:
    """What a variant is, which tokenizer it uses by default, the options it takes, and where it comes from."""

    description: str
    tokenizer: str | None = "whitespace"  # None: the variant fixes its own text handling, named by text_units
    source: str = ""
    bug_compatible: bool = False
    text_units: str = "none"
    #: the options this variant takes, with their defaults as text (None: unset, i.e. required or set in ``setup``)
    options: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def splits_text(self) -> bool:
        """Whether the variant splits text into units itself (False: it reads no text, or a model tokenizes it)."""
        return self.tokenizer is not None or self.text_units not in ("none", "model")


@dataclass(frozen=True)
class OptionType:
    """How a metric option's text is read: ``read`` returns the value or raises ValueError; ``accepts`` is shown
    in errors."""

    accepts: str
    read: Callable[[str], Any]


def choice_option(*values: str) -> OptionType:
    """One of ``values``."""
    def read(text: str) -> str:
        if text not in values:
            raise ValueError(f"expected {' or '.join(values)}, got {text!r}")
        return text

    return OptionType("|".join(values), read)


def int_option(low: int, high: int | None = None) -> OptionType:
    """An integer in ``[low, high]``."""
    return OptionType(f"{low}..{high}" if high is not None else f"INT>={low}", lambda text: read_int(text, low, high))


def int_list_option(low: int, high: int) -> OptionType:
    """Comma-separated integers in ``[low, high]`` (e.g. ``grams=2,3,4``), kept as a tuple."""
    return OptionType(f"{low}..{high},...", lambda text: tuple(read_int(t, low, high) for t in text.split(",")))


def text_option(accepts: str) -> OptionType:
    """Any non-empty text (a file, a model name, a device)."""
    return OptionType(accepts, str)


#: How model-based metrics read their runtime options (``Metric.runtime_options``).
RUNTIME_OPTION_TYPES = {"batch_size": int_option(1), "device": text_option("auto|cpu|cuda[:N]")}


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
    #: How each option is read; which variants take it, and its default, is in ``VariantInfo.options``.
    option_types: ClassVar[dict[str, OptionType]] = {}
    #: Options every variant takes that change how the metric runs, not its number (batch size, device), with
    #: their defaults; left out of ``spec`` and the signature.
    runtime_options: ClassVar[dict[str, str]] = {}

    def __init__(self, variant: str | None = None, tokenizer: str | None = None, **options: Any):
        self.variant = variant or self.default_variant
        if self.variant not in self.variants:
            raise ConfigError(f"unknown variant {self.variant!r} of {self.name}; "
                              f"choose from {', '.join(self.variants)}")
        info = self.variants[self.variant]
        self.options = self._read_options(info, {k: v for k, v in options.items() if v is not None})
        self.tokenizer: Tokenizer | None = self._variant_tokenizer(info, tokenizer)
        self.preset: str | None = None
        self.setup()

    # -- options and tokenizer ------------------------------------------------------------------
    def allowed_options(self) -> str:
        """This variant's options as ``key=ACCEPTS``, for error messages."""
        info = self.variants[self.variant]
        parts = [f"{k}={self.option_types[k].accepts}" for k in (*info.options, *self.runtime_options)]
        if info.tokenizer is not None:
            parts.append("tok=TOKENIZER")
        return ", ".join(parts) or "none"

    def option_error(self, problem: str) -> ConfigError:
        """A ConfigError naming the metric, the variant and the options it takes."""
        return ConfigError(f"{self.label}: {problem} (options of {self.label}: {self.allowed_options()})")

    def _read_options(self, info: VariantInfo, given: dict[str, Any]) -> dict[str, Any]:
        """The variant's options, given or default, read by their ``option_types``; any other option is an error."""
        defaults = {**info.options, **self.runtime_options}
        for key in given:
            if key not in defaults:
                raise self.option_error(f"option {key}= does not apply to this variant")
        values = {}
        for key, default in defaults.items():
            text = _fmt(given[key]) if key in given else default
            values[key] = None if text is None else self._read_option(key, text)
        return values

    def _read_option(self, key: str, text: str) -> Any:
        if not text.strip():
            raise self.option_error(f"option {key}= needs a value")
        try:
            return self.option_types[key].read(text)
        except ValueError as exc:
            raise self.option_error(f"{key}=: {exc}") from None

    def _variant_tokenizer(self, info: VariantInfo, requested: str | None) -> Tokenizer | None:
        """The variant's tokenizer, or ``requested`` (ParlAI variants keep ``normalize_answer`` before it)."""
        if requested is None:
            return None if info.tokenizer is None else get_tokenizer(info.tokenizer)
        if info.tokenizer is None:
            raise self.option_error(f"takes no tokenizer, got {requested!r} (tok= or --tokenizer): "
                                    f"{TEXT_UNITS[info.text_units]}")
        if not requested.strip():
            raise self.option_error("option tok= needs a value")
        if info.tokenizer == "parlai":  # normalize_answer is part of ParlAI's metrics; an override replaces the split
            requested = with_parlai_normalization(requested)
        try:
            return get_tokenizer(requested)
        except ConfigError as exc:
            raise self.option_error(f"tok=: {exc}") from None

    @property
    def segments_cjk(self) -> bool:
        """Whether the text units this metric compares separate Chinese words or characters (True when it splits no
        text: raw characters, a model's tokenizer, no text)."""
        return self.tokenizer is None or self.tokenizer.segments_cjk

    # -- subclass hooks -------------------------------------------------------------------------
    def setup(self) -> None:
        """After the options are read: checks across options, and loading (files, models)."""

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

    def spec_options(self) -> dict[str, Any]:
        """The set options of this variant (runtime options left out): what ``spec`` names."""
        return {k: self.options[k] for k in sorted(self.variants[self.variant].options) if self.options[k] is not None}

    def signature_options(self) -> dict[str, Any]:
        """Signature entries besides tokenizer and scale: the spec's options (and fixed properties of the variant)."""
        return self.spec_options()

    def scored_against(self) -> tuple[str, ...]:
        """Record fields besides the response that this metric's value depends on (their per-item fingerprints
        must agree before two systems' items are paired): ``references``, ``persona``, ``context``, ``candidates``."""
        return ("references",)

    def needs_content(self) -> tuple[str, ...]:
        """List fields that must be non-empty for the value to mean anything (e.g. ``persona`` for persona
        metrics): no record having one skips the metric; records lacking it are counted in a warning."""
        return ()

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
        """A spec string that rebuilds this metric with :func:`build_metric`: the options that change its number."""
        parts = [self.label]
        parts += [f"{k}={_fmt(v)}" for k, v in self.spec_options().items()]
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


__all__ = ["Metric", "Signature", "VariantInfo", "OptionType", "choice_option", "int_option", "int_list_option",
           "text_option", "RUNTIME_OPTION_TYPES", "TEXT_UNITS", "METRICS", "register_metric", "build_metric",
           "create_metric", "parse_metric_spec", "mean", "Stats", "note_scorer", "scorer_provenance"]
