"""Leaderboards: definitions, run records, the papers' reported numbers, and deterministic markdown.

``leaderboards/<name>.toml`` defines a board (dataset, systems and their published output files, presets, baseline).
``pdg-eval leaderboard run`` scores every system under every preset and stores one run record per preset in
``leaderboards/runs/<name>/<preset>.json``: the comparison (values, CIs, tests, tie groups, signatures) and the
provenance of each system (file, format, sha256) and of the run (command, pdg-eval version). ``import-reported``
copies the board's rows of ``../shared/data/reported/*.csv`` (printed figures, with paper, table and source sha256)
to ``leaderboards/reported/<name>.json``. ``build`` renders ``leaderboards/<name>.md`` from those files only, so it
is byte-identical on every re-run (wall times stay in the run records); ``check`` fails when a markdown file differs
from what ``build`` would write. Every file is checked against ``schemas/leaderboard.schema.json`` before use: a
corrupt one is an :class:`~pdg_eval.errors.InputError` naming the file (and line, field), never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .compare import SystemRun, compare, comparison_from_json
from .errors import ConfigError, InputError
from .files import atomic_writer, file_sha256, shared_path
from .inputs import decode_json, read_text, schema_problem
from .presets import get_preset
from .render import markdown_table
from .tables import markdown

#: where boards are found without ``--root``: the ``leaderboards`` folder of the working directory
LEADERBOARDS = Path("leaderboards")


PROJECT_PREFIX = "project:"  # a path inside this repository (outputs of pdg-eval's own runs), not the shared folder


@dataclass(frozen=True)
class SystemEntry:
    name: str
    path: str  # relative to the shared folder, or "project:<path>" relative to the folder holding the boards' root
    format: str
    role: str = "system"  # "system" or "ceiling"

    def resolve(self, shared: Path, project: Path) -> Path:
        if self.path.startswith(PROJECT_PREFIX):
            return project / self.path[len(PROJECT_PREFIX):]
        return shared.joinpath(*self.path.split("/"))


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    dataset: str
    dataset_name: str
    baseline: str
    presets: tuple[str, ...]
    systems: tuple[SystemEntry, ...]
    reported_papers: tuple[str, ...]
    notes: str
    root: Path
    first_dialogues: int | None = None  # score only the turns of the dataset's first N dialogues (ids "d-t")

    @property
    def markdown_path(self) -> Path:
        return self.root / f"{self.name}.md"

    def run_path(self, preset: str) -> Path:
        return self.root / "runs" / self.name / f"{preset}.json"

    @property
    def reported_path(self) -> Path:
        return self.root / "reported" / f"{self.name}.json"


def load_board(name: str, root: Path = LEADERBOARDS) -> Board:
    path = root / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in root.glob("*.toml"))) or "none"
        raise ConfigError(f"no leaderboard {name!r} ({path} missing); known: {known}")
    doc = _read_toml(path)
    systems = tuple(SystemEntry(s["name"], s["path"], s["format"], s.get("role", "system")) for s in doc["systems"])
    for preset in doc["presets"]:
        try:
            get_preset(preset)
        except ConfigError as exc:
            raise InputError(path, None, "presets", str(exc)) from None
    return Board(name, doc["title"], doc["dataset"], doc["dataset_name"], doc["baseline"], tuple(doc["presets"]),
                 systems, tuple(doc.get("reported_papers", ())), doc.get("notes", ""), root,
                 doc.get("first_dialogues"))


def board_names(root: Path = LEADERBOARDS) -> list[str]:
    return sorted(p.stem for p in root.glob("*.toml"))


#: where ``tomllib`` puts the position of a syntax error (CPython ``Lib/tomllib/_parser.py``, ``suffixed_err``)
_TOML_AT = re.compile(r"(?P<msg>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _checked(path: Path, doc: Any, definition: str) -> Any:
    """``doc`` when it matches ``$defs/<definition>`` of the leaderboard schema, else an :class:`InputError`."""
    problem = schema_problem(doc, f"leaderboard#{definition}")
    if problem is None:
        return doc
    raise InputError(path, None, problem[0], _one_line(problem[1]))


def _read_toml(path: Path) -> dict:
    """A board definition, checked against the schema; a syntax error names its line and column."""
    try:
        doc = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.fullmatch(str(exc))
        if at is None:
            raise InputError(path, None, None, f"not valid TOML: {_one_line(str(exc))}") from None
        raise InputError(path, int(at["line"]), None, f"not valid TOML: {at['msg']} (column {at['column']})") from None
    except (ValueError, RecursionError) as exc:  # nested too deeply
        raise InputError(path, None, None, f"not valid TOML: {_one_line(str(exc))}") from None
    return _checked(path, doc, "board")


def _read_json(path: Path, definition: str) -> dict:
    """A run record (``definition`` "run") or reported numbers ("reported"), checked against the schema."""
    if not path.exists():
        raise ConfigError(f"{path} is missing: create it with `pdg-eval leaderboard run` / `import-reported`")
    doc = decode_json(read_text(path), str(path), field=None, finite=False)  # the writer emits NaN for undefined values
    return _checked(path, doc, definition)


def _comparison_markdown(path: Path, comparison: dict) -> str:
    """The stored comparison's table. What the schema cannot state (each cell names a listed system and column,
    every system has a cell in every column, the test signature's fields) fails as an :class:`InputError`."""
    try:
        return markdown(comparison_from_json(comparison), details=False)
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        problem = f"inconsistent comparison ({type(exc).__name__}: {exc})"
        raise InputError(path, None, "comparison", _one_line(problem)) from None


def _reported_section(board: Board) -> str:
    if not board.reported_papers:
        return ""
    doc = _read_json(board.reported_path, "reported")
    out = io.StringIO()
    out.write("## REPORTED (printed in the papers; not measured by pdg-eval)\n\n")
    out.write("These numbers are copied from the papers' tables. They were computed with each paper's own code and "
              "conventions, which differ from each other and from the MEASURED tables above (see the notes), so "
              "they are context, not comparable entries.\n\n")
    tables: dict[tuple[str, str], list[dict]] = {}
    for row in doc["rows"]:
        tables.setdefault((row["paper"], row["table"]), []).append(row)
    for (paper, table), rows in tables.items():
        metrics = list(dict.fromkeys(r["metric"] for r in rows))
        models = list(dict.fromkeys(r["model"] for r in rows))
        cell = {(r["model"], r["metric"]): r["value"] for r in rows}
        out.write(f"### {paper}, {table}\n\n")
        out.write(markdown_table(["model", *metrics], [[model, *(cell.get((model, m), "") for m in metrics)]
                                                       for model in models]))
        note = doc["conventions"].get(paper)
        out.write(f"\nConventions: {note}\n\n" if note else "\n")
    out.write("Source: " + "; ".join(f"`{s['path']}` (sha256 {s['sha256'][:12]}…)" for s in doc["sources"]) + "\n")
    return out.getvalue()


def render(board: Board) -> str:
    """The board's markdown, from its stored run records and reported numbers only."""
    out = io.StringIO()
    out.write(f"# {board.title}\n\n<!-- generated by `pdg-eval leaderboard build {board.name}`; do not edit -->\n\n")
    out.write(f"{board.notes.strip()}\n\n" if board.notes else "")
    out.write("## MEASURED by pdg-eval\n\nSystems:\n\n")
    for preset in board.presets:
        path = board.run_path(preset)
        record = _read_json(path, "run")
        if preset == board.presets[0]:
            for s in record["provenance"]["systems"]:
                out.write(f"- {s['name']}{' (ceiling, not ranked)' if s['role'] == 'ceiling' else ''}: `{s['path']}` "
                          f"({s['format']}, sha256 {s['sha256'][:12]}…, {s['items']:,} items)\n")
            out.write("\n")
        p = get_preset(preset)
        out.write(f"### Preset `{preset}`: {p.description}\n\n")
        if p.notes:
            out.write(f"{p.notes}\n\n")
        out.write(_comparison_markdown(path, record["comparison"]))
        for warning in record["provenance"].get("warnings") or []:
            out.write(f"\nInput: {warning}\n")
        skipped = record["provenance"].get("skipped") or []
        if skipped:
            out.write("\nNot run: " + "; ".join(f"`{s}`" for s in skipped) + "\n")
        out.write(f"\nCommand: `{record['provenance']['command']}` (pdg-eval {record['provenance']['version']})\n\n")
    out.write(_reported_section(board))
    return out.getvalue()


def _written(board: Board) -> bytes | None:
    path = board.markdown_path
    return path.read_bytes() if path.exists() else None


def build(board: Board) -> bool:
    """Write the markdown (atomically; nothing when the files it renders from are bad); True when it changed."""
    text = render(board)
    changed = _written(board) != text.encode("utf-8")
    if changed:
        with atomic_writer(board.markdown_path) as handle:
            handle.write(text)
    return changed


def stale(board: Board) -> bool:
    return _written(board) != render(board).encode("utf-8")


# -- creating records (needs the shared data) -------------------------------------------------------


def import_reported(board: Board, shared: Path) -> dict:
    rows, sources = [], []
    for paper in board.reported_papers:
        path = shared / "data" / "reported" / f"{paper.lower()}.csv"
        sources.append({"path": f"data/reported/{path.name}", "sha256": file_sha256(path)})
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["dataset"] == board.dataset_name:
                    rows.append({k: row[k] for k in ("paper", "table", "model", "backbone_size", "metric", "value", "note")})
    doc = {"pdg_eval_version": __version__, "sources": sources, "rows": rows, "conventions": REPORTED_CONVENTIONS}
    with atomic_writer(board.reported_path, parents=True) as handle:
        handle.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    return doc


#: How each paper's printed numbers differ from pdg-eval's presets (the papers' tables and their released code).
REPORTED_CONVENTIONS = {
    "PAA": "BLEU-1/2 are sacreBLEU corpus n-gram precisions (preset `paa`, reproduced exactly from the released "
           "outputs); Dist-n = unique n-grams / all tokens; F1 is a macro F1 over token ids under teacher forcing; "
           "PPL on GPT-2 BPE tokens; Tables 2/5 copy other papers' F1/Hits@1/PPL.",
    "IDL": "BLEU-1 is character-level NLTK BLEU with hypothesis and reference swapped (preset `idl`); ROUGE-L is "
           "rouge-score F; Dist-n per response (45-99 range); Coh./Coh-Con. are NLI pair rates; † = the paper's t-test.",
    "MORPHEUS": "cl100k_base tokens (paper) vs BERT WordPiece (code); BLEU-1 = NLTK sentence mean; ROUGE-L = pltrdy "
                "recall; Dist at corpus level; sBLEU against one shuffled partner; Coh.Score from an unreleased "
                "CLV-style classifier; means over three seeds.",
}


# -- running a board: score every system under each preset, compare, store the run records ------------------------
def run_board(board: Board, presets: Sequence[str], *, resamples: int = 10_000, seed: int = 12345,
              ci_resamples: int = 1000, models: dict[str, str | None] | None = None, command: str = "",
              log: Callable[[str], None] = lambda line: None) -> list[Path]:
    """Score every system of ``board`` under each preset (systems' files from the shared data folder), compare them
    against the board's baseline (paired AR) and write one run record per preset; returns the records written."""
    from .scoring import requested_metrics, score_file

    dataset = shared_path(*board.dataset.split("/"))
    keep = None
    if board.first_dialogues is not None:
        first = board.first_dialogues
        keep = lambda record: int(str(record.id).split("-")[0]) < first  # noqa: E731
    written = []
    for preset in presets:
        start = time.perf_counter()
        specs = requested_metrics(preset, (), models=models or {})
        runs, provenance, skipped, notes = [], [], [], []
        for entry in board.systems:
            path = entry.resolve(shared_path(), board.root.parent)
            result, warned = score_file(path, specs, entry.format, source=entry.path, keep=keep,
                                        dataset=None if entry.format == "convai2" else dataset)
            notes += [f"{entry.name}: {w}".replace(str(shared_path()) + "/", "") for w in warned]
            skipped = sorted(set(skipped) | set(result.skipped))
            runs.append(SystemRun.from_score_run(entry.name, result))
            provenance.append({"name": entry.name, "path": entry.path, "format": entry.format, "role": entry.role,
                               "sha256": file_sha256(path), "items": result.n_items})
            log(f"{preset}: scored {entry.name} ({result.n_items:,} items)")
        common = set.intersection(*(set(run.metrics) for run in runs))
        for identity in sorted(set().union(*(set(run.metrics) for run in runs)) - common):
            having = [run for run in runs if identity in run.metrics]
            skipped.append(f"{having[0].metrics[identity].spec}: only {', '.join(r.name for r in having)} (the other "
                           "systems' files have no field for it)")
        runs = [run.restricted(common) for run in runs]
        ceilings = [e.name for e in board.systems if e.role == "ceiling"]
        cmp = compare(runs, board.baseline, "ar", resamples, seed, ci_resamples=ci_resamples, ceilings=ceilings,
                      progress=lambda s: log(f"{preset}: testing {s}"))
        doc = {"comparison": cmp.to_json(),
               "provenance": {"board": board.name, "preset": preset, "systems": provenance, "skipped": skipped,
                              "warnings": notes, "command": command, "version": __version__,
                              "seconds": round(time.perf_counter() - start, 1)}}
        with atomic_writer(board.run_path(preset), parents=True) as handle:
            json.dump(doc, handle, ensure_ascii=False, indent=1, sort_keys=True)
            handle.write("\n")
        log(f"{board.run_path(preset)}: written ({doc['provenance']['seconds']} s)")
        written.append(board.run_path(preset))
    return written
