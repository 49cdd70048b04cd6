"""ROUGE-1/2/L in the three conventions PDG papers used.

- ``pltrdy``: the ``rouge`` 1.0.1 package (CLV, MORPHEUS, DHAP, MSP report the recall ``r``):
  text split into "sentences" on ``.``, **set** semantics for n-grams and for the union LCS.
- ``rouge_score``: Google's ``rouge-score`` (IDL code reports F with the Porter stemmer); ASCII-only
  default tokenizer, so CJK text needs ``tok=char`` or ``tok=jieba``.
- ``coco`` / ``pal_swapped``: pycocoevalcap ROUGE-L, F_beta with beta = 1.2.

Empty-text rule: an empty hypothesis (or reference) scores 0 on every ROUGE value (pltrdy raises
``ValueError`` there; MSP/CLV patch it by appending ``<UNK>``, which also scores 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..records import Record
from .base import MeanOfItems, choice_option, option, register_metric
from .lcs import lcs_length, lcs_token_set
from .ngrams import pair_overlaps

_STATS = ("r", "p", "f")


def pltrdy_scores(hyp_text: str, ref_text: str) -> list[float]:
    """``Rouge().get_scores(hyp, ref)[0]`` of pltrdy ``rouge`` 1.0.1 as
    ``[r1, p1, f1, r2, p2, f2, rl, pl, fl]``."""
    hyp = [" ".join(s.split()) for s in hyp_text.split(".") if len(s) > 0]
    ref = [" ".join(s.split()) for s in ref_text.split(".") if len(s) > 0]
    if not hyp or not ref:
        return [0.0] * 9
    hyp_split = [s.split(" ") for s in hyp]
    ref_split = [s.split(" ") for s in ref]
    hyp_words = [w for words in hyp_split for w in words]
    ref_words = [w for words in ref_split for w in words]
    out: list[float] = []
    hyp_unigrams, ref_unigrams = set(hyp_words), set(ref_words)  # as sets of 1-tuples: the same sizes and overlap
    for hyp_set, ref_set in ((hyp_unigrams, ref_unigrams),
                             (set(zip(hyp_words, hyp_words[1:])), set(zip(ref_words, ref_words[1:])))):
        overlap = len(hyp_set & ref_set)
        p = overlap / len(hyp_set) if hyp_set else 0.0
        r = overlap / len(ref_set) if ref_set else 0.0
        out += [r, p, 2.0 * ((p * r) / (p + r + 1e-8))]
    union: set[str] = set()
    for ref_w in ref_split:
        for hyp_w in hyp_split:
            union |= lcs_token_set(ref_w, hyp_w)
    llcs = len(union)
    r = llcs / len(ref_unigrams)
    p = llcs / len(hyp_unigrams)
    out += [r, p, 2.0 * ((p * r) / (p + r + 1e-8))]
    return out


def _fmeasure(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_score_scores(target: tuple, prediction: tuple, inter: Sequence[int]) -> list[float]:
    """``RougeScorer(['rouge1','rouge2','rougeL']).score`` on tokens: ``[p1,r1,f1, p2,r2,f2, pL,rL,fL]``, given the
    unigram and bigram overlaps of the two texts (:func:`~pdg_eval.metrics.ngrams.pair_overlaps`)."""
    out: list[float] = []
    for n in (1, 2):
        p = inter[n - 1] / max(len(prediction) - n + 1, 1)
        r = inter[n - 1] / max(len(target) - n + 1, 1)
        out += [p, r, _fmeasure(p, r)]
    if not target or not prediction:
        return out + [0, 0, 0]
    lcs = lcs_length(target, prediction)
    p, r = lcs / len(prediction), lcs / len(target)
    return out + [p, r, _fmeasure(p, r)]


def coco_rouge_l(candidate: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """pycocoevalcap 1.2 ``Rouge.calc_score``: max P and max R over references, then F_beta."""
    prec, rec = [], []
    for ref in refs:
        lcs = lcs_length(ref, candidate)
        prec.append(lcs / float(len(candidate)))
        rec.append(lcs / float(len(ref)))
    p, r = max(prec), max(rec)
    if p != 0 and r != 0:
        return ((1 + beta ** 2) * p * r) / float(r + beta ** 2 * p)
    return 0.0


class Rouge(MeanOfItems):
    """ROUGE of the response against its references, mean over items."""


@dataclass
class PltrdyOptions:
    """stat: which of recall, precision, F each value is; guards: CLV's patch for 1-token texts."""

    stat: str = option("r", choice_option(*_STATS))
    guards: str = option("none", choice_option("none", "clv"))


@register_metric("rouge", "pltrdy", default=True)
class PltrdyRouge(Rouge):
    description = "pltrdy rouge 1.0.1 get_scores on ' '.join(tokens); mean of stat (default r)"
    source = "Toyhom/CLV@a4c7bfe:Metrics.py:172-187; zhengyima/DHAP@5ec160f:evaluate.py:72-80"
    Options = PltrdyOptions
    fixed_signature = {"semantics": "set"}
    keys = ["rouge-1", "rouge-2", "rouge-l"]

    def item_stats(self, record: Record) -> list[float] | None:
        hyp_tokens = list(self.tok(record.response))
        refs = [self.tok(ref) for ref in record.references]
        if self.options.guards == "clv":
            # Toyhom/CLV@a4c7bfe:Metrics.py:175-180: skip 1-token targets, pad 1-token predictions
            refs = [r for r in refs if len(r) > 1]
            if not refs:
                return None
            if len(hyp_tokens) <= 1:
                hyp_tokens.append("<UNK>")
        hyp = " ".join(hyp_tokens)
        scores = [pltrdy_scores(hyp, " ".join(ref)) for ref in refs]
        return scores[0] if len(scores) == 1 else [max(col) for col in zip(*scores)]

    def item_values(self, stats: list[float] | None) -> dict[str, float] | None:
        if stats is None:
            return None  # skipped by CLV's guards
        k = ("r", "p", "f").index(self.options.stat)
        return {key: stats[3 * i + k] for i, key in enumerate(self.keys)}


@dataclass
class RougeScoreOptions:
    """stat: which of precision, recall, F each value is."""

    stat: str = option("f", choice_option(*_STATS))


@register_metric("rouge", "rouge_score")
class GoogleRouge(Rouge):
    description = ("google rouge-score 0.1.2 RougeScorer(use_stemmer=True); mean of stat (default f); "
                   "tok=rouge-score-nostem for use_stemmer=False, tok=char|jieba for Chinese")
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:35-44"
    default_tokenizer = "rouge-score"
    Options = RougeScoreOptions
    keys = ["rouge1", "rouge2", "rougeL"]

    def item_stats(self, record: Record) -> list[float]:
        return self.items_stats([record])[0]

    def items_stats(self, records: Sequence[Record]) -> list[list[float]]:
        """Per record the scores against its best reference (rouge-score's score_multi keeps the best F), the
        overlaps of all (reference, response) pairs counted at once."""
        pairs = [(self.tok(ref), self.tok(r.response)) for r in records for ref in r.references]
        scores = iter([rouge_score_scores(target, pred, inter)
                       for (target, pred), inter in zip(pairs, pair_overlaps(pairs, 2))])
        return [max([next(scores) for _ in r.references], key=lambda s: s[-1]) for r in records]

    def item_values(self, stats: list[float]) -> dict[str, float]:
        k = ("p", "r", "f").index(self.options.stat)
        return {key: stats[3 * i + k] for i, key in enumerate(self.keys)}


@register_metric("rouge", "coco")
class CocoRouge(Rouge):
    description = "pycocoevalcap ROUGE-L F_beta (beta=1.2) on ' '-split tokens, mean"
    source = "pycocoevalcap 1.2 rouge/rouge.py"
    fixed_signature = {"beta": "1.2"}
    keys = ["rouge-l"]

    def split(self, text: str) -> tuple[str, ...]:
        """pycocoevalcap splits the joined tokens on single spaces."""
        return tuple(" ".join(self.tok(text)).split(" "))

    def item_stats(self, record: Record) -> list[float]:
        return [coco_rouge_l(self.split(record.response), [self.split(r) for r in record.references])]

    def item_values(self, stats: list[float]) -> dict[str, float]:
        return {"rouge-l": stats[0]}

    def aggregate(self, stats: Sequence[list[float]]) -> dict[str, float]:
        import numpy as np

        return {"rouge-l": float(np.mean(np.array([s[0] for s in stats]))) if stats else 0.0}  # as pycocoevalcap


@register_metric("rouge", "pal_swapped")
class PalSwappedRouge(CocoRouge):
    description = "pycocoevalcap ROUGE-L with gts=generated, res=reference, as PAL calls it"
    source = "kylokano/PAL@cc8b8b5:decode_lora.py"
    bug_compatible = True

    def item_stats(self, record: Record) -> list[float]:
        return [coco_rouge_l(self.split(record.references[0]), [self.split(record.response)])]
