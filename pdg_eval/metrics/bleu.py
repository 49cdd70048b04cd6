"""BLEU-1..4 under every convention PDG papers used.

"BLEU-n" is cumulative BLEU up to order n, except PAA's "BLEU-1/2", which are sacreBLEU's
corpus n-gram precisions (``paa_precision``; VERIFIED against PAA Table 1).
"""

from __future__ import annotations

from typing import Sequence

from ..records import Record
from .base import Metric, VariantInfo, choice_option, mean, register_metric
from .ngrams import coco_bleu, match_stats, multibleu, nltk_bleu, nltk_bleu_multi, sacrebleu_score, sum_stats

#: DHAP/MSP/MORPHEUS weights; W3 sums to 0.99 and is copied exactly (zhengyima/DHAP@5ec160f:evaluate.py:374-381).
NLTK_PDG_WEIGHTS = {1: (1, 0, 0, 0), 2: (0.5, 0.5, 0, 0), 3: (0.33, 0.33, 0.33, 0), 4: (0.25, 0.25, 0.25, 0.25)}
#: ParlAI BleuMetric uses uniform weights [1/k]*k (facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:590-616).
PARLAI_WEIGHTS = {k: tuple([1 / k] * k) for k in range(1, 5)}


@register_metric
class Bleu(Metric):
    name = "bleu"
    default_variant = "nltk_sentence_avg"
    #: NLTK's SmoothingFunction: none (method0) or method1 (epsilon 0.1); only the NLTK variants take it
    option_types = {"smooth": choice_option("none", "method1")}
    variants = {
        "nltk_sentence_avg": VariantInfo(
            "mean over items of NLTK sentence_bleu([refs], hyp), weights 1 / .5,.5 / .33x3 / .25x4, no smoothing",
            source="DHAP evaluate.py:374-381; MSP evaluate.py:420-427; MORPHEUS Metrics.py:248-261",
            options={"smooth": "none"}),
        "nltk_corpus": VariantInfo("NLTK corpus_bleu with the same weights", source="nltk.translate.bleu_score",
                                   options={"smooth": "none"}),
        "sacrebleu": VariantInfo("sacreBLEU corpus BLEU (13a, exp smoothing); bleu-n = max_ngram_order n",
                                 tokenizer="13a", source="sacrebleu 2.x BLEU().corpus_score"),
        "paa_precision": VariantInfo("sacreBLEU corpus n-gram precisions p1, p2 (x100) that PAA calls BLEU-1/2",
                                     tokenizer="13a", source="hqsiswiliam/persona-adaptive-attention@2539c5c:validate_bleu.py:14-36"),
        "coco": VariantInfo("pycocoevalcap Bleu(4), corpus level, closest reference length", source="pycocoevalcap 1.2"),
        "pal_swapped": VariantInfo("pycocoevalcap Bleu(4) with gts=generated, res=reference, as PAL calls it",
                                   source="kylokano/PAL@cc8b8b5:decode_lora.py:135-157", bug_compatible=True),
        "multibleu": VariantInfo("Moses multi-bleu.perl -lc corpus BLEU-4 (x100; 0 if any order has no match)",
                                 source="HLTCHKUST/PAML@35b3a3e:utils/metric.py:68-127"),
        "parlai": VariantInfo("ParlAI BleuMetric: normalize_answer, method1 eps=1e-12, weights 1/k, mean",
                              tokenizer="parlai", source="facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:590-616"),
        "clv_released": VariantInfo("CLV's call sentence_bleu(ref_words, hyp): every reference word becomes a "
                                    "character-level reference", source="Toyhom/CLV@a4c7bfe:Metrics.py:155-161",
                                    bug_compatible=True, options={"smooth": "none"}),
        "idl_released": VariantInfo("IDL's call sentence_bleu([pred_str], gold_str, (1,0,0,0)) on raw strings: "
                                    "character BLEU-1 with roles swapped", tokenizer=None, text_units="raw-chars",
                                    source="steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:37-39",
                                    bug_compatible=True),
    }

    def setup(self) -> None:
        if self.variant in ("sacrebleu", "paa_precision", "multibleu"):
            self.display_factor, self.native_x100 = 1.0, True  # the reference tools already report x100

    def signature_options(self) -> dict:
        if self.variant in ("nltk_sentence_avg", "nltk_corpus", "clv_released"):
            return {"smooth": self.options["smooth"], "w3": "0.33"}
        if self.variant == "parlai":
            return {"smooth": "method1-eps1e-12", "weights": "1/k"}
        if self.variant in ("sacrebleu", "paa_precision"):
            return {"case": "mixed", "smooth": "exp"}
        if self.variant == "multibleu":
            return {"case": "lc"}
        return {}

    @property
    def keys(self) -> list[str]:
        if self.variant == "paa_precision":
            return ["bleu-1", "bleu-2"]
        if self.variant == "idl_released":
            return ["bleu-1"]
        if self.variant == "multibleu":
            return ["bleu-4"]
        return ["bleu-1", "bleu-2", "bleu-3", "bleu-4"]

    def item_stats(self, record: Record) -> list[int]:
        if self.variant == "idl_released":
            return match_stats(tuple(record.reference), (tuple(record.response),), 1)
        hyp = self.tok(record.response)
        if self.variant == "multibleu":
            hyp = tuple(t.lower() for t in hyp)
            refs = tuple(tuple(t.lower() for t in self.tok(r)) for r in record.references)
        elif self.variant == "clv_released":
            refs = tuple(tuple(word) for word in self.tok(record.reference))
        elif self.variant == "pal_swapped":
            hyp, refs = self.tok(record.reference), (hyp,)
        else:
            refs = tuple(self.tok(r) for r in record.references)
        return match_stats(hyp, refs, 4)

    def _sentence_weights(self) -> dict[int, tuple]:
        return PARLAI_WEIGHTS if self.variant == "parlai" else NLTK_PDG_WEIGHTS

    def item_values(self, stats: list[int]) -> dict[str, float] | None:
        if self.variant in ("nltk_sentence_avg", "clv_released", "parlai"):
            smooth, eps = ("method1", 1e-12) if self.variant == "parlai" else (self.options["smooth"], 0.1)
            weights = self._sentence_weights()
            return dict(zip(self.keys, nltk_bleu_multi(stats, [weights[n] for n in range(1, 5)], smooth, eps)))
        if self.variant == "idl_released":
            return {"bleu-1": nltk_bleu(stats, (1,), "none")}
        return None

    def aggregate(self, stats: Sequence[list[int]]) -> dict[str, float]:
        if not stats:
            return {k: 0.0 for k in self.keys}
        if self.variant in SENTENCE_VARIANTS:
            per_item = [self.item_values(st) for st in stats]
            return {k: mean([v[k] for v in per_item]) for k in self.keys}
        if self.variant in ("coco", "pal_swapped"):
            return dict(zip(self.keys, coco_bleu(stats)))
        return self._scores_of_total(sum_stats(stats, nltk_denominators=self.variant == "nltk_corpus"))

    def _scores_of_total(self, total: Sequence[int]) -> dict[str, float]:
        """Corpus scores from summed statistics (NLTK's per-sentence ``max(1, total)`` already applied)."""
        if self.variant == "nltk_corpus":
            return {f"bleu-{n}": nltk_bleu(total, NLTK_PDG_WEIGHTS[n], self.options["smooth"],
                                           per_sentence_denominators=False) for n in range(1, 5)}
        if self.variant == "sacrebleu":
            return {f"bleu-{n}": sacrebleu_score(total, n).score for n in range(1, 5)}
        if self.variant == "paa_precision":
            precisions = sacrebleu_score(total, 4).precisions
            return {"bleu-1": precisions[0], "bleu-2": precisions[1]}
        if self.variant == "multibleu":
            return {"bleu-4": multibleu(total)[0]}
        raise AssertionError(self.variant)

    # -- vectorised resampling: corpus variants are functions of the summed statistics ------------
    def linear_matrix(self, stats: Sequence[list[int]]):
        if self.variant in SENTENCE_VARIANTS:
            return super().linear_matrix(stats)
        import numpy as np

        matrix = np.array(stats, dtype=np.float64)
        if self.variant == "nltk_corpus":  # NLTK's per-sentence max(1, total) denominators
            matrix[:, 6:] = np.maximum(matrix[:, 6:], 1.0)
        return matrix

    def scores_from_sums(self, sums):
        import numpy as np

        if self.variant in SENTENCE_VARIANTS:
            return super().scores_from_sums(sums)
        if self.variant in ("sacrebleu", "paa_precision"):
            return sacrebleu_vectorized(sums, self.keys, precisions=self.variant == "paa_precision")
        # the other corpus formulas: the scalar reference formula on each summed row (exact, ~10 us a row)
        rows = [dict(zip(self.keys, coco_bleu([t]))) if self.variant in ("coco", "pal_swapped")
                else self._scores_of_total(t) for t in np.rint(sums).astype(np.int64).tolist()]
        return {k: np.array([r[k] for r in rows]) for k in self.keys}


SENTENCE_VARIANTS = ("nltk_sentence_avg", "clv_released", "parlai", "idl_released")


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
