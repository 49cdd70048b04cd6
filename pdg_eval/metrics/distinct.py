"""Distinct-n in the six published definitions C1–C6 (spec: metrics.md §3).

The same outputs give Dist-1 = 85.40 per response (C4, IDL) and 1.90 at corpus level (C1, CLV,
MORPHEUS) — the variant name is part of every reported number. Corpus variants keep each
response's tokens as its statistics, so any resample of items is re-aggregated exactly.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError
from ..records import Record
from .base import Metric, VariantInfo, mean, register_metric


def _ngrams(tokens: Sequence, n: int) -> list[tuple]:
    return list(zip(*(tokens[i:] for i in range(n)))) if len(tokens) >= n else []


def _ratio_or_zero(unique: int, total: int) -> float:
    return unique / total if total else 0.0


@register_metric
class Distinct(Metric):
    name = "distinct"
    default_variant = "corpus"
    option_defaults = {"n": 2}
    variants = {
        "corpus": VariantInfo("C1 Li et al. 2016: unique / all n-grams over all responses (n-grams within responses)",
                              source="Toyhom/CLV@a4c7bfe:Metrics.py:114-123; Toyhom/MORPHEUS@8bf1bd9:Metrics.py:113-122"),
        "paa": VariantInfo("C2 PAA/PAL eval_distinct_avg: punctuation padded, unique n-grams / TOTAL TOKENS",
                           tokenizer="punct",
                           source="hqsiswiliam/persona-adaptive-attention@2539c5c:evaluation/evaluation_helper.py:40-57"),
        "concat": VariantInfo("C3 DHAP/MSP: responses concatenated (n-grams cross boundaries), unique / total tokens",
                              source="zhengyima/DHAP@5ec160f:evaluate.py:41-53"),
        "per_response": VariantInfo("C4 IDL: unique / all n-grams per response (0 if none), mean over responses",
                                    tokenizer="treebank",
                                    source="steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:20-28"),
        "parlai_inter": VariantInfo("C5 ParlAI interdistinct: corpus types / tokens on normalize_answer tokens",
                                    tokenizer="parlai", source="facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:799-851"),
        "parlai_intra": VariantInfo("C5 ParlAI intradistinct: per-response types / tokens, mean",
                                    tokenizer="parlai", source="facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:799-851"),
        "clv_s": VariantInfo("C6 CLV s-distinct: per sample over its sampled candidates ('samples'), mean",
                             source="Toyhom/CLV@a4c7bfe:Metrics.py:94-112"),
    }

    def setup(self) -> None:
        try:
            self.options["n"] = int(self.options["n"])
        except ValueError:
            raise ConfigError("distinct n= must be an integer") from None
        if not 1 <= self.options["n"] <= 6:
            raise ConfigError("distinct n= must be between 1 and 6")
        if self.variant == "clv_s":
            self.requires = ("samples",)

    @property
    def keys(self) -> list[str]:
        return [f"dist-{k}" for k in range(1, self.options["n"] + 1)]

    def item_stats(self, record: Record):
        n_max = self.options["n"]
        if self.variant == "clv_s":
            samples = [self.tok(s) for s in (record.samples or [record.response])]
            return [_ratio_or_zero(len(set(g := [x for s in samples for x in _ngrams(s, n)])), len(g))
                    for n in range(1, n_max + 1)]
        tokens = self.tok(record.response)
        if self.variant == "per_response":
            return [_ratio_or_zero(len(set(g := _ngrams(tokens, n))), len(g)) for n in range(1, n_max + 1)]
        if self.variant == "parlai_intra":
            return [max(len(set(g := _ngrams(tokens, n))), 1e-12) / max(len(g), 1e-5) for n in range(1, n_max + 1)]
        # corpus-level variants: the response's tokens are the sufficient statistics
        return list(tokens)

    def item_values(self, stats) -> dict[str, float] | None:
        if self.variant in ("per_response", "parlai_intra", "clv_s"):
            return dict(zip(self.keys, stats))
        return None

    def aggregate(self, stats: Sequence) -> dict[str, float]:
        n_max = self.options["n"]
        if self.variant in ("per_response", "parlai_intra", "clv_s"):
            return {k: mean([s[i] for s in stats]) for i, k in enumerate(self.keys)}
        if self.variant == "concat":
            stream = [t for s in stats for t in s]
            return {f"dist-{n}": _ratio_or_zero(len(set(_ngrams(stream, n))), len(stream)) for n in range(1, n_max + 1)}
        out = {}
        tokens = sum(len(s) for s in stats)
        for n in range(1, n_max + 1):
            unique: set[tuple] = set()
            total = 0
            for s in stats:
                grams = _ngrams(s, n)
                unique.update(grams)
                total += len(grams)
            if self.variant == "paa":
                out[f"dist-{n}"] = _ratio_or_zero(len(unique), tokens)
            elif self.variant == "parlai_inter":
                out[f"dist-{n}"] = max(len(unique), 1e-12) / max(total, 1e-5)
            else:
                out[f"dist-{n}"] = _ratio_or_zero(len(unique), total)
        return out
