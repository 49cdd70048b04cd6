"""Input readers: pdg-eval JSONL, ConvAI2 (ParlAI text) and published system-output formats.

:func:`open_records` picks a reader by format name or by sniffing the file; every reader streams and
reports malformed input as :class:`~pdg_eval.errors.InputError` (``file:line: field: problem``).
"""

from __future__ import annotations

import warnings
from itertools import islice
from pathlib import Path
from typing import Iterator

from ..errors import ConfigError, InputError
from ..inputs import MAX_RECORD_BYTES, iter_lines
from ..records import Record, read_jsonl
from .align import AlignmentReport, align_on_reference, match_key
from .outputs import LmedrRow, line_records, lmedr_records, read_lines, read_lmedr, read_paa
from .parlai import ConvAI2Turn, convai2_records, read_convai2

FORMATS = ("jsonl", "convai2", "paa", "lmedr", "lines")
SNIFF_LINES = 10

__all__ = [
    "FORMATS", "AlignmentReport", "ConvAI2Turn", "LmedrRow", "align_on_reference", "convai2_records", "line_records",
    "lmedr_records", "match_key", "open_records", "read_convai2", "read_lines", "read_lmedr", "read_paa", "sniff_format",
    "with_dataset_fields",
]


def sniff_format(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> str:
    """Guess the format of ``path`` from its suffix and first lines; ``"lines"`` when nothing else fits."""
    if Path(path).suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    head = [text for _, text in islice(iter_lines(path, max_bytes), SNIFF_LINES)]
    filled = [text.strip() for text in head if text.strip()]
    if not filled:
        return "lines"
    if filled[0].startswith("{"):
        return "jsonl"
    if head[0] == "\t".join(("persona", "query", "response")):
        return "lmedr"
    if any(t.startswith(("dist1:", "GT:")) or t == "==========" for t in filled):
        return "paa"
    if filled[0].startswith(("1 your persona:", "1 partner's persona:")):
        return "convai2"
    return "lines"


def _reject(fmt: str, **given: object) -> None:
    names = [name for name, value in given.items() if value is not None]
    if names:
        raise ConfigError(f"format {fmt!r} does not use {', '.join(names)}")


def open_records(path: str | Path, fmt: str = "auto", dataset: str | Path | None = None, refs: str | Path | None = None,
                 max_bytes: int = MAX_RECORD_BYTES, hypotheses: str | Path | None = None) -> Iterator[Record]:
    """Records from ``path`` in format ``fmt`` (one of :data:`FORMATS`, or ``"auto"`` to sniff).

    * ``jsonl``: pdg-eval records (:func:`~pdg_eval.records.read_jsonl`); with ``dataset``, records that leave out
      persona and context get them from the dataset turn with the same id (:func:`with_dataset_fields`).
    * ``convai2``: ParlAI ConvAI2 text; responses from the ``hypotheses`` file (one per line), else the gold.
    * ``paa``: PAA GT/PD blocks; with ``dataset``, aligned on the reference (dataset order; unmatched rows
      are dropped with a warning, see :func:`align_on_reference`).
    * ``lmedr``: LMEDR TSV, joined with ``dataset`` (required).
    * ``lines``: one response per line, with ``refs`` (line-aligned references) and/or ``dataset``.

    Arguments are checked and the format sniffed before returning; records are read lazily.
    """
    if fmt == "auto":
        fmt = sniff_format(path, max_bytes)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown input format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    source = str(path)
    if fmt == "jsonl":
        _reject(fmt, refs=refs, hypotheses=hypotheses)
        records = read_jsonl(path, max_bytes)
        return records if dataset is None else with_dataset_fields(records, dataset, max_bytes)
    if fmt == "convai2":
        _reject(fmt, dataset=dataset, refs=refs)
        hyps = None if hypotheses is None else (text for _, text in read_lines(hypotheses, max_bytes))
        return convai2_records(path, hyps, str(hypotheses), max_bytes)
    _reject(fmt, hypotheses=hypotheses)
    if fmt == "paa":
        _reject(fmt, refs=refs)
        return read_paa(path, max_bytes) if dataset is None else _aligned_paa(path, dataset, max_bytes)
    if fmt == "lmedr":
        _reject(fmt, refs=refs)
        if dataset is None:
            raise InputError(source, None, None, "LMEDR rows have no reference: give the ConvAI2 dataset (ParlAI text "
                                                 "file) they were generated from")
        return lmedr_records(path, dataset, max_bytes)
    if dataset is None and refs is None:
        raise InputError(source, None, None, "read as one response per line, which has no reference: give a "
                                             "line-aligned reference file or the ConvAI2 dataset")
    return line_records(path, refs, dataset, max_bytes)


def with_dataset_fields(records: Iterator[Record], dataset: str | Path, max_bytes: int = MAX_RECORD_BYTES
                        ) -> Iterator[Record]:
    """Records joined by id (``"{dialogue}-{turn}"``) with a ConvAI2 dataset: an empty persona or context is taken
    from the dataset turn (so that run outputs need not copy the dataset), and the reference must be that turn's gold
    — an unknown id or another reference raises :class:`InputError` at the record's line."""
    turns = {turn.id: turn for turn in convai2_records(dataset, max_bytes=max_bytes)}
    for rec in records:
        turn = turns.get(rec.id)
        if turn is None:
            raise InputError(rec.source, rec.line, "id", f"{rec.id!r} is not a turn of {dataset}")
        if rec.references != turn.references:
            raise InputError(rec.source, rec.line, "reference",
                             f"{rec.references[0]!r} is not the gold of turn {rec.id} in {dataset} "
                             f"({turn.references[0]!r})")
        rec.persona = rec.persona or turn.persona
        rec.context = rec.context or turn.context
        yield rec


def _aligned_paa(path: str | Path, dataset: str | Path, max_bytes: int) -> Iterator[Record]:
    report, records = align_on_reference(read_paa(path, max_bytes), dataset, max_bytes=max_bytes)
    if report.unmatched:
        lines = ", ".join(str(n) for n in report.unmatched_lines[:5])
        warnings.warn(f"{path}: {report.summary()}; unmatched GT lines {lines}"
                      f"{', …' if report.unmatched > 5 else ''} are left out", stacklevel=2)
    yield from records
