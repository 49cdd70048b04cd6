"""Metric implementations; importing :func:`load_all` registers every metric."""

from __future__ import annotations


def load_all() -> None:
    """Import every metric module so that their ``@register_metric`` decorators run."""
    from . import bleu, cohcon, distinct, embedding, nli, overlap, ppl, ranking, rouge, selfbleu  # noqa: F401
