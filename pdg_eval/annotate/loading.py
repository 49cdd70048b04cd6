"""Judgments to analyse, from a study folder (the SQLite store) or an imported folder, with what the analysis needs:
aspect order, system order, scales, levels, attention-check results and the judged responses as records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..readers import open_records
from ..records import Record
from ..files import file_sha256
from .frames import TASKS, validate_frame
from .importers import IMPORT_INFO, RECORDS_FILE, judgments_file
from .store import DB_NAME, Store
from .study import GOLD_NAME


@dataclass
class Judgments:
    name: str
    task: str
    frame: pd.DataFrame
    aspects: list[str]
    systems: list[str] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    domains: dict[str, list[float]] = field(default_factory=dict)
    checks: pd.DataFrame | None = None
    records: list[Record] | None = None
    exclude_from_correlation: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the records found (or not) for the correlation


def records_from_sources(sources: dict[str, dict]) -> tuple[list[Record], list[str]]:
    """The systems' prediction files a study was built from, when they are still there unchanged."""
    records, notes = [], []
    for system, source in sources.items():
        path = Path(source["path"])
        if not path.is_file() or file_sha256(path) != source["sha256"]:
            notes.append(f"{system}: {path} is missing or changed since the study was created; not scored")
            continue
        for record in open_records(path, source.get("format", "auto"), dataset=source.get("dataset")):
            record.system = system
            record.meta = dict(record.meta) | {"item": record.id}
            records.append(record)
    return records, notes


def load_judgments(source: str | Path, records: str | Path | None = None) -> Judgments:
    """Read a study folder or a folder written by ``pdg-eval annotate import``."""
    source = Path(source)
    if (source / DB_NAME).is_file():
        store = Store(source)
        sources = json.loads(store.meta["sources"])
        progress = store.progress()
        checks = progress[progress["checks_answered"] > 0][["annotator", "checks_passed", "checks_answered"]]
        loaded = Judgments(store.meta["name"], store.task, store.frame(), [a.name for a in store.aspects],
                           list(sources) + [GOLD_NAME],
                           domains={a.name: [float(v) for v in a.scale] for a in store.aspects if a.scale},
                           checks=checks if len(checks) else None, exclude_from_correlation=[GOLD_NAME])
        if records is None:
            loaded.records, loaded.notes = records_from_sources(sources)
    else:
        found = [t for t in TASKS if (source / judgments_file(t)).is_file()]
        if len(found) != 1:
            raise ConfigError(f"{source}: expected a study folder ({DB_NAME}) or an imported folder with one "
                              f"judgments_<task>.csv; found {len(found)}")
        task = found[0]
        info_path = source / IMPORT_INFO
        info = json.loads(info_path.read_text("utf-8")) if info_path.is_file() else {}
        frame = validate_frame(pd.read_csv(source / judgments_file(task)), task)
        loaded = Judgments(info.get("name", source.name), task, frame, list(info.get("aspects", [])),
                           levels=dict(info.get("levels", {})),
                           domains={a: [float(v) for v in s] for a, s in info.get("scales", {}).items()},
                           exclude_from_correlation=list(info.get("exclude_from_correlation", [])))
        if records is None and (source / RECORDS_FILE).is_file():
            records = source / RECORDS_FILE
    if records is not None:
        loaded.records = list(open_records(records))
    return loaded
