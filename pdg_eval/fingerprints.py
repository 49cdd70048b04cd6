"""Per-item fingerprints of what a response was scored against (references, persona, context, candidates).

Paired significance tests compare two systems item by item; pairing by id alone would silently compare responses
scored against different references or personas. Every scored item therefore carries a short hash of each field its
metrics read (``Metric.scored_against``), stored in the score JSON, and :func:`check_paired` refuses to pair items
whose hashes differ.
"""

from __future__ import annotations

import hashlib
import json
from typing import Mapping, Sequence

from .errors import ConfigError
from .records import Record

#: The fields a metric can be scored against; ``candidates`` includes ``gold_index``.
FIELDS = ("references", "persona", "context", "candidates")
DIGEST_CHARS = 16


def item_fingerprint(record: Record, field: str) -> str:
    """A short sha256 of one field of a record (canonical JSON, so equal values give equal hashes)."""
    value: object = getattr(record, field)
    if field == "candidates":
        value = [record.candidates, record.gold_index]
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]


def check_paired(names: Sequence[str], fingerprints: Sequence[Mapping[str, Sequence[str]]],
                 positions: Sequence[Sequence[int]], ids: Sequence[str], fields: Sequence[str]) -> None:
    """Refuse to pair items whose fingerprints differ between systems.

    ``positions[k][i]`` is the index in system ``k`` of the ``i``-th shared id ``ids[i]``; only ``fields`` (those
    the compared metrics read) are checked; a system without fingerprints for one of them (a score JSON of an
    older pdg-eval) cannot be paired.
    """
    for field in fields:
        for k, name in enumerate(names):
            if field not in fingerprints[k]:
                raise ConfigError(f"{name} has no item fingerprints of its {field} (a score JSON written before "
                                  f"pdg-eval recorded them?): re-score it so its items can be paired safely")
        for k in range(1, len(names)):
            mine, theirs = fingerprints[0][field], fingerprints[k][field]
            differ = [i for i in range(len(ids)) if mine[positions[0][i]] != theirs[positions[k][i]]]
            if differ:
                raise ConfigError(
                    f"{names[0]} and {names[k]} were scored against different {field} on {len(differ)} of the "
                    f"{len(ids)} items they share (first: id {ids[differ[0]]!r}); paired tests need the same "
                    f"{field} for every item: score both against the same dataset")
