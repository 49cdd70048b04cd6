"""Perplexity from per-token negative log-likelihoods (natural log), in each paper's convention.
PPL depends on the model's tokenizer: only compare
numbers computed with the same tokenizer (PAA footnote 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..records import Record
from .base import Metric, int_option, note_scorer, option, register_metric, scorer_provenance


class Perplexity(Metric):
    """Perplexity from the per-token NLLs a model wrote into the records (``pdg-eval ppl``); the statistics of an
    item are its summed NLL and its token count."""

    higher_is_better = False
    display_factor = 1.0
    requires = ("nll",)
    default_tokenizer = None
    keys = ["ppl"]

    parallel_safe = False  # it records which model filled the records (the signature's provenance)

    def setup(self) -> None:
        self.scored_by: set[tuple[str, ...]] = set()

    def signature_options(self) -> dict:
        return {**super().signature_options(), **scorer_provenance(self.scored_by)}

    def token_nll(self, record: Record) -> list[float]:
        return record.nll or []

    def item_stats(self, record: Record) -> list[float]:
        note_scorer(self.scored_by, record, "nll")
        nll = self.token_nll(record)
        return [math.fsum(nll), len(nll)]

    def aggregate(self, stats: Sequence[list[float]]) -> dict[str, float]:
        stats = [s for s in stats if s[1] > 0]
        return {"ppl": self.perplexity(stats) if stats else float("nan")}

    def perplexity(self, stats: Sequence[list[float]]) -> float:
        """exp(summed NLL / summed count) of items with tokens."""
        return math.exp(sum(s[0] for s in stats) / sum(s[1] for s in stats))

    # -- vectorised resampling: exp(summed NLL / summed count) --
    def linear_matrix(self, stats: Sequence[list[float]]):
        import numpy as np

        return np.array([[s[0], s[1]] for s in stats], dtype=np.float64)

    def scores_from_sums(self, sums):
        import numpy as np

        count = sums[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"ppl": np.where(count > 0, np.exp(sums[:, 0] / np.where(count > 0, count, 1.0)), np.nan)}


@register_metric("ppl", "token_micro", default=True)
class TokenMicroPerplexity(Perplexity):
    description = "exp(sum of all token NLLs / number of tokens)"
    source = "facebookresearch/ParlAI@a29567f:parlai/core/torch_generator_agent.py:320-322"


@register_metric("ppl", "paa")
class PaaPerplexity(Perplexity):
    description = "token_micro with positions whose loss is exactly 0 dropped"
    source = "hqsiswiliam/persona-adaptive-attention@2539c5c:evaluation/evaluate_causal_decoder.py:27-39"

    def token_nll(self, record: Record) -> list[float]:
        return [x for x in record.nll or [] if x != 0]


@register_metric("ppl", "sentence_macro")
class SentenceMacroPerplexity(Perplexity):
    description = "exp(mean over sequences of the per-sequence mean NLL)"
    source = "kylokano/PAL@cc8b8b5:decode_lora.py:181-209"

    def perplexity(self, stats: Sequence[list[float]]) -> float:
        return math.exp(sum(s[0] / s[1] for s in stats) / len(stats))

    def linear_matrix(self, stats: Sequence[list[float]]):
        import numpy as np

        return np.array([[s[0] / s[1], 1.0] if s[1] > 0 else [0.0, 0.0] for s in stats], dtype=np.float64)


@dataclass
class PamlBatch:
    """PAML's evaluation batch, over which each exp(mean NLL) is taken."""

    batch_size: int = option(1, int_option(1))


@register_metric("ppl", "paml_batch")
class PamlBatchPerplexity(Perplexity):
    description = "mean over batches (in file order) of exp(batch-mean NLL)"
    source = "HLTCHKUST/PAML@35b3a3e:model/transformer.py:345; model/common_layer.py:653"
    Options = PamlBatch

    def perplexity(self, stats: Sequence[list[float]]) -> float:
        size = self.options.batch_size
        batches = [stats[i:i + size] for i in range(0, len(stats), size)]
        # PAML's loss is the token-mean within a batch
        values = [math.exp(sum(s[0] for s in b) / sum(s[1] for s in b)) for b in batches]
        return sum(values) / len(values)

    def linear_matrix(self, stats: Sequence[list[float]]):
        return None  # batches in file order: resampled by re-aggregation
