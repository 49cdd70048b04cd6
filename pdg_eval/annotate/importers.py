"""Importers: published human judgements as pdg-eval judgment tables plus the judged responses as records.

``usr-personachat`` — the USR PersonaChat ratings (Mehri & Eskenazi 2020, as in ``daqh/llm-eval``'s
``pc_usr_data.json``): 60 contexts × 5 responses (Original Ground Truth, KV-MemNN, Seq2Seq, Language Model, New Human
Generated) × 6 qualities × 3 of 4 named annotators. Scales as in the USR paper: Understandable and Uses Knowledge
0–1, Natural, Maintains Context and Engaging 1–3, Overall 1–5.

The records take the Original Ground Truth reply as the reference, so that system is left out of metric-vs-human
correlations by default (it would be scored against itself); ``import.json`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import InputError
from ..records import Record, write_jsonl
from ..report import atomic_writer
from ..tokenize import file_sha256
from .frames import validate_frame

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


def import_usr_personachat(path: str | Path) -> ImportedStudy:
    """Read ``pc_usr_data.json`` into a Likert table (one row per rating) and one record per response."""
    path = Path(path)
    where = str(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(where, getattr(exc, "lineno", None), None, f"cannot read USR judgements: {exc}") from None
    if not isinstance(data, list) or not data:
        raise InputError(where, None, None, "expected a non-empty JSON list of items")
    rows: list[dict[str, Any]] = []
    records: list[Record] = []
    for index, entry in enumerate(data):
        at = f"[{index}]"
        if not isinstance(entry, dict) or not all(k in entry for k in ("context", "fact", "annotators", "responses")):
            raise InputError(where, None, at, "each item needs context, fact, annotators and responses")
        item = f"usr-pc-{index:02d}"
        annotators = [str(a) for a in entry["annotators"]]
        responses = entry["responses"]
        gold = [r for r in responses if r.get("model") == USR_REFERENCE_SYSTEM]
        if len(gold) != 1:
            raise InputError(where, None, f"{at}.responses", f"expected one {USR_REFERENCE_SYSTEM!r} response")
        reference = str(gold[0]["response"]).strip()
        persona, context = _lines(entry["fact"], PERSONA_PREFIX), _lines(entry["context"])
        for r_index, response in enumerate(responses):
            system = str(response.get("model", ""))
            if not system:
                raise InputError(where, None, f"{at}.responses[{r_index}]", "response without a model name")
            for aspect, (low, high) in USR_ASPECTS.items():
                scores = response.get(aspect)
                if not isinstance(scores, list) or len(scores) != len(annotators):
                    raise InputError(where, None, f"{at}.responses[{r_index}].{aspect}",
                                     f"expected {len(annotators)} scores (one per annotator)")
                for annotator, value in zip(annotators, scores):
                    if not isinstance(value, (int, float)) or not low <= value <= high:
                        raise InputError(where, None, f"{at}.responses[{r_index}].{aspect}",
                                         f"score {value!r} outside {low}-{high}")
                    rows.append({"item": item, "annotator": annotator, "aspect": aspect, "system": system,
                                 "value": value, "position": float("nan")})
            records.append(Record(id=f"{item}::{system}", response=str(response["response"]).strip(),
                                  references=[reference], persona=persona, context=context, system=system,
                                  language="en", meta={"item": item}))
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


IMPORTERS: dict[str, Callable[[str | Path], ImportedStudy]] = {"usr-personachat": import_usr_personachat}

IMPORT_INFO = "import.json"
RECORDS_FILE = "records.jsonl"


def judgments_file(task: str) -> str:
    return f"judgments_{task}.csv"


def write_imported(study: ImportedStudy, out: str | Path) -> Path:
    """Write ``judgments_<task>.csv``, ``records.jsonl`` and ``import.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / judgments_file(study.task)) as handle:
        study.frame.to_csv(handle, index=False)
    write_jsonl(study.records, out / RECORDS_FILE)
    with atomic_writer(out / IMPORT_INFO) as handle:
        json.dump(study.info(), handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    return out
