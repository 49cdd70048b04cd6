"""C-score: an NLI model judges each (persona sentence, response) pair.

No NLI checkpoint of the papers was released and none installs offline, so the model is a required
option (``model=PATH_OR_HUB_ID``), identified in the signature by the sha256 of its weights together
with the premise order fed, the order the scorer was trained on (its ``manifest.json``; ``unknown`` without one) and
the label map. A scorer gives other numbers in the order it was not trained on, so a variant whose premise differs
from the trained order is refused, unless the scorer was trained on both (README, "Premise order").
Aggregations: see :mod:`pdg_eval.metrics.consistency`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

from ..errors import ConfigError, UnsuitableModelError
from ..models.adapters import SHIPPED_NLI
from ..models.cache import cached_predictions
from ..models.nli_labels import LABELS, canonical_label_map, fits_premise
from ..models.runtime import argmax
from ..records import Record
from .base import ModelMetric, choice_option, int_option, option, register_metric, text_option
from .consistency import chanliang_total, idl_pairwise, pal_max, paml_sum

if TYPE_CHECKING:
    from ..models.runtime import PairClassifier

_LABEL_IDS = {name: i for i, name in enumerate(LABELS)}


def parse_label_map(text: str) -> dict[int, int]:
    """``"0:contradiction,1:neutral,2:entailment"`` → model id → canonical id."""
    out = {}
    for part in text.split(","):
        idx, _, name = part.partition(":")
        if name.strip().lower() not in _LABEL_IDS or not idx.strip().isdigit():
            raise ConfigError(f"bad label_map entry {part!r}: expected ID:contradiction|neutral|entailment")
        out[int(idx)] = _LABEL_IDS[name.strip().lower()]
    if sorted(out.values()) != [0, 1, 2]:
        raise ConfigError("label_map must name contradiction, neutral and entailment once each")
    return out


@dataclass
class PairClassifierOptions:
    """The pair classifier (default: the shipped scorer), its label order (unset: read from the model), its input
    length and which text is the premise."""

    model: str = option(SHIPPED_NLI, text_option("PATH_OR_HUB_ID"))
    label_map: str | None = option(None, text_option("ID:LABEL,..."))
    max_length: int = option(128, int_option(1))
    premise: str = option("persona", choice_option("persona", "response"))


@dataclass
class ResponseFirstOptions(PairClassifierOptions):
    premise: str = option("response", choice_option("persona", "response"))


class CScore(ModelMetric):
    """An NLI label for each (persona sentence, response) pair; the conventions differ in the aggregation."""

    display_factor = 1.0
    Options = PairClassifierOptions
    keys = ["c-score"]
    #: the convention's aggregation of the labels, one row per response (:mod:`pdg_eval.metrics.consistency`)
    aggregation: ClassVar[Callable[[Sequence[Sequence[int]]], dict[str, float]]]

    def setup(self) -> None:
        """Finds the model's folder and reads its label names; the weights load on first use (:attr:`model`)."""
        from ..models.cache import ScoreCache, default_cache_path
        from ..models.runtime import ModelFolder

        self.folder = ModelFolder(self.options.model)
        self._check_premise_order()
        self.label_map = (parse_label_map(self.options.label_map) if self.options.label_map
                          else canonical_label_map(self.folder.id2label))
        self.cache = ScoreCache(default_cache_path())

    def _check_premise_order(self) -> None:
        premise, trained = self.options.premise, self.folder.premise_order
        if not fits_premise(trained, premise):
            raise UnsuitableModelError(
                f"c-score:{self.variant} feeds premise={premise} ({premise} first) but the NLI scorer "
                f"{self.options.model} was trained {trained}: use a scorer trained with "
                f"`pdg-eval scorers train nli --premise-order {premise}` (or both)")

    @cached_property
    def model(self) -> PairClassifier:
        from ..models.runtime import load_pair_classifier

        return load_pair_classifier(self.options.model, self.runtime["device"], self.options.max_length,
                                    self.runtime["batch_size"])

    def model_languages(self) -> tuple[str, ...] | None:
        return self.folder.languages

    def signature_options(self) -> dict:
        return {"model": self.options.model, **self.folder.signature_fields(), "empty": "neutral",
                "premise": self.options.premise, "premise_order": self.folder.premise_order or "unknown",
                "max_length": self.options.max_length,
                "labels": ",".join(f"{i}:{LABELS[c]}" for i, c in sorted(self.label_map.items()))}

    def scored_against(self) -> tuple[str, ...]:
        return ("persona",)

    def needs_content(self) -> tuple[str, ...]:
        return ("persona",)

    def items_stats(self, records: Sequence[Record]) -> list[list[int]]:
        """Per record the canonical label of each persona sentence; an empty response says nothing about the persona
        and is labelled neutral without asking the model (a classifier never trained on empty inputs guesses)."""
        judged = [rec for rec in records if rec.response.strip()]
        pairs = [(sentence, rec.response) if self.options.premise == "persona" else (rec.response, sentence)
                 for rec in judged for sentence in rec.persona]
        probs = cached_predictions(self.cache, self.folder.weights_sha256,
                                   f"nli|max_length={self.options.max_length}", pairs, lambda pair: pair,
                                   lambda todo: self.model.predict_proba(todo))
        labels = iter(self.label_map[argmax(p)] for p in probs)
        neutral = _LABEL_IDS["neutral"]
        return [[next(labels) if rec.response.strip() else neutral for _ in rec.persona] for rec in records]

    def item_values(self, stats: list[int]) -> dict[str, float] | None:
        return self.aggregate([stats])

    def aggregate(self, stats: Sequence[list[int]]) -> dict[str, float]:
        return self.aggregation(stats)


@register_metric("c-score", "paml_sum")
class PamlCScore(CScore):
    description = "per response the sum over persona sentences of +1/0/-1, mean (PAML; premise = response)"
    source = "HLTCHKUST/PAML@35b3a3e:utils/load_bert.py:360-366"
    Options = ResponseFirstOptions
    aggregation = staticmethod(paml_sum)


@register_metric("c-score", "chanliang", default=True)  # persona first, the order of the shipped scorer
class ChanliangCScore(CScore):
    description = "sum over all pairs of (label-1) / number of responses (premise = persona)"
    source = "ChanLiang/PersonaClassifier@bf0e819:cal_consistency_score.py:16-100"
    aggregation = staticmethod(chanliang_total)


@register_metric("c-score", "pal_max")
class PalCScore(CScore):
    description = "per response the max over persona sentences of (label-1), mean (premise = persona)"
    source = "kylokano/PAL@cc8b8b5:decode_lora.py:290-373"
    aggregation = staticmethod(pal_max)


@register_metric("c-score", "idl_pairwise")
class IdlPairwiseConsistency(CScore):
    description = "share of pairs not contradicted (Con) and entailed (Coh-Con) (premise = persona)"
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:124-185"
    display_factor = 100.0
    keys = ["con", "coh-con"]
    aggregation = staticmethod(idl_pairwise)

    def item_values(self, stats: list[int]) -> None:
        return None  # shares over pairs: items with more persona sentences weigh more
