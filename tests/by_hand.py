"""Scoring a few hand-made records with one metric spec, for the families' hand-computed cases."""

from __future__ import annotations

from pdg_eval.metrics.base import build_metric
from pdg_eval.records import Record


def score(spec: str, responses: list[str], references: list[str] | None = None,
          personas: list[list[str]] | None = None) -> dict[str, float]:
    """``spec`` on records built from parallel lists (references default to ``-``, personas to none)."""
    metric = build_metric(spec)
    records = [Record(id=str(i), response=text, references=[references[i] if references else "-"],
                      persona=list(personas[i]) if personas else [])
               for i, text in enumerate(responses)]
    return metric.aggregate([metric.item_stats(r) for r in records])
