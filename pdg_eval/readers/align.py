"""Align outputs that are not in dataset order with ConvAI2 turns by their reference text.

Needed for ``hqsiswiliam/persona-adaptive-attention@49ad997:generated_text/PAA.txt`` (and
``@2539c5c:generated_text/encoder_gpt.txt``), whose GT/PD pairs are shuffled and whose GT is
de-tokenised (``!!!`` for ``! ! !``, ``they're.`` for ``they're .``). Both sides are compared after
:func:`match_key`: lowercase, without whitespace or punctuation.
"""

from __future__ import annotations

import string
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..inputs import MAX_RECORD_BYTES
from ..records import Record
from .parlai import ConvAI2Turn, read_convai2, turn_record

_DROP_ASCII = str.maketrans("", "", string.whitespace + string.punctuation)


def match_key(text: str) -> str:
    """``text`` lowercased, with every whitespace and punctuation character (ASCII or Unicode ``P*``) removed."""
    key = text.lower().translate(_DROP_ASCII)
    if key.isascii():
        return key
    return "".join(c for c in key if not c.isspace() and not unicodedata.category(c).startswith("P"))


@dataclass(slots=True)
class AlignmentReport:
    """How many output records found a dataset turn with the same reference key."""

    matched: int = 0
    unmatched_lines: list[int | None] = field(default_factory=list)  # source lines of output records with no turn
    unmatched_examples: list[str] = field(default_factory=list)  # references of the first few of them
    unmatched_turns: int = 0  # dataset turns no output record was assigned to

    @property
    def unmatched(self) -> int:
        """Number of output records without a dataset turn."""
        return len(self.unmatched_lines)

    def summary(self) -> str:
        """One line, e.g. ``7801 matched, 0 output rows unmatched, 0 dataset turns unmatched``."""
        return (f"{self.matched} matched, {self.unmatched} output rows unmatched, "
                f"{self.unmatched_turns} dataset turns unmatched")


def align_on_reference(records: Iterable[Record], dataset_path: str | Path, examples: int = 5,
                       max_bytes: int = MAX_RECORD_BYTES) -> tuple[AlignmentReport, list[Record]]:
    """Match each record's reference to a ConvAI2 gold response; returns ``(report, aligned records)``.

    Equal keys (duplicate golds) are assigned in order: the first unused dataset turn goes to the first
    output record with that key. Aligned records are in dataset order, with id, persona, context,
    candidates and reference from the dataset (so that every system aligned to one dataset is scored
    against the same gold), the response from the output, and ``source``/``line`` of the output
    (``meta["dataset_line"]`` holds the turn's line, ``meta["output_id"]`` the output id and
    ``meta["output_reference"]`` the output's own copy of the gold, e.g. PAA's de-tokenised GT).
    Unmatched records are left out and counted in the report.
    """
    dataset = str(dataset_path)
    turns = list(read_convai2(dataset_path, max_bytes))
    free: dict[str, deque[int]] = defaultdict(deque)
    for index, turn in enumerate(turns):
        free[match_key(turn.response)].append(index)
    report = AlignmentReport()
    pairs: list[tuple[int, Record]] = []
    for rec in records:
        slots = free.get(match_key(rec.reference))
        if not slots:
            report.unmatched_lines.append(rec.line)
            if len(report.unmatched_examples) < examples:
                report.unmatched_examples.append(rec.reference)
            continue
        pairs.append((slots.popleft(), rec))
    report.matched = len(pairs)
    report.unmatched_turns = len(turns) - len(pairs)
    pairs.sort(key=lambda pair: pair[0])
    return report, [_aligned(turns[index], dataset, rec) for index, rec in pairs]


def _aligned(turn: ConvAI2Turn, dataset: str, rec: Record) -> Record:
    out = turn_record(turn, dataset, response=rec.response, source=rec.source, line=rec.line)
    out.meta = {**rec.meta, **out.meta, "output_id": rec.id, "output_reference": rec.reference}
    out.system, out.language = rec.system, rec.language
    return out
