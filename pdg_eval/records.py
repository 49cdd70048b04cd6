"""The pdg-eval record: one scored response, read from JSONL with ``file:line`` errors.

The JSON Schema in ``schemas/record.schema.json`` is the single definition of the format;
:func:`read_jsonl` validates every line against it, then checks what a schema cannot
(candidate counts, duplicate ids, one language per run). Reading is streaming: only the
set of ids seen is kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

import jsonschema

from .errors import InputError

MAX_RECORD_BYTES = 1 << 20  # 1 MiB; a longer line is almost always a degenerate generation


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


@lru_cache(maxsize=1)
def record_schema() -> dict[str, Any]:
    """The JSON Schema of a record."""
    return json.loads(resources.files("pdg_eval").joinpath("schemas/record.schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(record_schema())


def _schema_problem(obj: Any) -> tuple[str, str] | None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(obj))
    if error is None:
        return None
    field_name = ".".join(str(p) for p in error.absolute_path) or "record"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return missing, "missing required field"
    if error.validator == "oneOf" and field_name == "reference":
        return field_name, "must be a string or a non-empty list of strings"
    return field_name, error.message


def record_from_dict(obj: Any, source: str = "<memory>", line: int | None = None) -> Record:
    """Validate one decoded JSON value and build a :class:`Record`; raises :class:`InputError`."""
    problem = _schema_problem(obj)
    if problem:
        raise InputError(source, line, *problem)
    refs = obj["reference"]
    references = [refs] if isinstance(refs, str) else list(refs)
    rec = Record(
        id=str(obj["id"]), response=obj["response"], references=references,
        persona=list(obj.get("persona", [])), context=list(obj.get("context", [])),
        candidates=obj.get("candidates"), candidate_scores=obj.get("candidate_scores"),
        gold_index=obj.get("gold_index"), nll=obj.get("nll"), samples=obj.get("samples"),
        system=obj.get("system"), language=obj.get("language"), meta=obj.get("meta", {}),
        source=source, line=line,
    )
    _check_candidates(rec)
    return rec


def _check_candidates(rec: Record) -> None:
    where = (rec.source, rec.line)
    for name in ("candidate_scores", "nll"):
        values = getattr(rec, name)
        if values is not None and not all(math.isfinite(v) for v in values):
            raise InputError(*where, name, "contains NaN or infinity")
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


def iter_lines(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 file (a leading BOM is accepted), streaming.

    Non-UTF-8 bytes and lines longer than ``max_bytes`` raise :class:`InputError`.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw) > max_bytes:
                raise InputError(str(path), number, "record",
                                 f"line is {len(raw) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit "
                                 "(raise it with --max-record-bytes)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(str(path), number, "record",
                                 f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
            yield number, text.rstrip("\r\n")


def read_jsonl(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Stream validated records from a JSONL file; blank lines are skipped."""
    source = str(path)
    seen: dict[str, int] = {}
    for number, text in iter_lines(path, max_bytes):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(source, number, "record", f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        rec = record_from_dict(obj, source, number)
        if rec.id in seen:
            raise InputError(source, number, "id", f"duplicate id {rec.id!r} (first on line {seen[rec.id]})")
        seen[rec.id] = number
        yield rec


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


def write_jsonl(records: Iterable[Record], path: str | Path) -> int:
    """Write records as JSONL (atomically); returns the number written."""
    from .report import atomic_writer

    count = 0
    with atomic_writer(path) as handle:
        for rec in records:
            handle.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
