"""Dataset loaders: every persona-dialogue dataset we have, as one typed :class:`Example` per response turn.

Formats and their origin (``data/SOURCES.md`` has the full provenance):

* ParlAI ConvAI2 text (``data/convai2/``, byte-identical to ParlAI's files) -- :func:`load_convai2`, parsed by
  :func:`pdg_eval.readers.parlai.read_convai2`.
* RCDG single-turn files ``per-/src-/tgt-{train,val}.txt`` (``songhaoyu/RCDG@962c3b5:data/``,
  ``data/convai2_train_sample/``) -- :func:`load_convai2_sample`.
* CLV / MORPHEUS ``[SEP]`` block text (``Toyhom/CLV@a4c7bfe:Data/Person_Dialog_*.txt``,
  ``Toyhom/MORPHEUS@8bf1bd9:data/*.txt``, ``data/zh/``) -- :func:`load_clv`.
* MORPHEUS JSON (``Toyhom/MORPHEUS@8bf1bd9:data/{val,test}_datas_{en,zh}.json``) -- :func:`load_morpheus_json`.
* Synthetic-Persona-Chat CSV (``google-research-datasets/Synthetic-Persona-Chat@1f367a0:data/``,
  ``data/synthetic_persona_chat/``) -- :func:`load_synthetic_persona_chat`.
* Hugging Face Hub copies (``google/Synthetic-Persona-Chat``, ``bavard/personachat_truecased``) -- :func:`load_hub`.

:func:`load_dataset` dispatches on a path, a dict or a ``"hub:<id>[:split]"`` string. Grouping helpers
(:func:`dialogues`, :func:`sessions_by_speaker`), a deterministic dialogue-level :func:`split_by_dialogue`,
:func:`take_dialogues` and :func:`fingerprint` serve training and run provenance. Malformed input raises
:class:`~pdg_eval.errors.InputError` (``file:line: field: problem``); bad options raise
:class:`~pdg_eval.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdg_eval.errors import ConfigError, InputError
from pdg_eval.readers.parlai import ConvAI2Turn, gold_position, read_convai2
from pdg_eval.readers.synthetic_persona_chat import COLUMNS as SYNTHETIC_COLUMNS, csv_rows, synthetic_turns
from pdg_eval.inputs import iter_lines
from pdg_eval.records import SELF, Record, speaker_roles
from pdg_eval.tokenize import contains_cjk

LANGUAGES = ("en", "zh")
SAMPLE_SPLITS = ("train", "val")
SIDES = ("user1", "user2", "both")
SAMPLE_PERSONA_SEP = "</s>"
CLV_SEP = "[SEP]"
CLV_EOT = "<|endoftext|>"
HUB_SYNTHETIC = "google/Synthetic-Persona-Chat"
HUB_PERSONACHAT = "bavard/personachat_truecased"
HUB_DATASETS = (HUB_SYNTHETIC, HUB_PERSONACHAT)
FORMATS = ("convai2", "convai2_sample", "clv", "morpheus_json", "synthetic_persona_chat", "hub")


@dataclass(frozen=True, slots=True)
class Example:
    """One response turn: the responder's persona, the dialogue so far and the gold response.

    ``turn`` follows each format's own numbering: ConvAI2 and the RCDG sample count the responder's turns
    (ParlAI), Synthetic-Persona-Chat counts every utterance of the conversation, CLV/MORPHEUS blocks are
    single-turn dialogues (``turn`` 0). Sequence fields given as lists are stored as tuples.
    """

    id: str
    persona: tuple[str, ...]
    context: tuple[str, ...]
    response: str
    dialogue_id: str
    turn: int
    speaker: str
    partner_persona: tuple[str, ...] = ()
    candidates: tuple[str, ...] | None = None
    language: str = "en"
    source: str = ""
    line: int | None = None

    def __post_init__(self) -> None:
        for name in ("persona", "context", "partner_persona", "candidates"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, not {self.language!r}")

    def to_record(self, response: str | None = None, system: str | None = None,
                  meta: dict | None = None) -> Record:
        """A :class:`~pdg_eval.records.Record` scoring ``response`` (default: the gold) against the gold.

        ``gold_index`` is the last candidate equal to the gold, as in
        :func:`pdg_eval.readers.parlai.turn_record`.
        """
        candidates = None if self.candidates is None else list(self.candidates)
        return Record(
            id=self.id, response=self.response if response is None else response, references=[self.response],
            persona=list(self.persona), context=list(self.context), candidates=candidates,
            gold_index=None if candidates is None else gold_position(candidates, self.response),
            system=system, language=self.language, meta=dict(meta or {}),
            source=self.source or "<memory>", line=self.line,
        )


@dataclass(frozen=True)
class Split:
    """A dialogue-level train/dev split (see :func:`split_by_dialogue`)."""

    train: list[Example]
    dev: list[Example]
    seed: int
    dev_fraction: float
    dev_dialogues: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """Provenance: seed, fraction, counts and the sha1 of the (sorted, newline-joined) dev dialogue ids."""
        return {
            "seed": self.seed, "dev_fraction": self.dev_fraction,
            "train_examples": len(self.train), "dev_examples": len(self.dev),
            "train_dialogues": len({ex.dialogue_id for ex in self.train}), "dev_dialogues": len(self.dev_dialogues),
            "dev_dialogues_sha1": hashlib.sha1("\n".join(self.dev_dialogues).encode("utf-8")).hexdigest(),
        }


def speaker_id(persona: Sequence[str]) -> str:
    """A stable speaker id: the persona as an unordered set of stripped sentences, hashed."""
    text = "\n".join(sorted(s.strip() for s in persona))
    return "spk-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------- helpers


def _require(path: str | Path, directory: bool = False) -> Path:
    p = Path(path)
    if not (p.is_dir() if directory else p.is_file()):
        raise InputError(str(path), None, None, f"no such {'directory' if directory else 'file'}")
    return p


def _language(language: str | None, texts: Iterable[str]) -> str:
    """``language`` when given, else "zh" when any text contains CJK characters, else "en"."""
    if language is not None:
        if language not in LANGUAGES:
            raise ConfigError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        return language
    return "zh" if any(contains_cjk(t) for t in texts) else "en"


def _unique(examples: list[Example], source: str) -> list[Example]:
    seen: dict[str, int | None] = {}
    for ex in examples:
        if ex.id in seen:
            raise InputError(source, ex.line, "id", f"duplicate example id {ex.id!r}")
        seen[ex.id] = ex.line
    return examples


def _clean(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(s.strip() for s in items if s.strip())


# ---------------------------------------------------------------------------------------------------- ConvAI2


def _check_candidates(source: str, line: int, candidates: Sequence[str] | None, gold: str) -> None:
    """The checks of :func:`pdg_eval.readers.parlai.turn_record`, so that every example makes a valid record."""
    if candidates is None:
        return
    if len(candidates) < 2:
        raise InputError(source, line, "candidates", f"{len(candidates)} candidate(s); at least 2 are needed")
    if gold_position(list(candidates), gold) is None:
        raise InputError(source, line, "candidates", "the gold response is not among the candidates")


def _convai2_example(turn: ConvAI2Turn, source: str) -> Example:
    _check_candidates(source, turn.line, turn.candidates, turn.response)
    return Example(
        id=f"{turn.dialogue}-{turn.turn}", persona=tuple(turn.persona), context=tuple(turn.context),
        response=turn.response, dialogue_id=str(turn.dialogue), turn=turn.turn, speaker=speaker_id(turn.persona),
        partner_persona=tuple(turn.partner_persona),
        candidates=None if turn.candidates is None else tuple(turn.candidates),
        language="en", source=source, line=turn.line,
    )


def load_convai2(path: str | Path) -> list[Example]:
    """ConvAI2 in ParlAI text (self/both, original/revised, with or without candidates), one example per turn.

    ids ``"{dialogue}-{turn}"`` (0-based) as in :func:`pdg_eval.readers.parlai.convai2_records`.
    """
    source = str(_require(path))
    return [_convai2_example(turn, source) for turn in read_convai2(path)]


# ---------------------------------------------------------------------------------------------------- RCDG sample


def _read_plain_lines(path: Path) -> list[str]:
    return [text for _, text in iter_lines(path)]


def _check_line_counts(files: list[Path], columns: list[list[str]]) -> None:
    expected = len(columns[0])
    for path, lines in zip(files[1:], columns[1:]):
        if len(lines) != expected:
            line = min(len(lines), expected) + 1
            raise InputError(str(path), line, "lines",
                             f"{path.name} has {len(lines)} lines but {files[0].name} has {expected}")


def load_convai2_sample(folder: str | Path, split: str = "train") -> list[Example]:
    """The RCDG single-turn ConvAI2 files ``per-{split}.txt``, ``src-{split}.txt``, ``tgt-{split}.txt``.

    ``per`` holds the persona sentences joined by ``</s>`` (final periods removed upstream), ``src`` the
    partner's last utterance, ``tgt`` the gold. A dialogue is a maximal run of consecutive lines with the
    same persona line; turn k's context is rebuilt as ``[src_0, tgt_0, ..., src_{k-1}, tgt_{k-1}, src_k]``.
    ids ``"{split}-{dialogue}-{turn}"``; ``source`` is the ``tgt`` file, ``line`` the (shared) line number.
    """
    if split not in SAMPLE_SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SAMPLE_SPLITS)}, not {split!r}")
    root = _require(folder, directory=True)
    files = [_require(root / f"{kind}-{split}.txt") for kind in ("per", "src", "tgt")]
    columns = [_read_plain_lines(f) for f in files]
    _check_line_counts(files, columns)
    source = str(files[2])
    examples: list[Example] = []
    dialogue, turn, previous = -1, 0, None
    history: list[str] = []
    for index, (per, src, tgt) in enumerate(zip(*columns)):
        line = index + 1
        for path, text, name in ((files[0], per, "persona"), (files[1], src, "source"), (files[2], tgt, "target")):
            if not text.strip():
                raise InputError(str(path), line, name, "empty line")
        if per != previous:
            dialogue, turn, previous, history = dialogue + 1, 0, per, []
        persona = _clean(per.split(SAMPLE_PERSONA_SEP))
        examples.append(Example(
            id=f"{split}-{dialogue}-{turn}", persona=persona, context=(*history, src), response=tgt,
            dialogue_id=f"{split}-{dialogue}", turn=turn, speaker=speaker_id(persona), language="en",
            source=source, line=line,
        ))
        history += [src, tgt]
        turn += 1
    return examples


# ---------------------------------------------------------------------------------------------------- CLV blocks


def split_persona(text: str, language: str) -> tuple[str, ...]:
    """Split run-together persona sentences after each "。" (zh) or "." (en), keeping the punctuation.

    English splits only after a single dot not followed by a digit, so "5.5" and "..." stay whole.
    """
    pattern = r"(?<=。)" if language == "zh" else r"(?<=[^.]\.)(?![\d.])"
    return _clean(re.split(pattern, text))


def _clv_blocks(source: str, lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Group non-blank lines into blocks separated by ``[SEP]`` lines (the last block needs no ``[SEP]``)."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, text in lines:
        if text.strip() == CLV_SEP:
            if not current:
                raise InputError(source, number, None, "empty block before [SEP]")
            blocks.append(current)
            current = []
        elif text.strip():
            current.append((number, text))
    if current:
        blocks.append(current)
    return blocks


def _clv_context(source: str, number: int, text: str) -> tuple[str, ...]:
    if not text.startswith(CLV_EOT):
        raise InputError(source, number, "context", f"the context line must start with {CLV_EOT}")
    rest = text[len(CLV_EOT):].rstrip()
    if not rest:
        return ()
    if not rest.endswith(CLV_EOT):
        raise InputError(source, number, "context", f"every context turn must end with {CLV_EOT}")
    turns = [t.strip() for t in rest[:-len(CLV_EOT)].split(CLV_EOT)]
    if not all(turns):
        raise InputError(source, number, "context", "empty context turn")
    return tuple(turns)


def _clv_response(source: str, number: int, text: str) -> str:
    body = text.rstrip()
    if not body.endswith(CLV_EOT):
        raise InputError(source, number, "response", f"the response line must end with {CLV_EOT}")
    response = body[:-len(CLV_EOT)].strip()
    if not response or CLV_EOT in response:
        raise InputError(source, number, "response", "expected one non-empty response before the final " + CLV_EOT)
    return response


def _clv_example(source: str, index: int, block: list[tuple[int, str]], language: str) -> Example:
    if len(block) > 3:
        raise InputError(source, block[3][0], None,
                         f"block has {len(block)} lines; expected persona, context, response, then [SEP]")
    if len(block) < 3:
        raise InputError(source, block[-1][0] + 1, "response",
                         "block has no response line (expected persona, context, response, then [SEP])")
    (_, persona_line), (context_no, context_line), (response_no, response_line) = block
    persona = split_persona(persona_line, language)
    return Example(
        id=str(index), persona=persona, context=_clv_context(source, context_no, context_line),
        response=_clv_response(source, response_no, response_line), dialogue_id=str(index), turn=0,
        speaker=speaker_id(persona), language=language, source=source, line=response_no,
    )


def load_clv(path: str | Path, language: str | None = None) -> list[Example]:
    """CLV/MORPHEUS block text: ``persona line / <|endoftext|>turn<|endoftext|>... / response<|endoftext|>``.

    Blocks are separated by ``[SEP]`` lines (CLV splits on ``"\\n[SEP]\\n"``, so the final block has no
    ``[SEP]``). The persona line runs its sentences together; they are split after each "." (en) or "。" (zh).
    One example per block (``dialogue_id`` = block index; the samples carry no dialogue grouping), turns and
    response stripped of surrounding whitespace. The context of a conversation's opening turn is empty.
    """
    source = str(_require(path))
    lines = list(iter_lines(path))
    lang = _language(language, (text for _, text in lines))
    blocks = _clv_blocks(source, lines)
    return [_clv_example(source, i, block, lang) for i, block in enumerate(blocks)]


# ---------------------------------------------------------------------------------------------------- MORPHEUS json


def _string_list(source: str, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InputError(source, None, field, "expected a list of strings")
    return tuple(s.strip() for s in value)


def load_morpheus_json(path: str | Path, language: str | None = None) -> list[Example]:
    """MORPHEUS JSON: a list of ``{"persona": [...], "context": [...], "response": str}``, one example each."""
    source = str(_require(path))
    text = Path(path).read_text("utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, exc.lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, list):
        raise InputError(source, None, None, "expected a JSON list of {persona, context, response} objects")
    lang = _language(language, [text])
    examples = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise InputError(source, None, f"[{i}]", "expected an object")
        persona = _string_list(source, f"[{i}].persona", obj.get("persona"))
        context = _string_list(source, f"[{i}].context", obj.get("context"))
        response = obj.get("response")
        if not isinstance(response, str) or not response.strip():
            raise InputError(source, None, f"[{i}].response", "expected a non-empty string")
        examples.append(Example(id=str(i), persona=persona, context=context, response=response.strip(),
                                dialogue_id=str(i), turn=0, speaker=speaker_id(persona), language=lang,
                                source=source))
    return examples


# ------------------------------------------------------------------------------------- Synthetic-Persona-Chat

def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ConfigError(f"side must be one of {', '.join(SIDES)}, not {side!r}")


def _synthetic_row(source: str, row: int, line: int | None, cells: Mapping[str, Any], side: str) -> list[Example]:
    for column in SYNTHETIC_COLUMNS:
        if not isinstance(cells.get(column), str):
            raise InputError(source, line, column, f"missing or not text in row {row}")
    personas = {1: _clean(cells["user 1 personas"].splitlines()), 2: _clean(cells["user 2 personas"].splitlines())}
    turns = synthetic_turns(cells["Best Generated Conversation"])
    wanted = {"user1": (1,), "user2": (2,), "both": (1, 2)}[side]
    examples = []
    for k, (who, text) in enumerate(turns):
        if k == 0 or who not in wanted:
            continue
        examples.append(Example(
            id=f"{row}-{k}", persona=personas[who], context=tuple(t for _, t in turns[:k]), response=text,
            dialogue_id=str(row), turn=k, speaker=speaker_id(personas[who]), partner_persona=personas[3 - who],
            language="en", source=source, line=line,
        ))
    return examples


def examples_from_synthetic_rows(rows: Iterable[Mapping[str, Any]], side: str = "both",
                                 source: str = "<rows>") -> list[Example]:
    """Synthetic-Persona-Chat rows (CSV or Hub schema) as examples; see :func:`load_synthetic_persona_chat`."""
    _check_side(side)
    examples: list[Example] = []
    for row, cells in enumerate(rows):
        examples += _synthetic_row(source, row, None, cells, side)
    return _unique(examples, source)


def load_synthetic_persona_chat(path: str | Path, side: str = "both") -> list[Example]:
    """Synthetic-Persona-Chat CSV (``user 1 personas``, ``user 2 personas``, ``Best Generated Conversation``).

    For ``side`` "user1", "user2" or "both": one example per turn of that user that has at least one
    previous turn; persona = that user's personas (newline-separated), partner_persona = the other's,
    context = all previous turns without their ``User N:`` prefixes (see :func:`synthetic_turns`).
    ``dialogue_id`` = 0-based row index, ``turn`` = utterance index in the conversation, id
    ``"{row}-{turn}"``, ``line`` = the line where the row starts.
    """
    _check_side(side)
    source = str(_require(path))
    examples: list[Example] = []
    for row, (line, cells) in enumerate(csv_rows(path)):
        examples += _synthetic_row(source, row, line, cells, side)
    return _unique(examples, source)


# ---------------------------------------------------------------------------------------------------- Hub


def _personachat_row(source: str, row: int, cells: Mapping[str, Any]) -> Example:
    where = (source, row + 1)
    for name in ("personality", "candidates", "history"):
        value = cells.get(name)
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
            raise InputError(*where, name, f"expected a list of strings in row {row}")
    candidates = tuple(cells["candidates"])
    if not candidates:
        raise InputError(*where, "candidates", f"no candidates in row {row} (the gold is the last one)")
    for name in ("conv_id", "utterance_idx"):
        if cells.get(name) is None:
            raise InputError(*where, name, f"missing in row {row}")
    persona = tuple(cells["personality"])
    conv, turn = cells["conv_id"], int(cells["utterance_idx"])
    _check_candidates(source, row + 1, candidates, candidates[-1])
    return Example(
        id=f"{conv}-{turn}", persona=persona, context=tuple(cells["history"]), response=candidates[-1],
        dialogue_id=str(conv), turn=turn, speaker=speaker_id(persona), candidates=candidates, language="en",
        source=source,
    )


def examples_from_personachat_rows(rows: Iterable[Mapping[str, Any]], source: str = "<rows>") -> list[Example]:
    """``bavard/personachat_truecased`` rows (personality, candidates with the gold last, history, conv_id,
    utterance_idx) as examples; id ``"{conv_id}-{utterance_idx}"``. Error line numbers are 1-based row numbers.
    """
    return _unique([_personachat_row(source, i, cells) for i, cells in enumerate(rows)], source)


def load_hub(dataset_id: str, split: str = "validation", *, side: str = "both",
             config: str | None = None) -> list[Example]:
    """Download (or read from the local cache) a Hub dataset with the ``datasets`` library.

    ``google/Synthetic-Persona-Chat`` (same columns as the CSV; ``side`` as in
    :func:`load_synthetic_persona_chat`) or ``bavard/personachat_truecased`` (``config`` "full" by default).
    Raises :class:`ConfigError` when ``datasets`` is missing or the download fails.
    """
    if dataset_id not in HUB_DATASETS:
        raise ConfigError(f"unknown Hub dataset {dataset_id!r}; supported: {', '.join(HUB_DATASETS)}")
    _check_side(side)
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"loading {dataset_id!r} needs the 'datasets' package: pip install datasets") from None
    if config is None and dataset_id == HUB_PERSONACHAT:
        config = "full"
    try:
        rows = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # any failure (network, auth, unknown split) is reported the same way
        raise ConfigError(
            f"could not load {dataset_id!r} (split {split!r}) from the Hugging Face Hub: {type(exc).__name__}: {exc}. "
            "Without network access, download it once elsewhere and set HF_DATASETS_OFFLINE=1, "
            "or use the local files under data/"
        ) from exc
    source = f"hub:{dataset_id}:{split}"
    if dataset_id == HUB_SYNTHETIC:
        return examples_from_synthetic_rows(rows, side=side, source=source)
    return examples_from_personachat_rows(rows, source=source)


# ---------------------------------------------------------------------------------------------------- dispatch


def _first_lines(path: Path, n: int) -> list[str]:
    lines = []
    for _, text in iter_lines(path):
        if text.strip():
            lines.append(text)
        if len(lines) == n:
            break
    return lines


def detect_format(path: str | Path) -> str:
    """The format of a local file or folder (one of :data:`FORMATS`, never "hub").

    A folder is the RCDG sample; ``.json`` is MORPHEUS JSON; ``.csv`` is Synthetic-Persona-Chat; a file whose
    first line starts with "1 " is ParlAI ConvAI2; a ``[SEP]`` line or a second line starting with
    ``<|endoftext|>`` makes CLV blocks.
    """
    p = Path(path)
    if p.is_dir():
        return "convai2_sample"
    _require(p)
    if p.suffix.lower() == ".json":
        return "morpheus_json"
    if p.suffix.lower() == ".csv":
        return "synthetic_persona_chat"
    head = _first_lines(p, 4)
    if head and head[0].startswith("1 "):
        return "convai2"
    if any(t.strip() == CLV_SEP for t in head) or (len(head) > 1 and head[1].startswith(CLV_EOT)):
        return "clv"
    raise ConfigError(f"cannot tell the dataset format of {p}; give a dict with 'format' ({', '.join(FORMATS)})")


_LOADERS = {
    "convai2": load_convai2, "convai2_sample": load_convai2_sample, "clv": load_clv,
    "morpheus_json": load_morpheus_json, "synthetic_persona_chat": load_synthetic_persona_chat, "hub": load_hub,
}


SHARED_PREFIX = "shared:"


def resolve_path(path: str | Path) -> str | Path:
    """``shared:<path>`` is a path below the project's shared data folder (:func:`pdg_eval.files.shared_path`)."""
    if isinstance(path, str) and path.startswith(SHARED_PREFIX):
        from pdg_eval.files import shared_path

        try:
            return shared_path(*Path(path[len(SHARED_PREFIX):]).parts)
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return path


def load_dataset(spec: str | Path | Mapping[str, Any]) -> list[Example]:
    """Load a dataset from a path (format detected; ``shared:<path>`` for the shared data folder),
    ``"hub:<dataset id>[:split]"``, or a dict ``{"format": ..., "path": ..., **loader kwargs}`` ("format" optional
    for local paths; for "hub", "path" is the dataset id).
    """
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "path" not in options:
            raise ConfigError("a dataset dict needs 'path'")
        path = resolve_path(options.pop("path"))
        fmt = options.pop("format", None)
        fmt = detect_format(path) if fmt is None else fmt
    elif isinstance(spec, str) and spec.startswith("hub:"):
        dataset_id, _, split = spec[len("hub:"):].partition(":")
        return load_hub(dataset_id, split or "validation")
    else:
        path = resolve_path(spec)
        options, fmt = {}, detect_format(path)
    if fmt not in _LOADERS:
        raise ConfigError(f"unknown dataset format {fmt!r}; choose from {', '.join(FORMATS)}")
    loader = _LOADERS[fmt]
    try:
        inspect.signature(loader).bind(path, **options)
    except TypeError as exc:
        raise ConfigError(f"bad options for format {fmt!r}: {exc}") from None
    return loader(str(path) if fmt == "hub" else path, **options)


# ---------------------------------------------------------------------------------------------------- grouping


def dialogues(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """dialogue_id -> its examples in order, dialogues in first-seen order."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.dialogue_id, []).append(ex)
    return groups


def last_turns(examples: Iterable[Example]) -> list[Example]:
    """The last turn of each dialogue (its context + response is the whole dialogue), dialogues in first-seen order."""
    return [max(turns, key=lambda e: e.turn) for turns in dialogues(examples).values()]


@dataclass(frozen=True)
class Session:
    """A whole dialogue of one speaker: every turn, the speaker's reply last."""

    dialogue_id: str
    speaker: str
    turns: tuple[str, ...]

    @property
    def roles(self) -> list[str]:
        """PARTNER / SELF per turn (:func:`pdg_eval.records.speaker_roles`, the last turn the speaker's)."""
        return speaker_roles(len(self.turns), last=SELF)


def sessions(examples: Iterable[Example]) -> dict[str, Session]:
    """dialogue id -> its :class:`Session`, dialogues in first-seen order (IDL's units of a person's history)."""
    return {e.dialogue_id: Session(e.dialogue_id, e.speaker, (*e.context, e.response)) for e in last_turns(examples)}


def sample_distractors(example: Example, pool: Sequence[str], k: int, seed: int) -> list[str]:
    """``k`` responses other than the gold (fewer if there are not that many), drawn from the example's ranking
    candidates (ConvAI2's: other dialogues' utterances) or else from ``pool``; seeded by (seed, example id), so the
    same every epoch and run. PAA's Hits@1 training and IDL's rejected replies draw them here."""
    distractors = [c for c in (example.candidates or pool) if c != example.response]
    if not distractors:
        raise ConfigError(f"{example.source}:{example.line}: no distractors: the example has no candidates and the "
                          "pool holds no other response")
    return random.Random(f"{seed}:{example.id}").sample(distractors, min(k, len(distractors)))


def sessions_by_speaker(examples: Iterable[Example]) -> dict[str, list[str]]:
    """speaker -> the ids of the dialogues it answers in, first-seen order (IDL: a person's other sessions)."""
    sessions: dict[str, dict[str, None]] = {}
    for ex in examples:
        sessions.setdefault(ex.speaker, {})[ex.dialogue_id] = None
    return {speaker: list(ids) for speaker, ids in sessions.items()}


def shuffled_dialogues(examples: Iterable[Example], seed: int) -> list[str]:
    """The sorted unique dialogue ids shuffled by ``random.Random(seed)``: the order every seeded subset and split
    draws from (a prefix of it is a nested, reproducible sample of dialogues)."""
    ids = sorted({ex.dialogue_id for ex in examples})
    random.Random(seed).shuffle(ids)
    return ids


def split_by_dialogue(examples: Sequence[Example], dev_fraction: float, seed: int) -> Split:
    """Deterministic dialogue-level split: the sorted unique dialogue ids are shuffled by ``random.Random(seed)``
    and the first ``round(n * dev_fraction)`` go to dev. Examples keep their order; ``dev_dialogues`` is sorted.
    """
    if not 0.0 <= dev_fraction <= 1.0:
        raise ConfigError(f"dev_fraction must be in [0, 1], not {dev_fraction}")
    ids = shuffled_dialogues(examples, seed)
    dev_ids = set(ids[:round(len(ids) * dev_fraction)])
    return Split(
        train=[ex for ex in examples if ex.dialogue_id not in dev_ids],
        dev=[ex for ex in examples if ex.dialogue_id in dev_ids],
        seed=seed, dev_fraction=dev_fraction, dev_dialogues=tuple(sorted(dev_ids)),
    )


def take_dialogues(examples: Sequence[Example], n: int) -> list[Example]:
    """The examples of the first ``n`` dialogues in first-seen (file) order, in their original order."""
    if n < 0:
        raise ConfigError(f"the number of dialogues must be >= 0, not {n}")
    keep = set(list(dialogues(examples))[:n])
    return [ex for ex in examples if ex.dialogue_id in keep]


def fingerprint(examples: Iterable[Example]) -> str:
    """sha256 over the JSON pair ``[id, response]`` of every example, one per line, in order."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update((json.dumps([ex.id, ex.response], ensure_ascii=False) + "\n").encode("utf-8"))
    return digest.hexdigest()
