"""Importers: published human judgements as pdg-eval judgment tables plus the judged responses as records.

``usr-personachat`` — the USR PersonaChat ratings (Mehri & Eskenazi 2020, as in ``daqh/llm-eval``'s
``pc_usr_data.json``): 60 contexts × 5 responses (Original Ground Truth, KV-MemNN, Seq2Seq, Language Model, New Human
Generated) × 6 qualities × 3 of 4 named annotators. Scales as in the USR paper: Understandable and Uses Knowledge
0–1, Natural, Maintains Context and Engaging 1–3, Overall 1–5.

The records take the Original Ground Truth reply as the reference, so that system is left out of metric-vs-human
correlations by default (it would be scored against itself); ``import.json`` says so.

``grade-convai2`` — GRADE's ConvAI2 human scores (Huang et al., EMNLP 2020; ``li3cmz/GRADE@c6cec02:evaluation``): 4
systems × 150 (two-turn context, hypothesis, reference) in ``eval_data/convai2/<system>/human_{ctx,hyp,ref}.txt``, each
rated 1–5 by 8 to 11 raters (10 for 545 of the 600) in ``human_score/human_judgement.json`` (or ``human_judgement.json``
at the top of the folder). GRADE ships no persona: the responder's persona is taken from the ConvAI2 dialogue in which
the context occurs as two consecutive utterances (``--dataset``, ParlAI both-persona file). A context that occurs in no
dialogue, or in several, keeps its record without persona; ``import.json`` counts both. An item is a context (shared
by the systems that answered it); the 3 responses GRADE had judged twice (same context, system and response) get a
second item, ``<item>.2``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import ConfigError, InputError
from ..files import all_or_nothing, atomic_writer, check_outputs, file_sha256
from ..inputs import decode_json, read_text
from ..readers.parlai import read_convai2
from ..records import Record, write_jsonl
from .frames import TASKS, validate_frame

USR_ASPECTS: dict[str, tuple[int, int]] = {  # quality -> (lowest, highest) on the USR scale
    "Understandable": (0, 1), "Natural": (1, 3), "Maintains Context": (1, 3), "Engaging": (1, 3),
    "Uses Knowledge": (0, 1), "Overall": (1, 5)}
USR_REFERENCE_SYSTEM = "Original Ground Truth"
PERSONA_PREFIX = "your persona: "


@dataclass
class ImportedStudy:
    """Judgments in a pdg-eval table, the responses they judge as records, and how to analyse them."""

    name: str
    task: str
    frame: pd.DataFrame
    records: list[Record]
    aspects: list[str]
    scales: dict[str, list[int]]
    levels: dict[str, str]
    source: dict[str, Any]
    exclude_from_correlation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "aspects": self.aspects, "scales": self.scales,
                "levels": self.levels, "source": self.source,
                "exclude_from_correlation": self.exclude_from_correlation, "notes": self.notes}


def _lines(text: str, prefix: str = "") -> list[str]:
    out = []
    for line in str(text).splitlines():
        line = line.strip()
        if prefix and line.startswith(prefix):
            line = line[len(prefix):]
        if line:
            out.append(line)
    return out


def _json_list(path: Path) -> list[tuple[int, Any]]:
    """The items of a file holding one non-empty JSON list, each with the line it starts on."""
    where = str(path)
    text = read_text(path)
    data = decode_json(text, where, field=None)
    if not isinstance(data, list) or not data:
        raise InputError(where, None, None, "expected a non-empty JSON list of items")
    decoder, pos, out = json.JSONDecoder(), text.index("[") + 1, []
    line, counted = 1, 0  # the line of ``pos``, counted up to ``counted`` (not from the start for every item)
    for item in data:
        while text[pos] in " \t\r\n,":
            pos += 1
        line, counted = line + text.count("\n", counted, pos), pos
        out.append((line, item))
        pos = decoder.raw_decode(text, pos)[1]
    return out


class _Fields:
    """Typed access to the fields of one JSON object; a missing or mistyped field is an :class:`InputError`."""

    def __init__(self, value: Any, where: str, line: int, at: str):
        self.where, self.line, self.at = where, line, at
        if not isinstance(value, dict):
            self.fail(None, f"expected an object, got {type(value).__name__}")
        self.value = value

    def fail(self, key: str | None, problem: str) -> None:
        raise InputError(self.where, self.line, self.at if key is None else f"{self.at}.{key}", problem)

    def get(self, key: str, kind: type, what: str, nonempty: bool = False) -> Any:
        if key not in self.value:
            self.fail(key, "missing")
        value = self.value[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (nonempty and not value):
            self.fail(key, f"expected {what}, got {json.dumps(value)[:40]}")
        return value

    def strings(self, key: str) -> list[str]:
        values = self.get(key, list, "a non-empty list of names", nonempty=True)
        if not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
            self.fail(key, "expected distinct non-empty names")
        return values

    def scores(self, key: str, n: int, low: int, high: int) -> list[int | float]:
        values = self.get(key, list, f"a list of {n} scores")
        if len(values) != n:
            self.fail(key, f"expected {n} scores (one per annotator), got {len(values)}")
        for value in values:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                self.fail(key, f"score {json.dumps(value)[:40]} outside {low}-{high}")
        return values


def import_usr_personachat(path: str | Path) -> ImportedStudy:
    """Read ``pc_usr_data.json`` into a Likert table (one row per rating) and one record per response."""
    path = Path(path)
    where = str(path)
    rows: list[dict[str, Any]] = []
    records: list[Record] = []
    for index, (line, raw) in enumerate(_json_list(path)):
        entry = _Fields(raw, where, line, f"[{index}]")
        item = f"usr-pc-{index:02d}"
        context, fact = entry.get("context", str, "text"), entry.get("fact", str, "text")
        annotators = entry.strings("annotators")
        listed = entry.get("responses", list, "a non-empty list of responses", nonempty=True)
        responses = [_Fields(r, where, line, f"[{index}].responses[{k}]") for k, r in enumerate(listed)]
        systems = [r.get("model", str, "a system name", nonempty=True) for r in responses]
        texts = [r.get("response", str, "a response text") for r in responses]
        if len(set(systems)) != len(systems):
            entry.fail("responses", "two responses with the same model")
        if systems.count(USR_REFERENCE_SYSTEM) != 1:
            entry.fail("responses", f"expected one {USR_REFERENCE_SYSTEM!r} response")
        reference = texts[systems.index(USR_REFERENCE_SYSTEM)].strip()
        persona, turns = _lines(fact, PERSONA_PREFIX), _lines(context)
        for response, system, text in zip(responses, systems, texts):
            for aspect, (low, high) in USR_ASPECTS.items():
                for annotator, value in zip(annotators, response.scores(aspect, len(annotators), low, high)):
                    rows.append({"item": item, "annotator": annotator, "aspect": aspect, "system": system,
                                 "value": value, "position": float("nan")})
            records.append(Record(id=f"{item}::{system}", response=text.strip(), references=[reference],
                                  persona=persona, context=turns, system=system, language="en", meta={"item": item}))
    frame = validate_frame(pd.DataFrame(rows), "likert")
    levels = {a: ("nominal" if high - low == 1 else "ordinal") for a, (low, high) in USR_ASPECTS.items()}
    return ImportedStudy(
        name="usr-personachat", task="likert", frame=frame, records=records, aspects=list(USR_ASPECTS),
        scales={a: list(range(low, high + 1)) for a, (low, high) in USR_ASPECTS.items()}, levels=levels,
        source={"path": str(path.resolve()), "sha256": file_sha256(path), "format": "usr-personachat"},
        exclude_from_correlation=[USR_REFERENCE_SYSTEM],
        notes=["display positions were not published: the position-bias audit cannot run",
               f"records use the {USR_REFERENCE_SYSTEM!r} reply as the reference, so that system is left out of "
               "metric-vs-human correlations"])


GRADE_SYSTEMS = ("bert_ranker", "dialogGPT", "transformer_generator", "transformer_ranker")
GRADE_SCALE = (1, 5)
GRADE_TURN_SEPARATOR = "|||"
GRADE_JUDGEMENTS = ("human_judgement.json", "human_score/human_judgement.json")


def _grade_lines(path: Path, n: int) -> list[str]:
    """The ``n`` lines of one of GRADE's line-aligned text files."""
    if not path.is_file():
        raise InputError(str(path), None, None, "missing (expected GRADE's eval_data/convai2/<system>/ layout)")
    lines = read_text(path).splitlines()
    if len(lines) != n:
        raise InputError(str(path), None, None, f"expected {n} lines, got {len(lines)}")
    return lines


def convai2_personas(dataset: str | Path) -> dict[tuple[str, str], list[list[str]]]:
    """Every two consecutive utterances of a ParlAI ConvAI2 both-persona file → the personas of whoever speaks next
    (one per occurrence)."""
    found: dict[tuple[str, str], list[list[str]]] = {}
    for turn in read_convai2(dataset):
        if len(turn.context) >= 2:  # partner, you: you answer
            found.setdefault((turn.context[-2], turn.context[-1]), []).append(turn.persona)
        found.setdefault((turn.context[-1], turn.response), []).append(turn.partner_persona)  # you, partner: partner
    return found


def _grade_ratings(folder: Path) -> tuple[Path, dict[str, list[tuple[int, _Fields]]]]:
    """GRADE's ConvAI2 judgement items per system, in file order, each with its line."""
    path = next((folder / name for name in GRADE_JUDGEMENTS if (folder / name).is_file()), folder / GRADE_JUDGEMENTS[0])
    if not path.is_file():
        raise InputError(str(path), None, None, "missing (GRADE's human_judgement.json: the raters' scores per item)")
    by_system: dict[str, list[tuple[int, _Fields]]] = {s: [] for s in GRADE_SYSTEMS}
    for index, (line, raw) in enumerate(_json_list(path)):
        entry = _Fields(raw, str(path), line, f"[{index}]")
        if entry.get("Dataset", str, "a dataset name") == "convai2":
            system = entry.get("DialogModel", str, "a system name")
            if system not in by_system:
                entry.fail("DialogModel", f"expected one of {', '.join(GRADE_SYSTEMS)}, got {system!r}")
            by_system[system].append((line, entry))
    return path, by_system


def _grade_scores(entry: _Fields) -> list[int]:
    """The scores of a judgement item (GRADE stores the list as a JSON string; 8 to 11 raters, mostly 10)."""
    text = entry.get("HumanScores", str, "a JSON list of scores as a string")
    values = decode_json(text, entry.where, entry.line, f"{entry.at}.HumanScores")
    scores = _Fields({"HumanScores": values}, entry.where, entry.line, entry.at)
    listed = scores.get("HumanScores", list, "a non-empty list of scores", nonempty=True)
    return scores.scores("HumanScores", len(listed), *GRADE_SCALE)


def import_grade_convai2(path: str | Path, dataset: str | Path | None = None) -> ImportedStudy:
    """Read GRADE's ConvAI2 folder into a Likert table (one row per rating) and one record per response, with
    the persona of the ConvAI2 speaker who answers the context (``dataset``)."""
    if dataset is None:
        raise ConfigError("grade-convai2 needs --dataset: the ConvAI2 both-persona file its contexts come from "
                          "(valid_both_original_no_cands.txt)")
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: expected GRADE's evaluation folder (eval_data/, human_judgement.json)")
    judgement_path, ratings = _grade_ratings(folder)
    personas = convai2_personas(dataset)
    items: dict[str, str] = {}  # context -> item id, in order of first appearance
    repeats: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    records: list[Record] = []
    for system in GRADE_SYSTEMS:
        base = folder / "eval_data" / "convai2" / system
        n = len(ratings[system])
        contexts, hypotheses, references = (_grade_lines(base / f"human_{kind}.txt", n)
                                            for kind in ("ctx", "hyp", "ref"))
        for k, ((line, entry), context, hypothesis) in enumerate(zip(ratings[system], contexts, hypotheses)):
            for key, text, kind in (("Context", context, "ctx"), ("Response", hypothesis, "hyp")):
                if entry.get(key, str, "text") != text:
                    entry.fail(key, f"differs from line {k + 1} of {base / f'human_{kind}.txt'}")
            reference = references[k]
            item = items.setdefault(context, f"grade-c2-{len(items):03d}")
            repeats[item, system] = repeat = repeats.get((item, system), 0) + 1
            item = item if repeat == 1 else f"{item}.{repeat}"  # GRADE judged a few responses twice
            for rater, value in enumerate(_grade_scores(entry), 1):
                rows.append({"item": item, "annotator": f"rater{rater:02d}", "aspect": "score", "system": system,
                             "value": value, "position": float("nan")})
            turns = context.split(GRADE_TURN_SEPARATOR)
            found = personas.get(tuple(turns), []) if len(turns) == 2 else []
            records.append(Record(id=f"{item}::{system}", response=hypothesis.strip(), references=[reference.strip()],
                                  persona=list(found[0]) if len(found) == 1 else [], context=turns, system=system,
                                  language="en", meta={"item": item, "persona_matches": len(found)}))
    if not records:
        raise InputError(str(judgement_path), None, None, "no item with Dataset \"convai2\"")
    frame = validate_frame(pd.DataFrame(rows), "likert")
    matched = {GRADE_TURN_SEPARATOR.join(r.context): r.meta["persona_matches"] for r in records}
    counts = {"contexts": len(matched), "matched_once": sum(v == 1 for v in matched.values()),
              "unmatched": sum(v == 0 for v in matched.values()), "ambiguous": sum(v > 1 for v in matched.values())}
    return ImportedStudy(
        name="grade-convai2", task="likert", frame=frame, records=records, aspects=["score"],
        scales={"score": list(range(GRADE_SCALE[0], GRADE_SCALE[1] + 1))}, levels={"score": "ordinal"},
        source={"path": str(folder.resolve()), "judgements_sha256": file_sha256(judgement_path),
                "dataset": str(Path(dataset).resolve()), "dataset_sha256": file_sha256(dataset),
                "format": "grade-convai2", "persona_contexts": counts},
        notes=["display positions were not published: the position-bias audit cannot run",
               "GRADE's raters are anonymous: rater01, rater02, ... are positions in each item's score list, "
               "not people",
               f"persona: {counts['matched_once']} of {counts['contexts']} distinct contexts occur exactly once in "
               f"{Path(dataset).name} ({counts['unmatched']} nowhere, {counts['ambiguous']} several times: those "
               "records have no persona)"])


IMPORTERS: dict[str, Callable[..., ImportedStudy]] = {"usr-personachat": import_usr_personachat,
                                                     "grade-convai2": import_grade_convai2}
#: importers that take a ConvAI2 dataset file (``--dataset``)
WITH_DATASET = ("grade-convai2",)

IMPORT_INFO = "import.json"
RECORDS_FILE = "records.jsonl"


def judgments_file(task: str) -> str:
    return f"judgments_{task}.csv"


def write_imported(study: ImportedStudy, out: str | Path, force: bool = False) -> Path:
    """Write ``judgments_<task>.csv``, ``records.jsonl`` and ``import.json`` into the folder ``out`` (created if
    missing, in an existing folder), all or none; an earlier import there is replaced only with ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist (create it first)")
    written = [out / judgments_file(study.task), out / RECORDS_FILE, out / IMPORT_INFO]
    earlier = [p for p in [out / judgments_file(t) for t in TASKS] + written[1:] if p.exists()]
    if earlier and not force:
        raise ConfigError(f"{earlier[0]} exists: an earlier import is never overwritten (use another folder, or "
                          "--force to replace it)")
    created = not out.exists()
    out.mkdir(exist_ok=True)
    try:
        check_outputs(written, [study.source["path"], study.source.get("dataset")])
        with all_or_nothing():
            with atomic_writer(written[0]) as handle:
                study.frame.to_csv(handle, index=False)
            write_jsonl(study.records, written[1])
            with atomic_writer(written[2]) as handle:
                json.dump(study.info(), handle, indent=1, ensure_ascii=False)
                handle.write("\n")
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    return out
