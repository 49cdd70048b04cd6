"""PAA's "F1" (hqsiswiliam/persona-adaptive-attention@2539c5c:run_test_f1.py:78-90): macro F1 over
token-id classes under teacher forcing, padding included — not ParlAI's word F1. It needs the
model's argmax ids, so it is a function for model runners, not a record metric."""

from __future__ import annotations

from typing import Sequence


def token_macro_f1(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """``sklearn.metrics.f1_score(predicted, labels, average='macro')`` with sklearn's argument order
    (y_true = predicted, as PAA calls it) and zero_division=0, over the union of classes."""
    if len(predicted) != len(labels):
        raise ValueError("predicted and labels must have the same length")
    classes = sorted(set(predicted) | set(labels))
    scores = []
    for c in classes:
        tp = sum(1 for p, t in zip(predicted, labels) if p == c and t == c)
        n_true = sum(1 for p in predicted if p == c)
        n_pred = sum(1 for t in labels if t == c)
        scores.append(2 * tp / (n_true + n_pred) if tp else 0.0)
    return sum(scores) / len(scores)
