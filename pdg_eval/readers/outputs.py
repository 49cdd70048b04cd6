"""Readers for published system outputs on the ConvAI2 validation set.

* PAA / Encoder-GPT2 ``GT:``/``PD:`` blocks:
  ``hqsiswiliam/persona-adaptive-attention@49ad997:generated_text/PAA.txt`` and
  ``@2539c5c:generated_text/encoder_gpt.txt`` (not in dataset order; see :mod:`.align`).
* LMEDR TSV ``persona<TAB>query<TAB>response``: ``Chenrj233/LMEDR@b0db3d3:results/persona_{original,revised}.tsv``
  (dataset order, no reference).
* One response per line: ``ChanLiang/SC-GPT@571cd04:decode-results/{hyp-*,ref}`` (dataset order).
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..inputs import MAX_RECORD_BYTES, iter_lines
from ..records import Record
from .parlai import ConvAI2Turn, pair_exactly, read_convai2, turn_record

PAA_SEPARATOR = "=========="
_SURROGATE = re.compile("[\ud800-\udfff]")  # Python literals can escape them; no text file can hold one
LMEDR_HEADER = ["persona", "query", "response"]


# ---------------------------------------------------------------------------------------------- PAA


def _paa_text(line: str) -> str:
    """Text of a ``GT: text `` / ``PD: text `` line: prefix and the writer's trailing space removed."""
    text = line[3:]
    text = text[1:] if text.startswith(" ") else text
    return text[:-1] if text.endswith(" ") else text


def _paa_record(source: str, k: int, block: dict[str, tuple[int, str]], end: int) -> Record:
    for have, missing in (("GT", "PD"), ("PD", "GT")):
        if missing not in block:
            line = block[have][0]
            raise InputError(source, line, missing, f"block has a '{have}:' line but no '{missing}:' line "
                                                    f"(block ends on line {end})")
    gt_line, gt = block["GT"]
    pd_line, pd = block["PD"]
    return Record(id=f"paa-{k}", response=pd, references=[gt], source=source, line=gt_line,
                  meta={"pd_line": pd_line})


def read_paa(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Stream ``GT``/``PD`` pairs of a PAA output file as records ``paa-0``, ``paa-1``, … in file order.

    Lines before the first ``==========`` are the header (``dist1: …``); blocks are separated by
    ``==========`` and hold one ``GT: text `` and one ``PD: text `` line. ``response`` = PD,
    ``references`` = [GT], ``line`` = the GT line (the PD line is in ``meta["pd_line"]``). No persona or
    context: align with the dataset through :func:`pdg_eval.readers.align.align_on_reference`.
    """
    source = str(path)
    in_header = True
    block: dict[str, tuple[int, str]] = {}
    count = 0
    number = 0
    for number, text in iter_lines(path, max_bytes):
        if text.rstrip() == PAA_SEPARATOR:
            if block:
                yield _paa_record(source, count, block, number)
                count += 1
            in_header, block = False, {}
        elif text.startswith(("GT:", "PD:")):
            key = text[:2]
            if key in block:
                raise InputError(source, number, key, f"second '{key}:' line in one block (first on line {block[key][0]}); "
                                                      f"blocks are separated by '{PAA_SEPARATOR}'")
            in_header = False
            block[key] = (number, _paa_text(text))
        elif text.strip() and not in_header:
            raise InputError(source, number, None, f"unexpected line; expected 'GT: ', 'PD: ' or '{PAA_SEPARATOR}'")
    if block:
        yield _paa_record(source, count, block, number)


# -------------------------------------------------------------------------------------------- LMEDR


@dataclass(slots=True)
class LmedrRow:
    """One row of an LMEDR results TSV (no reference; join with the dataset via :func:`lmedr_records`)."""

    persona: list[str]
    query: str
    response: str
    line: int


def _lmedr_persona(source: str, line: int, text: str) -> list[str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InputError(source, line, "persona", "not a Python list literal of strings") from None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InputError(source, line, "persona", f"expected a list of strings, got {type(value).__name__}")
    for k, sentence in enumerate(value):
        if (surrogate := _SURROGATE.search(sentence)) is not None:
            raise InputError(source, line, f"persona.{k}", f"escape of U+{ord(surrogate.group()):04X}, a lone "
                                                           "surrogate (half of a UTF-16 pair), not a character")
    return [s.strip() for s in value]


def read_lmedr(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[LmedrRow]:
    """Stream the rows of an LMEDR ``persona<TAB>query<TAB>response`` TSV (csv quoting).

    ``persona`` is parsed with :func:`ast.literal_eval` and each sentence stripped; ``query`` is
    stripped; ``response`` is kept verbatim. ``line`` is the row's first line in the file.
    """
    source = str(path)
    reader = csv.reader((text + "\n" for _, text in iter_lines(path, max_bytes)), delimiter="\t")
    line = 1
    try:
        header = next(reader, None)
        if header != LMEDR_HEADER:
            raise InputError(source, 1, "header", f"expected {chr(9).join(LMEDR_HEADER)!r}, found "
                                                  f"{chr(9).join(header or [])!r}")
        line = reader.line_num + 1
        for row in reader:
            if len(row) != 3:
                raise InputError(source, line, None,
                                 f"{len(row)} tab-separated fields, expected 3 (persona, query, response)")
            yield LmedrRow(_lmedr_persona(source, line, row[0]), row[1].strip(), row[2], line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(source, line, None, f"malformed TSV: {exc}") from None


def lmedr_records(path: str | Path, dataset_path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Join LMEDR row k with ConvAI2 turn k (dataset order) into records.

    Reference, context and candidates come from the dataset; the persona is LMEDR's own (the revised
    one in ``persona_revised.tsv``). A query that differs from the dataset's partner utterance (after
    ``strip``) or a row count that differs from the turn count raises :class:`InputError` at the TSV line.
    """
    source, dataset = str(path), str(dataset_path)
    rows = ((row.line, row) for row in read_lmedr(path, max_bytes))
    turns = read_convai2(dataset_path, max_bytes)
    for turn, line, row in pair_exactly(turns, rows, source, "rows", "rows", "the dataset has {n} turns"):
        _check_query(source, row, turn)
        yield turn_record(turn, dataset, response=row.response, persona=row.persona, source=source, line=line)


def _check_query(source: str, row: LmedrRow, turn: ConvAI2Turn) -> None:
    if row.query != turn.query.strip():
        raise InputError(source, row.line, "query",
                         f"{row.query!r} differs from the dataset's partner utterance {turn.query.strip()!r} "
                         f"(line {turn.line}); rows must be in dataset order")


# -------------------------------------------------------------------------------------------- lines


def read_lines(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, str]]:
    """Stream ``(line_number, text)`` of a one-response-per-line file (empty lines are empty responses)."""
    return iter_lines(path, max_bytes)


def line_records(hyp_path: str | Path, ref_path: str | Path | None = None, dataset_path: str | Path | None = None,
                 max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Zip a hypothesis file with a line-aligned reference file and/or the ConvAI2 dataset.

    With ``dataset_path``: persona, context, candidates and id from the dataset; references from
    ``ref_path`` if given, else the dataset gold. With ``ref_path`` only: id ``"line-{k}"`` (1-based),
    no persona or context. Line counts must agree (:class:`InputError` at the file that differs).
    """
    hyp_source = str(hyp_path)
    hyps = read_lines(hyp_path, max_bytes)
    if dataset_path is None:
        if ref_path is None:
            raise InputError(hyp_source, None, None, "a one-response-per-line file has no reference: give a "
                                                     "line-aligned reference file or the ConvAI2 dataset")
        ref_source = str(ref_path)
        refs = (text for _, text in read_lines(ref_path, max_bytes))
        for ref, line, hyp in pair_exactly(refs, hyps, hyp_source, "hypotheses", "lines", f"{ref_source} has {{n}} lines"):
            yield Record(id=f"line-{line}", response=hyp, references=[ref], source=hyp_source, line=line)
        return
    dataset = str(dataset_path)
    turns: Iterator[tuple[ConvAI2Turn, str | None]] = ((turn, None) for turn in read_convai2(dataset_path, max_bytes))
    if ref_path is not None:
        paired = pair_exactly(read_convai2(dataset_path, max_bytes), read_lines(ref_path, max_bytes), str(ref_path),
                              "references", "lines", "the dataset has {n} turns")
        turns = ((turn, ref) for turn, _, ref in paired)
    for (turn, ref), line, hyp in pair_exactly(turns, hyps, hyp_source, "hypotheses", "lines",
                                               "the dataset has {n} turns"):
        yield turn_record(turn, dataset, response=hyp, references=None if ref is None else [ref],
                          source=hyp_source, line=line)
