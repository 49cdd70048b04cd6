"""Perplexity from per-token negative log-likelihoods (natural log), in each paper's convention.
PPL depends on the model's tokenizer: only compare
numbers computed with the same tokenizer (PAA footnote 5)."""

from __future__ import annotations

import math
from typing import Sequence

from ..records import Record
from .base import Metric, VariantInfo, int_option, note_scorer, register_metric, scorer_provenance


@register_metric
class Perplexity(Metric):
    name = "ppl"
    default_variant = "token_micro"
    higher_is_better = False
    display_factor = 1.0
    requires = ("nll",)
    #: batch_size: PAML's evaluation batch, over which each exp(mean NLL) is taken
    option_types = {"batch_size": int_option(1)}
    variants = {
        "token_micro": VariantInfo("exp(sum of all token NLLs / number of tokens)", tokenizer=None,
                                   source="facebookresearch/ParlAI@a29567f:parlai/core/torch_generator_agent.py:320-322"),
        "paa": VariantInfo("token_micro with positions whose loss is exactly 0 dropped", tokenizer=None,
                           source="hqsiswiliam/persona-adaptive-attention@2539c5c:evaluation/evaluate_causal_decoder.py:27-39"),
        "sentence_macro": VariantInfo("exp(mean over sequences of the per-sequence mean NLL)", tokenizer=None,
                                      source="kylokano/PAL@cc8b8b5:decode_lora.py:181-209"),
        "paml_batch": VariantInfo("mean over batches (in file order) of exp(batch-mean NLL)", tokenizer=None,
                                  source="HLTCHKUST/PAML@35b3a3e:model/transformer.py:345; model/common_layer.py:653",
                                  options={"batch_size": "1"}),
    }
    keys = ["ppl"]

    def setup(self) -> None:
        self.scored_by: set[tuple[str, ...]] = set()

    def signature_options(self) -> dict:
        return {**self.spec_options(), **scorer_provenance(self.scored_by)}

    def item_stats(self, record: Record) -> list[float]:
        note_scorer(self.scored_by, record, "nll")
        nll = record.nll or []
        if self.variant == "paa":
            nll = [x for x in nll if x != 0]
        return [math.fsum(nll), len(nll)]

    def aggregate(self, stats: Sequence[list[float]]) -> dict[str, float]:
        stats = [s for s in stats if s[1] > 0]
        if not stats:
            return {"ppl": float("nan")}
        if self.variant in ("token_micro", "paa"):
            return {"ppl": math.exp(sum(s[0] for s in stats) / sum(s[1] for s in stats))}
        if self.variant == "sentence_macro":
            return {"ppl": math.exp(sum(s[0] / s[1] for s in stats) / len(stats))}
        size = self.options["batch_size"]
        batches = [stats[i:i + size] for i in range(0, len(stats), size)]
        # PAML's loss is the token-mean within a batch
        values = [math.exp(sum(s[0] for s in b) / sum(s[1] for s in b)) for b in batches]
        return {"ppl": sum(values) / len(values)}

    # -- vectorised resampling: token_micro / paa are exp(summed NLL / summed count), sentence_macro a mean --
    def linear_matrix(self, stats: Sequence[list[float]]):
        import numpy as np

        if self.variant == "paml_batch":  # batches in file order: resampled by re-aggregation
            return None
        if self.variant == "sentence_macro":
            return np.array([[s[0] / s[1], 1.0] if s[1] > 0 else [0.0, 0.0] for s in stats], dtype=np.float64)
        return np.array([[s[0], s[1]] for s in stats], dtype=np.float64)

    def scores_from_sums(self, sums):
        import numpy as np

        count = sums[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"ppl": np.where(count > 0, np.exp(sums[:, 0] / np.where(count > 0, count, 1.0)), np.nan)}
