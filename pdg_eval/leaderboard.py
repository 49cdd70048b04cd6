"""Leaderboards: definitions, run records, the papers' reported numbers, and deterministic markdown (issue 4).

``leaderboards/<name>.toml`` defines a board (dataset, systems and their published output files, presets, baseline).
``pdg-eval leaderboard run`` scores every system under every preset and stores one run record per preset in
``leaderboards/runs/<name>/<preset>.json``: the comparison (values, CIs, tests, tie groups, signatures) and the
provenance of each system (file, format, sha256) and of the run (command, pdg-eval version). ``import-reported``
copies the board's rows of ``../shared/data/reported/*.csv`` (printed figures, with paper, table and source sha256)
to ``leaderboards/reported/<name>.json``. ``build`` renders ``leaderboards/<name>.md`` from those files only, so it
is byte-identical on every re-run; ``check`` fails when a markdown file differs from what ``build`` would write.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .compare import comparison_from_json
from .errors import ConfigError
from .presets import get_preset
from .tables import markdown
from .tokenize import file_sha256

LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"


PROJECT_PREFIX = "project:"  # a path inside this repository (outputs of pdg-eval's own runs), not the shared folder


@dataclass(frozen=True)
class SystemEntry:
    name: str
    path: str  # relative to the shared folder, or "project:<path>" relative to the repository
    format: str
    role: str = "system"  # "system" or "ceiling"

    def resolve(self, shared: Path) -> Path:
        if self.path.startswith(PROJECT_PREFIX):
            return LEADERBOARDS.parent / self.path[len(PROJECT_PREFIX):]
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
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    systems = tuple(SystemEntry(s["name"], s["path"], s["format"], s.get("role", "system")) for s in doc["systems"])
    for preset in doc["presets"]:
        get_preset(preset)
    return Board(name, doc["title"], doc["dataset"], doc["dataset_name"], doc["baseline"], tuple(doc["presets"]),
                 systems, tuple(doc.get("reported_papers", ())), doc.get("notes", ""), root,
                 doc.get("first_dialogues"))


def board_names(root: Path = LEADERBOARDS) -> list[str]:
    return sorted(p.stem for p in root.glob("*.toml"))


def _read_json(path: Path):
    if not path.exists():
        raise ConfigError(f"{path} is missing: create it with `pdg-eval leaderboard run` / `import-reported`")
    return json.loads(path.read_text(encoding="utf-8"))


def _reported_section(board: Board) -> str:
    if not board.reported_papers:
        return ""
    doc = _read_json(board.reported_path)
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
        out.write(f"### {paper}, {table}\n\n| model | " + " | ".join(metrics) + " |\n|---|" + "---:|" * len(metrics) + "\n")
        for model in models:
            out.write(f"| {model} | " + " | ".join(cell.get((model, m), "") for m in metrics) + " |\n")
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
        record = _read_json(board.run_path(preset))
        if preset == board.presets[0]:
            for s in record["provenance"]["systems"]:
                out.write(f"- {s['name']}{' (ceiling, not ranked)' if s['role'] == 'ceiling' else ''}: `{s['path']}` "
                          f"({s['format']}, sha256 {s['sha256'][:12]}…, {s['items']:,} items)\n")
            out.write("\n")
        p = get_preset(preset)
        out.write(f"### Preset `{preset}`: {p.description}\n\n")
        if p.notes:
            out.write(f"{p.notes}\n\n")
        out.write(markdown(comparison_from_json(record["comparison"]), details=False))
        for warning in record["provenance"].get("warnings") or []:
            out.write(f"\nInput: {warning}\n")
        skipped = record["provenance"].get("skipped") or []
        if skipped:
            out.write("\nNot run: " + "; ".join(f"`{s}`" for s in skipped) + "\n")
        out.write(f"\nCommand: `{record['provenance']['command']}` (pdg-eval {record['provenance']['version']}, "
                  f"{record['provenance']['seconds']:.0f} s)\n\n")
    out.write(_reported_section(board))
    return out.getvalue()


def build(board: Board) -> bool:
    """Write the markdown; True when it changed."""
    text = render(board)
    old = board.markdown_path.read_text(encoding="utf-8") if board.markdown_path.exists() else None
    if old != text:
        board.markdown_path.write_text(text, encoding="utf-8")
    return old != text


def stale(board: Board) -> bool:
    path = board.markdown_path
    return not path.exists() or path.read_text(encoding="utf-8") != render(board)


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
    board.reported_path.parent.mkdir(parents=True, exist_ok=True)
    board.reported_path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return doc


#: How each paper's printed numbers differ from pdg-eval's presets (../shared/data/reported/README.md, metrics.md).
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
