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
from .compare import SystemRun, compare, comparison_from_json, metrics_every_system_has
from .errors import ConfigError, InputError
from .files import atomic_writer, file_sha256, shared_path
from .inputs import decode_json, read_text, schema_problem
from .presets import get_preset
from .render import markdown_table
from .tables import combined, markdown

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
    #: the first table: (preset, column "metric:variant:key", short label); empty: the first key of each metric of the
    #: first preset
    headline: tuple[tuple[str, str, str], ...] = ()

    @property
    def markdown_path(self) -> Path:
        return self.root / f"{self.name}.md"

    @property
    def html_path(self) -> Path:
        return self.root / f"{self.name}.html"

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
                 doc.get("first_dialogues"),
                 tuple((h["preset"], h["column"], h["label"]) for h in doc.get("headline", ())))


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


def reported_tables(doc: dict) -> list[tuple[str, str, list[str], list[str], dict[tuple[str, str], str]]]:
    """The papers' reported numbers as tables: (paper, table, metrics, models, {(model, metric): value})."""
    tables: dict[tuple[str, str], list[dict]] = {}
    for row in doc["rows"]:
        tables.setdefault((row["paper"], row["table"]), []).append(row)
    return [(paper, table, list(dict.fromkeys(r["metric"] for r in rows)),
             list(dict.fromkeys(r["model"] for r in rows)), {(r["model"], r["metric"]): r["value"] for r in rows})
            for (paper, table), rows in tables.items()]


def _reported_section(board: Board) -> str:
    if not board.reported_papers:
        return ""
    doc = _read_json(board.reported_path, "reported")
    out = io.StringIO()
    out.write("## REPORTED (printed in the papers; not measured by pdg-eval)\n\n")
    out.write("These numbers are copied from the papers' tables. They were computed with each paper's own code and "
              "conventions, which differ from each other and from the MEASURED tables above (see the notes), so "
              "they are context, not comparable entries.\n\n")
    for paper, table, metrics, models, cell in reported_tables(doc):
        out.write(f"### {paper}, {table}\n\n")
        out.write(markdown_table(["model", *metrics], [[model, *(cell.get((model, m), "") for m in metrics)]
                                                       for model in models]))
        note = doc["conventions"].get(paper)
        out.write(f"\nConventions: {note}\n\n" if note else "\n")
    out.write("Source: " + "; ".join(f"`{s['path']}` (sha256 {s['sha256'][:12]}…)" for s in doc["sources"]) + "\n")
    return out.getvalue()


#: headline columns without a board's own choice: the first key of each metric of the first preset
HEADLINE_COLUMNS = 8
#: short labels of metric keys (the signature legend says the rest)
SHORT_LABELS = {"bleu": "BLEU", "rouge": "ROUGE", "dist": "Dist", "self-bleu": "sBLEU", "sbleu": "sBLEU", "f1": "F1",
                "p-f1": "P-F1", "p-cover": "P-Cover", "p-cosine": "P-Cos", "c-score": "C-score", "con": "Con",
                "coh-con": "Coh-Con", "hits@1": "Hits@1", "ppl": "PPL"}


def short_label(key: str) -> str:
    """``bleu-4`` → ``BLEU-4``, ``rouge-l`` → ``ROUGE-L``, ``coh-con`` → ``Coh-Con``."""
    if key in SHORT_LABELS:
        return SHORT_LABELS[key]
    head, _, tail = key.rpartition("-")
    return f"{SHORT_LABELS.get(head, head)}-{tail.upper()}" if head else key


def _comparisons(board: Board) -> dict[str, tuple[dict, Any]]:
    """Per preset: the run record and its comparison (read and checked once for every output of a board)."""
    out = {}
    for preset in board.presets:
        path = board.run_path(preset)
        record = _read_json(path, "run")
        try:
            cmp = comparison_from_json(record["comparison"])
            markdown(cmp, details=False)  # every system has a cell in every column
            out[preset] = (record, cmp)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            problem = f"inconsistent comparison ({type(exc).__name__}: {exc})"
            raise InputError(path, None, "comparison", _one_line(problem)) from None
    return out


def headline_columns(board: Board, comparisons: dict) -> list[tuple[Any, int, str]]:
    """The headline table's columns: (comparison, column index, short label)."""
    picked = []
    if board.headline:
        for preset, column, label in board.headline:
            if preset not in comparisons:
                raise InputError(board.root / f"{board.name}.toml", None, "headline", f"{preset!r} is not a preset")
            cmp = comparisons[preset][1]
            index = {c.label: j for j, c in enumerate(cmp.columns)}
            if column not in index:
                raise InputError(board.root / f"{board.name}.toml", None, "headline",
                                 f"{preset} has no column {column!r}")
            picked.append((cmp, index[column], label))
        return picked
    cmp = comparisons[board.presets[0]][1]
    first_of_family: dict[str, int] = {}
    for j, col in enumerate(cmp.columns):
        first_of_family.setdefault(col.label.split(":")[0], j)
    return [(cmp, j, short_label(cmp.columns[j].key)) for j in list(first_of_family.values())[:HEADLINE_COLUMNS]]


def family_columns(comparisons: dict) -> dict[str, list[tuple[Any, int, str]]]:
    """Per metric family (``bleu``, ``distinct``, ...): every distinct column of every preset, once (by signature and
    key), labelled ``metric:variant:key``, with the tokenizer where one label stands for several signatures."""
    families: dict[str, list[tuple[Any, int, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for _, cmp in comparisons.values():
        for j, col in enumerate(cmp.columns):
            if (col.signature, col.key) in seen:
                continue
            seen.add((col.signature, col.key))
            families.setdefault(col.label.split(":")[0], []).append((cmp, j, col.label))
    for columns in families.values():
        labels = [label for _, _, label in columns]
        for k, (cmp, j, label) in enumerate(columns):
            if labels.count(label) > 1:
                tok = cmp.columns[j].signature.split("|")[1].removeprefix("tok:")  # name:variant|tok:...|...
                columns[k] = (cmp, j, f"{label} ({tok.split('@')[0]})")
    return families


def render(board: Board, comparisons: dict | None = None) -> str:
    """The board's markdown, from its stored run records and reported numbers only: the headline table, one table
    per metric family, then every preset's complete table."""
    comparisons = comparisons or _comparisons(board)
    out = io.StringIO()
    out.write(f"# {board.title}\n\n<!-- generated by `pdg-eval leaderboard build {board.name}`; do not edit -->\n\n")
    out.write(f"{board.notes.strip()}\n\n" if board.notes else "")
    out.write("## MEASURED by pdg-eval\n\nSystems:\n\n")
    first = comparisons[board.presets[0]][0]
    for s in first["provenance"]["systems"]:
        out.write(f"- {s['name']}{' (ceiling, not ranked)' if s['role'] == 'ceiling' else ''}: `{s['path']}` "
                  f"({s['format']}, sha256 {s['sha256'][:12]}…, {s['items']:,} items)\n")
    out.write("\n### Headline\n\n")
    headline = combined(headline_columns(board, comparisons))
    out.write(markdown(headline, details=False, signatures=False))
    out.write("\nLegend:\n\n" + "".join(f"- `{c.label}`: `{c.signature}`\n" for c in headline.columns))
    out.write("\n### By metric\n\n")
    for family, columns in family_columns(comparisons).items():
        out.write(f"#### {family}\n\n")
        out.write(markdown(combined(columns), details=False, legend=False))
        out.write("\n")
    for preset, (record, cmp) in comparisons.items():
        p = get_preset(preset)
        out.write(f"### Preset `{preset}`: {p.description}\n\n")
        if p.notes:
            out.write(f"{p.notes}\n\n")
        out.write(markdown(cmp, details=False))
        for warning in record["provenance"].get("warnings") or []:
            out.write(f"\nInput: {warning}\n")
        skipped = record["provenance"].get("skipped") or []
        if skipped:
            out.write("\nNot run: " + "; ".join(f"`{s}`" for s in skipped) + "\n")
        out.write(f"\nCommand: `{record['provenance']['command']}` (pdg-eval {record['provenance']['version']})\n\n")
    out.write(_reported_section(board))
    return out.getvalue()


def _rendered(board: Board, html: bool = False) -> dict[Path, bytes]:
    """What ``build`` writes: the markdown, and the HTML page when asked or already built (``build --html``), from
    one reading of the stored records."""
    comparisons = _comparisons(board)
    out = {board.markdown_path: render(board, comparisons).encode("utf-8")}
    if html or board.html_path.exists():
        out[board.html_path] = render_html(board, comparisons).encode("utf-8")
    return out


def build(board: Board, html: bool = False) -> dict[Path, bool]:
    """Write the markdown, and the HTML page when asked or already there (atomically; nothing when the files they
    render from are bad); per output, whether it changed."""
    changed = {}
    for path, data in _rendered(board, html).items():
        changed[path] = not path.exists() or path.read_bytes() != data
        if changed[path]:
            with atomic_writer(path, binary=True) as handle:
                handle.write(data)
    return changed


def stale(board: Board) -> list[Path]:
    """The board's outputs that differ from what ``build`` would write (the markdown, the HTML page if there is one)."""
    return [path for path, data in _rendered(board).items() if not path.exists() or path.read_bytes() != data]


# -- the HTML page ---------------------------------------------------------------------------------------------------
_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { cursor: pointer; background: #f4f6f8; }
th.sorted-desc::after { content: " \\25BC"; } th.sorted-asc::after { content: " \\25B2"; }
td .ci { color: #777; font-size: 0.8em; margin-left: 0.3em; }
td.best { font-weight: bold; } td.second { text-decoration: underline; }
tr.baseline td:first-child::after { content: " (baseline)"; color: #777; }
tr.ceiling { color: #777; }
section.reported { background: #fff7e6; border: 2px dashed #d9a441; padding: 0.5em 1em; margin-top: 2em; }
section.reported table td, section.reported table th { background: #fff7e6; }
.badge { display: inline-block; background: #d9a441; color: white; padding: 0 0.4em; border-radius: 3px;
         font-size: 0.8em; }
p.note { color: #555; font-size: 0.85em; }
"""

_HTML_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var descending = !th.classList.contains("sorted-desc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-desc", "sorted-asc"); });
      th.classList.add(descending ? "sorted-desc" : "sorted-asc");
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        if (column === 0) { x = a.cells[0].textContent; y = b.cells[0].textContent;
          return descending ? y.localeCompare(x) : x.localeCompare(y); }
        x = x === undefined || x === "" ? NaN : parseFloat(x); y = y === undefined || y === "" ? NaN : parseFloat(y);
        if (isNaN(x) && isNaN(y)) return 0; if (isNaN(x)) return 1; if (isNaN(y)) return -1;
        return descending ? y - x : x - y;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _html_comparison(cmp: Any, title: str = "") -> str:
    """A sortable table of a comparison: the printed value, † where the corrected test is significant, the tie
    group, the CI beside the value and in the cell's tooltip, the signature in the column header's tooltip."""
    from html import escape

    from .report import display_value
    from .tables import MARK, ci_text, column_header, places

    out = [f"<table class=\"sortable\" data-title=\"{escape(title)}\"><thead><tr><th>system</th>"]
    out += [f"<th title=\"{escape(col.signature)}\">{escape(column_header(cmp, j))}</th>" for j, col in enumerate(cmp.columns)]
    out.append("</tr></thead><tbody>")
    ranks = [places(cmp, j) for j in range(len(cmp.columns))]
    for name in cmp.systems:
        kind = "baseline" if name == cmp.baseline else "ceiling" if name in cmp.ceilings else "system"
        out.append(f"<tr class=\"{kind}\"><td>{escape(name)}</td>")
        for j, col in enumerate(cmp.columns):
            cell = cmp.cells[(name, j)]
            ci = ci_text(cell, col)
            tip = "; ".join(x for x in (f"95% CI {ci}" if ci else "", f"adjusted p {cell.p_adjusted:.4f}"
                                        if cell.p_adjusted is not None else "") if x)
            rank = {0: " class=\"best\"", 1: " class=\"second\""}.get(ranks[j].get(name), "")
            value = "" if cell.value is None or cell.value != cell.value else repr(cell.value * col.display_factor)
            mark = MARK if cell.significant else ""
            group = f" ({cell.group})" if cell.group else ""
            ci_html = f"<span class=\"ci\">{escape(ci)}</span>" if ci else ""
            out.append(f"<td{rank} data-value=\"{value}\" title=\"{escape(tip)}\">"
                       f"{escape(display_value(cell.value, col.display_factor))}{mark}{group}{ci_html}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_html(board: Board, comparisons: dict | None = None) -> str:
    """One self-contained page (no external files): the headline table, the tables by metric and by preset, all
    sortable, and the papers' REPORTED numbers set apart; built from the same stored records as the markdown."""
    from html import escape

    comparisons = comparisons or _comparisons(board)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(board.title)}</title>"
             f"<!-- generated by `pdg-eval leaderboard build --html {board.name}`; do not edit -->"
             f"<style>{_HTML_STYLE}</style></head><body><h1>{escape(board.title)}</h1>"]
    if board.notes:
        parts.append(f"<p class=\"note\">{escape(' '.join(board.notes.split()))}</p>")
    parts.append("<h2>MEASURED by pdg-eval</h2><p class=\"note\">Click a column to sort; hover a header for its "
                 "signature, a value for its 95% CI and adjusted p. † differs from the baseline after Holm "
                 "correction; (k) tie group; ↓ lower is better; bold best, underlined second.</p>")
    parts.append("<h3 id=\"headline\">Headline</h3>" + _html_comparison(combined(headline_columns(board, comparisons)),
                                                                          "headline"))
    parts.append("<h3>By metric</h3>")
    for family, columns in family_columns(comparisons).items():
        parts.append(f"<h4>{escape(family)}</h4>" + _html_comparison(combined(columns), family))
    for preset, (record, cmp) in comparisons.items():
        parts.append(f"<h3>Preset <code>{escape(preset)}</code>: {escape(get_preset(preset).description)}</h3>"
                     + _html_comparison(cmp, preset)
                     + f"<p class=\"note\">Command: <code>{escape(record['provenance']['command'])}</code></p>")
    if board.reported_papers:
        doc = _read_json(board.reported_path, "reported")
        parts.append("<section class=\"reported\"><h2><span class=\"badge\">REPORTED</span> printed in the papers; "
                     "not measured by pdg-eval</h2><p class=\"note\">Copied from the papers' tables, computed with "
                     "each paper's own code and conventions: context, not comparable entries.</p>")
        for paper, table, metrics, models, cell in reported_tables(doc):
            head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
            body = "".join(f"<tr class=\"reported\"><td>{escape(model)}</td>"
                           + "".join(f"<td data-value=\"{escape(cell.get((model, m), ''))}\">"
                                     f"{escape(cell.get((model, m), ''))}</td>" for m in metrics) + "</tr>"
                           for model in models)
            parts.append(f"<h4>{escape(paper)}, {escape(table)}</h4><table class=\"sortable reported\"><thead><tr>"
                         f"<th>model</th>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts.append(f"<script>{_HTML_SCRIPT}</script></body></html>\n")
    return "".join(parts)


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
        runs, partial = metrics_every_system_has(runs)
        skipped += partial
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
