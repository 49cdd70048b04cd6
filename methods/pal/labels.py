"""PAL's persona labels (one relevant persona sentence per turn, or none) and the parse of a generated selection.

The release's data carries ``persona_label`` = one 0-based index or −1 (kylokano/PAL@cc8b8b5:persona_datasets.py) but
no script that made it, so the labels are rebuilt from a score per (persona sentence, gold response) pair:
``nli`` — P(entailment) of the pair under an NLI scorer (persona first; default: the one shipped with pdg-eval),
threshold 0.5; ``cosine`` — sentence-embedding cosine (all-MiniLM-L6-v2), threshold chosen on labelled NLI pairs;
``overlap`` — the share of the response's content words found in the sentence (the only one without a model, and the
one for Chinese). A turn is labelled with its best-scoring sentence when that score reaches the threshold, else −1:
never two labels.

At inference the select pass's text is parsed back to an index: a leading ``"<k>."`` / ``"<k>。"`` (1-based), else
the no-persona answer, else the persona sentence the text matches closely (difflib ratio ≥ 0.8), else none.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from typing import Sequence

from pdg_eval.tokenize import casefold_spaces

from .prompts import NO_PERSONA

LABEL_METHODS = ("nli", "cosine", "overlap")
#: per label method, the score a sentence must reach. nli: P(entailment) 0.5. cosine (all-MiniLM-L6-v2) and overlap:
#: :func:`calibrate_threshold` on the 3,158 DNLI-style pairs of RCDG's nli-valid.txt (entailment vs the rest), where
#: they reach 83.6% and 81.9% accuracy (``tests/test_pal_labels.py`` recomputes both)
THRESHOLDS = {"nli": 0.5, "cosine": 0.4542, "overlap": 0.0455}
NO_LABEL = -1
#: difflib similarity a selection must reach to count as a persona sentence written without its number
FUZZY_CUTOFF = 0.8
_NUMBERED = re.compile(r"^\s*(\d+)[.。]")


def best_above(scores: Sequence[float], threshold: float) -> int:
    """Index of the highest score (the first on ties) if it reaches ``threshold``, else −1."""
    if not scores:
        return NO_LABEL
    best = max(range(len(scores)), key=scores.__getitem__)
    return best if scores[best] >= threshold else NO_LABEL


def calibrate_threshold(scores: Sequence[float], positive: Sequence[bool]) -> tuple[float, float]:
    """The threshold t that maximises the accuracy of "score ≥ t ⇔ positive" on labelled pairs (a midpoint between
    two consecutive distinct scores; the smallest such t on ties) and that accuracy."""
    import numpy as np

    values, truth = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    if values.size == 0 or values.size != truth.size:
        raise ValueError("calibrate_threshold needs as many labels as scores, at least one")
    order = np.argsort(-values, kind="stable")
    values, truth = values[order], truth[order]
    # cut i: the first i scores (the highest) are called positive; only cuts between distinct values are possible
    true_pos = np.concatenate([[0], np.cumsum(truth)])
    cuts = np.arange(values.size + 1)
    correct = true_pos + ((~truth).sum() - (cuts - true_pos))
    allowed = np.ones(values.size + 1, dtype=bool)
    allowed[1:-1] = values[:-1] != values[1:]
    best = int(np.flatnonzero(allowed & (correct == correct[allowed].max()))[-1])
    if best == 0:
        threshold = float(values[0]) + 1.0
    elif best == values.size:
        threshold = float(values[-1])
    else:
        threshold = float(values[best - 1] + values[best]) / 2
    return threshold, float(correct[best] / values.size)


def persona_labels(score_rows: Sequence[Sequence[float]], threshold: float) -> list[int]:
    """One label per turn from its row of per-sentence scores."""
    return [best_above(row, threshold) for row in score_rows]


def label_statistics(labels: Sequence[int], persona_sizes: Sequence[int]) -> dict:
    """How many turns got a label, and at which persona position (recorded with a run)."""
    counts = Counter(labels)
    labelled = len(labels) - counts[NO_LABEL]
    return {"turns": len(labels), "labelled": labelled, "none": counts[NO_LABEL],
            "labelled_share": labelled / len(labels) if labels else 0.0,
            "by_position": {str(k + 1): counts[k] for k in range(max(persona_sizes, default=0)) if counts[k]},
            "mean_persona_sentences": sum(persona_sizes) / len(persona_sizes) if persona_sizes else 0.0}


def overlap_scores(persona: Sequence[str], response: str, language: str = "en") -> list[float]:
    """Per persona sentence, the share of the response's content words it contains: ParlAI-normalised words minus
    scikit-learn's English stop words (English), jieba words without punctuation (Chinese)."""
    from pdg_eval.metrics.overlap import builtin_stopwords
    from pdg_eval.tokenize import get_tokenizer

    if language == "zh":
        tokenize, stop = get_tokenizer("jieba"), frozenset()
    else:
        tokenize, stop = get_tokenizer("parlai"), builtin_stopwords("sklearn")

    def content(text: str) -> set[str]:
        return {w for w in tokenize(text) if w not in stop and any(c.isalnum() for c in w)}

    words = content(response)
    return [len(words & content(sentence)) / len(words) if words else 0.0 for sentence in persona]


def nli_scores(pairs: Sequence[tuple[str, str]], model: str, progress: bool = False) -> list[float]:
    """P(entailment) of each (persona sentence, response) pair under an NLI scorer trained persona first."""
    from pdg_eval.errors import ConfigError
    from pdg_eval.models.nli_labels import ENTAILMENT, canonical_label_map, fits_premise
    from pdg_eval.models.runtime import ModelFolder, load_pair_classifier

    folder = ModelFolder(model)
    if not fits_premise(folder.premise_order, "persona"):
        raise ConfigError(f"{model} was trained {folder.premise_order}; PAL's labels feed the persona sentence first")
    classifier = load_pair_classifier(model)
    entail = next(i for i, c in canonical_label_map(classifier.id2label).items() if c == ENTAILMENT)
    return [p[entail] for p in classifier.predict_proba(list(pairs), progress=progress)]


def cosine_scores(pairs: Sequence[tuple[str, str]], encoder: str) -> list[float]:
    """Cosine of the sentence embeddings of each (persona sentence, response) pair (each text encoded once)."""
    import numpy as np

    from pdg_eval.models.runtime import load_sentence_encoder

    texts = sorted({t for pair in pairs for t in pair})
    row = {text: i for i, text in enumerate(texts)}
    vectors = np.asarray(load_sentence_encoder(encoder).encode(texts))  # unit length
    left, right = vectors[[row[x] for x, _ in pairs]], vectors[[row[y] for _, y in pairs]]
    return np.einsum("nd,nd->n", left, right).tolist()


def _normalise(text: str) -> str:
    return casefold_spaces(text).rstrip(".。 ")


def parse_selection(text: str, persona: Sequence[str], language: str = "en") -> int:
    """The persona index (0-based) a select pass chose, or −1 (none, or nothing recognisable)."""
    text = text.strip()
    numbered = _NUMBERED.match(text)
    if numbered:
        index = int(numbered.group(1)) - 1
        return index if 0 <= index < len(persona) else NO_LABEL
    if _normalise(text).startswith(_normalise(NO_PERSONA[language])):
        return NO_LABEL
    sentences = [_normalise(s) for s in persona]
    close = difflib.get_close_matches(_normalise(text), sentences, n=1, cutoff=FUZZY_CUTOFF)
    return sentences.index(close[0]) if close else NO_LABEL
