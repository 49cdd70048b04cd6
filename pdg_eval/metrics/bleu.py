"""BLEU-1..4 under every convention PDG papers used, one class each.

"BLEU-n" is cumulative BLEU up to order n, except PAA's "BLEU-1/2", which are sacreBLEU's
corpus n-gram precisions (``paa_precision``; VERIFIED against PAA Table 1). Every convention's
per-item statistics are :func:`~pdg_eval.metrics.ngrams.match_stats` of one hypothesis against its
references; the conventions differ in what they compare and how they aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Sequence

from ..records import Record
from .base import MeanOfItems, Metric, choice_option, option, register_metric
from .ngrams import coco_bleu, match_stats, match_stats_batch, multibleu, nltk_bleu, nltk_bleu_multi, sacrebleu_score, sum_stats

#: DHAP/MSP/MORPHEUS weights; W3 sums to 0.99 and is copied exactly (zhengyima/DHAP@5ec160f:evaluate.py:374-381).
NLTK_PDG_WEIGHTS = {1: (1, 0, 0, 0), 2: (0.5, 0.5, 0, 0), 3: (0.33, 0.33, 0.33, 0), 4: (0.25, 0.25, 0.25, 0.25)}
#: ParlAI BleuMetric uses uniform weights [1/k]*k (facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:590-616).
PARLAI_WEIGHTS = {k: tuple([1 / k] * k) for k in range(1, 5)}
CUMULATIVE_KEYS = ["bleu-1", "bleu-2", "bleu-3", "bleu-4"]


@dataclass
class NltkSmoothing:
    """NLTK's SmoothingFunction: none (method0) or method1 (epsilon 0.1)."""

    smooth: str = option("none", choice_option("none", "method1"))


class Bleu(Metric):
    """BLEU-1..4 of the tokenised response against the tokenised references."""

    keys = CUMULATIVE_KEYS

    def pair(self, record: Record) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """The hypothesis and the references this convention compares."""
        return self.tok(record.response), tuple(self.tok(r) for r in record.references)

    def item_stats(self, record: Record) -> list[int]:
        hyp, refs = self.pair(record)
        return match_stats(hyp, refs, 4)

    def items_stats(self, records: Sequence[Record]) -> list[list[int]]:
        return match_stats_batch([self.pair(r) for r in records], 4)


class SentenceBleu(MeanOfItems, Bleu):
    """Sentence BLEU per item with NLTK's formula, mean over items."""

    weights: dict[int, tuple] = NLTK_PDG_WEIGHTS

    def smoothing(self) -> tuple[str, float]:
        """NLTK's smoothing method and its epsilon."""
        return self.options.smooth, 0.1

    def item_values(self, stats: list[int]) -> dict[str, float]:
        values = _sentence_bleu_values(tuple(stats), self.weight_sets, *self.smoothing())
        return dict(zip(self.keys, values))

    @cached_property
    def weight_sets(self) -> tuple[tuple[float, ...], ...]:
        """The weights of BLEU-1..4."""
        return tuple(self.weights[n] for n in range(1, 5))


@lru_cache(maxsize=1 << 16)
def _sentence_bleu_values(stats: tuple[int, ...], weight_sets: tuple, smoothing: str, epsilon: float) -> list[float]:
    """:func:`nltk_bleu_multi`, remembered: sentences of one corpus often have the same statistics (ConvAI2 valid:
    1,662 distinct lists of 7,801 under the whitespace tokenizer)."""
    return nltk_bleu_multi(stats, weight_sets, smoothing, epsilon)


class CorpusBleu(Bleu):
    """Corpus BLEU: a function of the summed statistics, so resamples are re-aggregated from column sums."""

    def aggregate(self, stats: Sequence[list[int]]) -> dict[str, float]:
        if not stats:
            return {k: 0.0 for k in self.keys}
        return self.scores_of_total(sum_stats(stats))

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        """The scores of summed statistics."""
        raise NotImplementedError

    def linear_matrix(self, stats: Sequence[list[int]]):
        import numpy as np

        return np.array(stats, dtype=np.float64)

    def scores_from_sums(self, sums):
        """The scalar reference formula on each summed row (exact, ~10 us a row)."""
        import numpy as np

        rows = [self.scores_of_total(t) for t in np.rint(sums).astype(np.int64).tolist()]
        return {k: np.array([r[k] for r in rows]) for k in self.keys}


@register_metric("bleu", "nltk_sentence_avg", default=True)
class NltkSentenceBleu(SentenceBleu):
    description = "mean over items of NLTK sentence_bleu([refs], hyp), weights 1 / .5,.5 / .33x3 / .25x4, no smoothing"
    source = "DHAP evaluate.py:374-381; MSP evaluate.py:420-427; MORPHEUS Metrics.py:248-261"
    Options = NltkSmoothing
    fixed_signature = {"w3": "0.33"}


@register_metric("bleu", "clv_released")
class ClvReleasedBleu(SentenceBleu):
    description = ("CLV's call sentence_bleu(ref_words, hyp): every reference word becomes a character-level "
                   "reference")
    source = "Toyhom/CLV@a4c7bfe:Metrics.py:155-161"
    bug_compatible = True
    Options = NltkSmoothing
    fixed_signature = {"w3": "0.33"}

    def pair(self, record: Record):
        return self.tok(record.response), self.tok(record.reference)  # each word: the sequence of its characters


@register_metric("bleu", "parlai")
class ParlaiBleu(SentenceBleu):
    description = "ParlAI BleuMetric: normalize_answer, method1 eps=1e-12, weights 1/k, mean"
    source = "facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:590-616"
    default_tokenizer = "parlai"
    fixed_signature = {"smooth": "method1-eps1e-12", "weights": "1/k"}
    weights = PARLAI_WEIGHTS

    def smoothing(self) -> tuple[str, float]:
        return "method1", 1e-12


@register_metric("bleu", "idl_released")
class IdlReleasedBleu(MeanOfItems, Bleu):
    description = ("IDL's call sentence_bleu([pred_str], gold_str, (1,0,0,0)) on raw strings: character BLEU-1 "
                   "with roles swapped")
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:37-39"
    bug_compatible = True
    default_tokenizer = None
    text_units = "raw-chars"
    keys = ["bleu-1"]

    def item_stats(self, record: Record) -> list[int]:
        return match_stats(record.reference, (record.response,), 1)  # a string is its characters' sequence

    def items_stats(self, records: Sequence[Record]) -> list[list[int]]:
        return match_stats_batch([(r.reference, (r.response,)) for r in records], 1)

    def item_values(self, stats: list[int]) -> dict[str, float]:
        return {"bleu-1": nltk_bleu(stats, (1,), "none")}


@register_metric("bleu", "nltk_corpus")
class NltkCorpusBleu(CorpusBleu):
    description = "NLTK corpus_bleu with the PDG weights"
    source = "nltk.translate.bleu_score"
    Options = NltkSmoothing
    fixed_signature = {"w3": "0.33"}

    def aggregate(self, stats: Sequence[list[int]]) -> dict[str, float]:
        if not stats:
            return {k: 0.0 for k in self.keys}
        return self.scores_of_total(sum_stats(stats, nltk_denominators=True))

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        """NLTK's per-sentence ``max(1, total)`` denominators are already applied to ``total``."""
        return {f"bleu-{n}": nltk_bleu(total, NLTK_PDG_WEIGHTS[n], self.options.smooth,
                                       per_sentence_denominators=False) for n in range(1, 5)}

    def linear_matrix(self, stats: Sequence[list[int]]):
        import numpy as np

        matrix = super().linear_matrix(stats)
        matrix[:, 6:] = np.maximum(matrix[:, 6:], 1.0)  # NLTK's per-sentence max(1, total) denominators
        return matrix


@register_metric("bleu", "sacrebleu")
class SacreBleu(CorpusBleu):
    description = "sacreBLEU corpus BLEU (13a, exp smoothing); bleu-n = max_ngram_order n"
    source = "sacrebleu 2.x BLEU().corpus_score"
    default_tokenizer = "13a"
    display_factor, native_x100 = 1.0, True  # sacreBLEU reports x100
    fixed_signature = {"case": "mixed", "smooth": "exp"}

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        return {f"bleu-{n}": sacrebleu_score(total, n).score for n in range(1, 5)}

    def scores_from_sums(self, sums):
        return sacrebleu_vectorized(sums, self.keys)


@register_metric("bleu", "paa_precision")
class PaaPrecisionBleu(SacreBleu):
    description = "sacreBLEU corpus n-gram precisions p1, p2 (x100) that PAA calls BLEU-1/2"
    source = "hqsiswiliam/persona-adaptive-attention@2539c5c:validate_bleu.py:14-36"
    keys = ["bleu-1", "bleu-2"]

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        precisions = sacrebleu_score(total, 4).precisions
        return {"bleu-1": precisions[0], "bleu-2": precisions[1]}

    def scores_from_sums(self, sums):
        return sacrebleu_vectorized(sums, self.keys, precisions=True)


@register_metric("bleu", "multibleu")
class MultiBleu(CorpusBleu):
    description = "Moses multi-bleu.perl -lc corpus BLEU-4 (x100; 0 if any order has no match)"
    source = "HLTCHKUST/PAML@35b3a3e:utils/metric.py:68-127"
    display_factor, native_x100 = 1.0, True  # multi-bleu.perl reports x100
    fixed_signature = {"case": "lc"}
    keys = ["bleu-4"]

    def pair(self, record: Record):
        hyp = tuple(t.lower() for t in self.tok(record.response))
        return hyp, tuple(tuple(t.lower() for t in self.tok(r)) for r in record.references)

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        return {"bleu-4": multibleu(total)[0]}


@register_metric("bleu", "coco")
class CocoBleu(CorpusBleu):
    description = "pycocoevalcap Bleu(4), corpus level, closest reference length"
    source = "pycocoevalcap 1.2"

    def scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        return dict(zip(self.keys, coco_bleu([total])))

    def aggregate(self, stats: Sequence[list[int]]) -> dict[str, float]:
        if not stats:
            return {k: 0.0 for k in self.keys}
        return dict(zip(self.keys, coco_bleu(stats)))


@register_metric("bleu", "pal_swapped")
class PalSwappedBleu(CocoBleu):
    description = "pycocoevalcap Bleu(4) with gts=generated, res=reference, as PAL calls it"
    source = "kylokano/PAL@cc8b8b5:decode_lora.py:135-157"
    bug_compatible = True

    def pair(self, record: Record):
        return self.tok(record.reference), (self.tok(record.response),)


def sacrebleu_vectorized(sums, keys: Sequence[str], precisions: bool = False) -> dict:
    """sacreBLEU's ``BLEU.compute_bleu`` (smooth ``exp``) on many rows of summed statistics at once, with its
    operations in its order (mjpost/sacrebleu ``metrics/bleu.py``); ``precisions``: PAA's p1, p2 instead."""
    import numpy as np

    sys_len, ref_len = sums[:, 0], sums[:, 1]
    correct, total = sums[:, 2:6], sums[:, 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0)
        out = {}
        for order in ([4] if precisions else [int(k.split("-")[1]) for k in keys]):
            prec = np.zeros((sums.shape[0], order))
            smooth = np.ones(sums.shape[0])
            alive = np.ones(sums.shape[0], dtype=bool)
            for n in range(order):
                alive &= total[:, n] != 0
                zero = correct[:, n] == 0
                smooth = np.where(alive & zero, smooth * 2, smooth)
                value = np.where(zero, 100.0 / (smooth * total[:, n]), 100.0 * correct[:, n] / total[:, n])
                prec[:, n] = np.where(alive, value, 0.0)
            any_match = (correct[:, :order] != 0).any(axis=1)
            if precisions:
                prec = np.where(any_match[:, None], prec, 0.0)
                return {"bleu-1": prec[:, 0], "bleu-2": prec[:, 1]}
            logs = np.where(prec == 0.0, -9999999999.0, np.log(np.where(prec == 0.0, 1.0, prec)))
            acc = logs[:, 0]
            for n in range(1, order):
                acc = acc + logs[:, n]
            out[f"bleu-{order}"] = np.where(any_match, bp * np.exp(acc / order), 0.0)
    return out


def multibleu_report(stats: Sequence[list[int]]) -> str:
    """The line multi-bleu.perl prints, for side-by-side checks with Moses."""
    total = sum_stats(stats)
    bleu, precisions, bp, ratio = multibleu(total)
    p = "/".join(f"{x:.1f}" for x in precisions)
    return f"BLEU = {bleu:.2f}, {p} (BP={bp:.3f}, ratio={ratio:.3f}, hyp_len={total[0]}, ref_len={total[1]})"
