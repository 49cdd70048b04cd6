"""Hits@1 over ranking candidates from model scores.

In ConvAI2's ``valid_self_original.txt`` the gold is always the LAST of 20 candidates, so a
ranking that breaks score ties by position can inflate Hits@1. Tie policies:

- ``miss`` (default): a tie for the top score counts as a miss unless every tied candidate is gold;
- ``stable``: the first-listed candidate wins ties (a stable sort by score, as ``sorted`` breaks them);
- ``random``: ties are broken uniformly at random with an explicit ``seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from ..records import Record
from .base import ItemScore, choice_option, int_option, note_scorer, option, register_metric, scorer_provenance


def gold_positions(record: Record) -> set[int]:
    """Gold candidate indices: ``gold_index`` if given, else every candidate whose text is a reference."""
    if record.gold_index is not None:
        return {record.gold_index}
    assert record.candidates is not None
    return {i for i, c in enumerate(record.candidates) if c in record.references}


def hit_at_1(scores: Sequence[float], gold: set[int], ties: str, rng: random.Random | None = None) -> float:
    top = max(scores)
    tied = [i for i, s in enumerate(scores) if s == top]
    if ties == "miss":
        return 1.0 if all(i in gold for i in tied) else 0.0
    if ties == "stable":
        return 1.0 if tied[0] in gold else 0.0
    assert rng is not None
    return 1.0 if rng.choice(tied) in gold else 0.0


@dataclass
class TiePolicy:
    """How a tie for the top score counts (seed: for ``ties=random``, unset: 0)."""

    ties: str = option("miss", choice_option("miss", "stable", "random"))
    seed: int | None = option(None, int_option(0))


@register_metric("hits@1", "scores", default=True)
class Hits(ItemScore):
    description = "top-scored candidate is gold; documented tie policy"
    source = "facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:1029-1050"
    default_tokenizer = None
    requires = ("candidate_scores",)
    Options = TiePolicy
    keys = ["hits@1"]

    def scored_against(self) -> tuple[str, ...]:
        return ("candidates", "references")  # the gold is the candidate equal to a reference, or gold_index

    parallel_safe = False  # it records which model filled the records (the signature's provenance)

    def setup(self) -> None:
        if self.options.ties == "random":
            self.options.seed = 0 if self.options.seed is None else self.options.seed
        elif self.options.seed is not None:
            raise self.option_error("seed= applies only to ties=random")
        self.scored_by: set[tuple[str, ...]] = set()

    def signature_options(self) -> dict:
        return {**super().signature_options(), **scorer_provenance(self.scored_by)}

    def item_stats(self, record: Record) -> float:
        assert record.candidate_scores is not None
        note_scorer(self.scored_by, record, "candidate_scores")
        rng = None
        if self.options.ties == "random":
            rng = random.Random(f"{self.options.seed}:{record.id}")  # per item, so order-independent
        return hit_at_1(record.candidate_scores, gold_positions(record), self.options.ties, rng)
