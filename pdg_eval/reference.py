"""Reference computations with the libraries the papers called, one item at a time.

Slow by design: parity tests and ``benchmarks/bench_lexical.py`` compare pdg-eval's fast
implementations against these. Needs the ``[test]`` extra (``rouge`` 1.0.1, ``pycocoevalcap``).
Each function takes records and returns ``(per_item_values or None, aggregate dict)``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Callable, Sequence

from .metrics.bleu import NLTK_PDG_WEIGHTS, PARLAI_WEIGHTS
from .records import Record
from .tokenize import get_tokenizer, normalize_answer

Result = tuple[list | None, dict[str, float]]


def _toks(records: Sequence[Record], tok: str) -> tuple[list[list[str]], list[list[list[str]]]]:
    t = get_tokenizer(tok)
    return [list(t(r.response)) for r in records], [[list(t(x)) for x in r.references] for r in records]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def nltk_sentence_avg(records: Sequence[Record], tok: str = "whitespace", smooth: bool = False) -> Result:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    fn = SmoothingFunction().method1 if smooth else None
    hyps, refs = _toks(records, tok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = [[sentence_bleu(r, h, NLTK_PDG_WEIGHTS[n], smoothing_function=fn) for n in range(1, 5)]
               for h, r in zip(hyps, refs)]
    return per, {f"bleu-{n}": _mean([p[n - 1] for p in per]) for n in range(1, 5)}


def nltk_corpus(records: Sequence[Record], tok: str = "whitespace") -> Result:
    from nltk.translate.bleu_score import corpus_bleu

    hyps, refs = _toks(records, tok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return None, {f"bleu-{n}": corpus_bleu(refs, hyps, NLTK_PDG_WEIGHTS[n]) for n in range(1, 5)}


def sacrebleu_corpus(records: Sequence[Record]) -> Result:
    from sacrebleu.metrics import BLEU

    hyps = [r.response for r in records]
    refs = [[r.reference for r in records]]
    return None, {f"bleu-{n}": BLEU(max_ngram_order=n).corpus_score(hyps, refs).score for n in range(1, 5)}


def paa_precision(records: Sequence[Record]) -> Result:
    from sacrebleu.metrics import BLEU

    score = BLEU().corpus_score([r.response for r in records], [[r.reference for r in records]])
    return None, {"bleu-1": score.precisions[0], "bleu-2": score.precisions[1]}


def _coco_inputs(records: Sequence[Record], tok: str, swapped: bool) -> tuple[dict, dict]:
    """pycocoevalcap's ``gts`` (references) and ``res`` (hypotheses); PAL passes them swapped."""
    hyps, refs = _toks(records, tok)
    gts = {i: [" ".join(x) for x in r] for i, r in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    if swapped:
        return res, {i: gts[i][:1] for i in gts}
    return gts, res


def coco_bleu(records: Sequence[Record], tok: str = "whitespace", swapped: bool = False) -> Result:
    from pycocoevalcap.bleu.bleu import Bleu

    gts, res = _coco_inputs(records, tok, swapped)
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return None, {f"bleu-{n}": score[n - 1] for n in range(1, 5)}


def parlai_bleu(records: Sequence[Record]) -> Result:
    from nltk.translate import bleu_score as nltkbleu

    per = []
    for r in records:
        refs = [normalize_answer(a).split(" ") for a in r.references]
        guess = normalize_answer(r.response).split(" ")
        per.append([nltkbleu.sentence_bleu(refs, guess, smoothing_function=nltkbleu.SmoothingFunction(epsilon=1e-12).method1,
                                           weights=PARLAI_WEIGHTS[k]) for k in range(1, 5)])
    return per, {f"bleu-{n}": _mean([p[n - 1] for p in per]) for n in range(1, 5)}


def clv_released(records: Sequence[Record], tok: str = "whitespace") -> Result:
    from nltk.translate.bleu_score import sentence_bleu

    hyps, refs = _toks(records, tok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = [[sentence_bleu(r[0], h, NLTK_PDG_WEIGHTS[n]) for n in range(1, 5)] for h, r in zip(hyps, refs)]
    return per, {f"bleu-{n}": _mean([p[n - 1] for p in per]) for n in range(1, 5)}


def idl_released(records: Sequence[Record]) -> Result:
    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = [[sentence_bleu([r.response], r.reference, weights=(1, 0, 0, 0))] for r in records]
    return per, {"bleu-1": _mean([p[0] for p in per])}


def pltrdy_rouge(records: Sequence[Record], tok: str = "whitespace") -> Result:
    from rouge import Rouge

    rouge = Rouge()
    hyps, refs = _toks(records, tok)
    per = []
    for h, r in zip(hyps, refs):
        try:
            s = rouge.get_scores(" ".join(h), " ".join(r[0]))[0]
            per.append([s[m][k] for m in ("rouge-1", "rouge-2", "rouge-l") for k in ("r", "p", "f")])
        except ValueError:  # empty hypothesis or reference: pdg-eval's documented rule scores 0
            per.append([0.0] * 9)
    return per, {k: _mean([p[3 * i] for p in per]) for i, k in enumerate(("rouge-1", "rouge-2", "rouge-l"))}


def rouge_score_f(records: Sequence[Record]) -> Result:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    per = []
    for r in records:
        s = scorer.score(r.reference, r.response)
        per.append([getattr(s[k], a) for k in ("rouge1", "rouge2", "rougeL") for a in ("precision", "recall", "fmeasure")])
    return per, {k: _mean([p[3 * i + 2] for p in per]) for i, k in enumerate(("rouge1", "rouge2", "rougeL"))}


def coco_rouge(records: Sequence[Record], tok: str = "whitespace", swapped: bool = False) -> Result:
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = _coco_inputs(records, tok, swapped)
    score, per = Rouge().compute_score(gts, res)
    return [[float(x)] for x in per], {"rouge-l": float(score)}


def distinct_corpus(records: Sequence[Record], tok: str = "whitespace") -> Result:
    """C1 as MORPHEUS's ``get_distinct`` writes it (string bigrams, list concatenation)."""
    hyps, _ = _toks(records, tok)
    unigrams, bigrams = [], []
    for temp in hyps:
        unigrams += temp
        for i in range(len(temp) - 1):
            bigrams.append(temp[i] + " " + temp[i + 1])
    return None, {"dist-1": len(set(unigrams)) / len(unigrams), "dist-2": len(set(bigrams)) / len(bigrams)}


def distinct_paa(records: Sequence[Record]) -> Result:
    """C2: PAA ``eval_distinct_avg`` (evaluation_helper.py:40-57) as written there."""
    import re
    import string

    candidates = []
    for sentence in (r.response for r in records):
        for punctuation in string.punctuation:
            sentence = sentence.replace(punctuation, " {} ".format(punctuation))
        candidates.append(re.sub(" +", " ", sentence).strip().split(" "))
    num_tokens = sum(len(c) for c in candidates)

    def count(n: int) -> int:
        grams = set()
        for resp in candidates:
            for i in range(len(resp) - n + 1):
                grams.add(" ".join(resp[i:i + n]))
        return len(grams)

    return None, {"dist-1": count(1) / num_tokens, "dist-2": count(2) / num_tokens}


def distinct_per_response(records: Sequence[Record]) -> Result:
    """C4: IDL's per-response distinct on ``word_tokenize`` tokens."""
    from nltk import word_tokenize

    per = []
    for r in records:
        tokens = word_tokenize(r.response, preserve_line=True)
        row = []
        for n in (1, 2):
            grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
            row.append(len(set(grams)) / len(grams) if grams else 0.0)
        per.append(row)
    return per, {"dist-1": _mean([p[0] for p in per]), "dist-2": _mean([p[1] for p in per])}


def texygen_self_bleu(records: Sequence[Record], tok: str = "treebank", gram: int = 3) -> Result:
    """Texygen ``SelfBleu`` (get_bleu_parallel semantics, computed serially): each response vs all others."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyps, _ = _toks(records, tok)
    weight = tuple(1.0 / gram for _ in range(gram))
    per = []
    for i, h in enumerate(hyps):
        others = hyps[:i] + hyps[i + 1:]
        per.append([sentence_bleu(others, h, weight, smoothing_function=SmoothingFunction().method1)])
    return per, {f"self-bleu-{gram}": _mean([p[0] for p in per])}


def parlai_f1(records: Sequence[Record]) -> Result:
    per = []
    for r in records:
        g = normalize_answer(r.response).split()
        best = 0.0
        for a in r.references:
            a_toks = normalize_answer(a).split()
            same = sum((Counter(g) & Counter(a_toks)).values())
            if same:
                p, rec = same / len(g), same / len(a_toks)
                best = max(best, 2 * p * rec / (p + rec))
        per.append([best])
    return per, {"f1": _mean([p[0] for p in per])}


#: metric label → reference function, for the default tokenizer of each variant
REFERENCES: dict[str, Callable[[Sequence[Record]], Result]] = {
    "bleu:nltk_sentence_avg": nltk_sentence_avg,
    "bleu:nltk_corpus": nltk_corpus,
    "bleu:sacrebleu": sacrebleu_corpus,
    "bleu:paa_precision": paa_precision,
    "bleu:coco": coco_bleu,
    "bleu:pal_swapped": lambda rs: coco_bleu(rs, swapped=True),
    "bleu:parlai": parlai_bleu,
    "bleu:clv_released": clv_released,
    "bleu:idl_released": idl_released,
    "rouge:pltrdy": pltrdy_rouge,
    "rouge:rouge_score": rouge_score_f,
    "rouge:coco": coco_rouge,
    "rouge:pal_swapped": lambda rs: coco_rouge(rs, swapped=True),
    "distinct:corpus": distinct_corpus,
    "distinct:paa": distinct_paa,
    "distinct:per_response": distinct_per_response,
    "f1:parlai": parlai_f1,
}
