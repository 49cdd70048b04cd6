"""The pdg-eval record: one scored response, read from JSONL with ``file:line`` errors.

The JSON Schema in ``schemas/record.schema.json`` is the single definition of the format;
:func:`read_jsonl` decodes every line strictly (:func:`decode_json`: what Python's ``json`` would
accept but cannot round-trip, or fails on with an exception, is an :class:`InputError`), validates
it against the schema, then checks what a schema cannot (candidate counts, duplicate ids, one
language per run). Reading is streaming: only the set of ids seen is kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InputError
from .inputs import MAX_RECORD_BYTES, decode_json, iter_lines, load_schema, schema_problem

PARTNER, SELF = "partner", "you"


def speaker_roles(n_turns: int, last: str = PARTNER) -> list[str]:
    """Who spoke each of ``n_turns`` alternating turns, the last one being ``last``: in a record's context the last
    turn is the partner's (the response answers it); in a finished dialogue it is the speaker's own."""
    other = SELF if last == PARTNER else PARTNER
    return [last if (n_turns - 1 - i) % 2 == 0 else other for i in range(n_turns)]


@dataclass(slots=True)
class Record:
    """One response to score, with the inputs that produced it."""

    id: str
    response: str
    references: list[str]
    persona: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    candidates: list[str] | None = None
    candidate_scores: list[float] | None = None
    gold_index: int | None = None
    nll: list[float] | None = None
    samples: list[str] | None = None
    system: str | None = None
    language: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"
    line: int | None = None

    @property
    def reference(self) -> str:
        """The first (primary) reference."""
        return self.references[0]

    def to_json(self) -> dict[str, Any]:
        """The record as a schema-conformant dict (inverse of :func:`record_from_dict`)."""
        out: dict[str, Any] = {"id": self.id, "persona": self.persona, "context": self.context,
                               "response": self.response,
                               "reference": self.references[0] if len(self.references) == 1 else self.references}
        for name in ("candidates", "candidate_scores", "gold_index", "nll", "samples", "system", "language"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.meta:
            out["meta"] = self.meta
        return out


def record_schema() -> dict[str, Any]:
    """The JSON Schema of a record."""
    return load_schema("record")


def record_from_dict(obj: Any, source: str = "<memory>", line: int | None = None) -> Record:
    """Validate one decoded JSON value and build a :class:`Record`; raises :class:`InputError`."""
    problem = schema_problem(obj)
    if problem:
        raise InputError(source, line, *problem)
    refs = obj["reference"]
    references = [refs] if isinstance(refs, str) else list(refs)
    gold_index = obj.get("gold_index")
    rec = Record(
        id=_id_text(obj["id"]), response=obj["response"], references=references,
        persona=list(obj.get("persona", [])), context=list(obj.get("context", [])),
        candidates=obj.get("candidates"), candidate_scores=obj.get("candidate_scores"),
        gold_index=None if gold_index is None else int(gold_index), nll=obj.get("nll"), samples=obj.get("samples"),
        system=obj.get("system"), language=obj.get("language"), meta=obj.get("meta", {}),
        source=source, line=line,
    )
    _check_candidates(rec)
    return rec


def _id_text(value: str | int | float) -> str:
    """An id as text; an integral float such as ``1.0`` is the integer it equals (JSON Schema's ``integer``)."""
    return str(int(value)) if isinstance(value, float) else str(value)


def _finite(value: float) -> bool:
    """Whether ``value`` is a finite double (an integer too large for a double is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_candidates(rec: Record) -> None:
    where = (rec.source, rec.line)
    for name in ("candidate_scores", "nll"):
        values = getattr(rec, name)
        if values is not None and not all(_finite(v) for v in values):
            raise InputError(*where, name, "contains NaN or infinity (or a number beyond the range of a double)")
    if rec.candidate_scores is not None and rec.candidates is None:
        raise InputError(*where, "candidate_scores", "given without 'candidates'")
    if rec.candidates is None:
        if rec.gold_index is not None:
            raise InputError(*where, "gold_index", "given without 'candidates'")
        return
    if rec.candidate_scores is not None and len(rec.candidate_scores) != len(rec.candidates):
        raise InputError(*where, "candidate_scores",
                         f"{len(rec.candidate_scores)} scores for {len(rec.candidates)} candidates")
    if rec.gold_index is not None:
        if rec.gold_index >= len(rec.candidates):
            raise InputError(*where, "gold_index", f"{rec.gold_index} is out of range for {len(rec.candidates)} candidates")
    elif not any(c in rec.references for c in rec.candidates):
        raise InputError(*where, "candidates", "no candidate equals the reference; give 'gold_index'")


def read_jsonl(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Stream validated records from a JSONL file (each line read by :func:`decode_json`); blank lines are skipped.
    Ids must be unique: they are kept as 8-byte hashes while streaming, and after the last record a repeated hash
    sends a second pass after the two lines with the same id (the error names both), so memory stays small."""
    from array import array

    source = str(path)
    hashes = array("Q")
    for number, text in iter_lines(path, max_bytes):
        if not text.strip():
            continue
        rec = record_from_dict(decode_json(text, source, number), source, number)
        hashes.append(_id_hash(rec.id))
        yield rec
    _check_unique_ids(path, hashes, max_bytes)


def _id_hash(record_id: str) -> int:
    return hash(record_id) & 0xFFFF_FFFF_FFFF_FFFF


def _check_unique_ids(path: str | Path, hashes, max_bytes: int) -> None:
    """The error for the first line whose id an earlier line has, if any (hash collisions are told apart here)."""
    import numpy as np

    ordered = np.sort(np.frombuffer(hashes, dtype=np.uint64)) if len(hashes) else np.zeros(0, dtype=np.uint64)
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return
    source, seen = str(path), {}
    for number, text in iter_lines(path, max_bytes):
        if not text.strip():
            continue
        record_id = record_from_dict(decode_json(text, source, number), source, number).id
        if _id_hash(record_id) in repeated:
            if record_id in seen:
                raise InputError(source, number, "id", f"duplicate id {record_id!r} (first on line {seen[record_id]})")
            seen[record_id] = number


def check_consistent(records: Iterable[Record]) -> Iterator[Record]:
    """Pass records through, requiring one language per run (mixed files must be scored separately)."""
    language: str | None = None
    first_line: int | None = None
    for rec in records:
        lang = rec.language or "en"
        if language is None:
            language, first_line = lang, rec.line
        elif lang != language:
            raise InputError(rec.source, rec.line, "language",
                             f"{lang!r} differs from {language!r} (line {first_line}); score each language separately")
        yield rec


def write_jsonl(records: Iterable[Record], path: str | Path, parents: bool = False) -> int:
    """Write records as JSONL (atomically; ``parents`` creates a missing folder); returns the number written."""
    from .files import atomic_writer

    count = 0
    with atomic_writer(path, parents=parents) as handle:
        for rec in records:
            handle.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
