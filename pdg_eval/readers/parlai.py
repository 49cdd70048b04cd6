"""ConvAI2 in ParlAI's text format, read as a stream of turns.

Format (ParlAI ``FbDialogTeacher``; ConvAI2 validation set
``hqsiswiliam/persona-adaptive-attention@2539c5c:data/ConvAI2/valid_self_original.7z`` and
``bzylich/persona-chatbot@9e4ba8f:data/valid_both_{original,revised}_no_cands.txt``, all byte-identical
to ParlAI's files)::

    1 your persona: i read twenty books a year.
    2 partner's persona: horror movies are my favorites.      (both-persona files only)
    5 hello what are doing today ?<TAB>i am good , ...<TAB><TAB>cand1|cand2|...|cand20

Numbering restarts at 1 for every dialogue. A turn line splits on tabs into partner text, gold
label, reward (empty) and ``|``-separated candidates; the ``no_cands`` files stop after the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from ..errors import InputError
from ..inputs import MAX_RECORD_BYTES, iter_lines
from ..records import Record

YOUR_PERSONA = "your persona: "
PARTNER_PERSONA = "partner's persona: "

T = TypeVar("T")
U = TypeVar("U")
_END = object()


@dataclass(slots=True)
class ConvAI2Turn:
    """One response turn of a ConvAI2 dialogue."""

    dialogue: int  # 0-based dialogue index in the file
    turn: int  # 0-based turn index within the dialogue
    persona: list[str]  # the responder's persona sentences ("your persona: " removed)
    partner_persona: list[str]  # "partner's persona: " sentences (both-persona files), else []
    context: list[str]  # previous turns oldest first, ending with the current partner utterance
    response: str  # the gold response
    candidates: list[str] | None  # ranking candidates (gold last in ConvAI2), None in no_cands files
    line: int  # 1-based line number in the source file

    @property
    def query(self) -> str:
        """The partner utterance this turn answers."""
        return self.context[-1]


def _split_number(source: str, number: int, text: str) -> tuple[int, str]:
    head, sep, rest = text.partition(" ")
    # ASCII digits only: str.isdigit() also accepts '²' or '٣', which int() refuses; 9 digits keep int() cheap
    if not sep or not (head.isascii() and head.isdigit()) or len(head) > 9 or int(head) < 1:
        hint = " (this looks like JSON: a ConvAI2 dataset is ParlAI text)" if text.startswith(("{", "[")) else ""
        raise InputError(source, number, None, "expected 'N text' with a positive turn number N (at most 9 digits) at "
                                               f"the start of the line{hint}")
    return int(head), rest


def _parse_turn(source: str, number: int, rest: str) -> tuple[str, str, list[str] | None]:
    fields = rest.split("\t")
    if len(fields) < 2:
        raise InputError(source, number, "label", "turn line has no tab-separated gold response")
    if len(fields) > 4:
        raise InputError(source, number, None, f"turn line has {len(fields)} tab-separated fields, expected at most 4 "
                                               "(text, label, reward, candidates)")
    label = fields[1]
    if "|" in label:
        raise InputError(source, number, "label", "several '|'-separated labels; ConvAI2 has exactly one gold response")
    candidates = fields[3].split("|") if len(fields) == 4 and fields[3] else None
    return fields[0], label, candidates


def read_convai2(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[ConvAI2Turn]:
    """Stream the turns of a ParlAI ConvAI2 text file, dialogue by dialogue.

    Raises :class:`InputError` (``file:line``) for a bad line number, a persona line after the first
    turn of its dialogue, a turn line without a label, or a dialogue with no turn.
    """
    source = str(path)
    dialogue = -1
    expected = 1
    persona: list[str] = []
    partner: list[str] = []
    history: list[str] = []
    turns = 0
    start = 0
    for number, text in iter_lines(path, max_bytes):
        if not text.strip():
            continue
        n, rest = _split_number(source, number, text)
        if n == 1:
            if dialogue >= 0 and turns == 0:
                raise InputError(source, start, None, "dialogue has persona lines but no turn")
            dialogue, turns, start = dialogue + 1, 0, number
            persona, partner, history = [], [], []
        elif dialogue < 0:
            raise InputError(source, number, None, f"the file starts with turn number {n}; dialogues start at 1")
        elif n != expected:
            raise InputError(source, number, None,
                             f"turn number {n} does not follow {expected - 1} (numbering restarts at 1 for each dialogue)")
        expected = n + 1
        if rest.startswith((YOUR_PERSONA, PARTNER_PERSONA)) and "\t" not in rest:
            if turns:
                raise InputError(source, number, "persona", "persona line after the dialogue's first turn")
            if rest.startswith(YOUR_PERSONA):
                persona.append(rest[len(YOUR_PERSONA):])
            else:
                partner.append(rest[len(PARTNER_PERSONA):])
            continue
        query, label, candidates = _parse_turn(source, number, rest)
        history.append(query)
        yield ConvAI2Turn(dialogue, turns, list(persona), list(partner), list(history), label, candidates, number)
        history.append(label)
        turns += 1
    if dialogue >= 0 and turns == 0:
        raise InputError(source, start, None, "dialogue has persona lines but no turn")


def pair_exactly(items: Iterable[T], numbered: Iterable[tuple[int, U]], source: str, field: str, unit: str,
                 other: str) -> Iterator[tuple[T, int, U]]:
    """Pair ``items`` one-to-one with ``(line, value)`` pairs read from ``source``.

    A count mismatch raises :class:`InputError` at ``source`` on the line where it went wrong (the line
    after the last one when ``source`` is short, the first extra line when it is long), e.g.
    ``hyp.txt:7801: hypotheses: file has 7800 lines but the dataset has 7801 turns``. ``other`` is a
    template such as ``"the dataset has {n} turns"``. Both sides are read to the end to count them.
    """
    left = iter(items)
    right = iter(numbered)
    count, last = 0, 0
    for item in left:
        nxt = next(right, _END)
        if nxt is _END:
            total = count + 1 + sum(1 for _ in left)
            raise InputError(source, last + 1, field, f"file has {count} {unit} but {other.format(n=total)}")
        last, value = nxt  # type: ignore[misc]
        count += 1
        yield item, last, value
    extra = next(right, _END)
    if extra is not _END:
        total = count + 1 + sum(1 for _ in right)
        line = extra[0]  # type: ignore[index]
        raise InputError(source, line, field, f"file has {total} {unit} but {other.format(n=count)}")


def gold_position(candidates: list[str], gold: str) -> int | None:
    """Index of the last candidate equal to ``gold`` (ConvAI2 lists the gold last), or None."""
    for i in range(len(candidates) - 1, -1, -1):
        if candidates[i] == gold:
            return i
    return None


def turn_record(turn: ConvAI2Turn, dataset: str, *, response: str | None = None, references: list[str] | None = None,
                persona: list[str] | None = None, source: str | None = None, line: int | None = None) -> Record:
    """A :class:`Record` for ``turn`` of the ConvAI2 file ``dataset``, id ``"{dialogue}-{turn}"``.

    ``response`` defaults to the gold, ``references`` to ``[gold]``, ``persona`` to the dataset's;
    ``source``/``line`` (default: the dataset line) say where the response came from, and when they
    differ from the dataset, ``meta["dataset_line"]`` keeps the turn's line. With candidates,
    ``gold_index`` is set to the dataset gold's position, so references that differ from the raw gold
    (normalised or de-tokenised) keep the ranking task intact. Raises :class:`InputError` when the
    gold is not among the candidates.
    """
    index = None
    if turn.candidates is not None:
        if len(turn.candidates) < 2:
            raise InputError(dataset, turn.line, "candidates",
                             f"{len(turn.candidates)} candidate(s); at least 2 are needed")
        index = gold_position(turn.candidates, turn.response)
        if index is None:
            raise InputError(dataset, turn.line, "candidates", "the gold response is not among the candidates")
    rec = Record(
        id=f"{turn.dialogue}-{turn.turn}", response=turn.response if response is None else response,
        references=[turn.response] if references is None else references,
        persona=list(turn.persona) if persona is None else persona, context=list(turn.context),
        candidates=None if turn.candidates is None else list(turn.candidates), gold_index=index,
        source=dataset if source is None else source, line=turn.line if line is None else line,
    )
    if rec.source != dataset:
        rec.meta["dataset_line"] = turn.line
    return rec


def convai2_records(path: str | Path, hypotheses: Iterable[str] | None = None, hyp_source: str = "<hyp>",
                    max_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """One :class:`Record` per ConvAI2 turn, id ``"{dialogue}-{turn}"`` (both 0-based).

    ``response`` is the k-th hypothesis when ``hypotheses`` is given (then ``source``/``line`` point at
    ``hyp_source``; the dataset line is in ``meta["dataset_line"]``), else the gold itself. A hypothesis
    count that differs from the number of turns raises :class:`InputError` at ``hyp_source`` (after the
    records paired so far have been yielded: the check streams).
    """
    dataset = str(path)
    turns = read_convai2(path, max_bytes)
    if hypotheses is None:
        for turn in turns:
            yield turn_record(turn, dataset)
        return
    numbered = enumerate(hypotheses, start=1)
    for turn, line, hyp in pair_exactly(turns, numbered, hyp_source, "hypotheses", "lines", "the dataset has {n} turns"):
        yield turn_record(turn, dataset, response=hyp, source=hyp_source, line=line)
