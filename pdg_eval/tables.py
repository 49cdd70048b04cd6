"""Rendering a :class:`~pdg_eval.compare.Comparison`: text, markdown, LaTeX (booktabs) and JSON.

Conventions: values on the scale the papers print (x100 where they print percentages); best system **bold**,
second underlined (ceilings such as the gold references are not ranked); ``†`` = significantly different from the
baseline after correction; ``(k)`` = tie group k (systems in one group cannot be told apart).
"""

from __future__ import annotations

import io
import json

from .compare import Cell, Column, Comparison, ranked
from .report import display_value as fmt_value

FORMATS = ("text", "markdown", "latex", "json")
MARK = "†"


def fmt_p(p: float | None) -> str:
    return "" if p is None else f"{p:.4f}"


def _ci_text(cell: Cell, col: Column) -> str:
    return f"[{fmt_value(cell.ci[0], col.display_factor)}, {fmt_value(cell.ci[1], col.display_factor)}]" if cell.ci else ""


def _places(cmp: Comparison, j: int) -> dict[str, int]:
    order = ranked(cmp.columns, j, cmp.systems, cmp.cells, cmp.ceilings)
    return {name: k for k, name in enumerate(order[:2])}


def _cell_text(cmp: Comparison, name: str, j: int, style: str) -> str:
    cell, col = cmp.cells[(name, j)], cmp.columns[j]
    text = fmt_value(cell.value, col.display_factor)
    place = _places(cmp, j).get(name)
    if style == "markdown":
        text = f"**{text}**" if place == 0 else f"<u>{text}</u>" if place == 1 else text
        mark = MARK if cell.significant else ""
        group = f" ({cell.group})" if cell.group else ""
        return f"{text}{mark}{group}"
    if style == "latex":
        text = rf"\textbf{{{text}}}" if place == 0 else rf"\underline{{{text}}}" if place == 1 else text
        mark = r"$^\dagger$" if cell.significant else ""
        group = rf"\textsuperscript{{({cell.group})}}" if cell.group else ""
        return f"{text}{mark}{group}"
    return f"{text}{MARK if cell.significant else ''}"


def _header(cmp: Comparison, j: int) -> str:
    col = cmp.columns[j]
    return f"{col.label}{'' if col.higher_is_better else ' ↓'}"


def _legend(cmp: Comparison) -> list[str]:
    lines = [f"{MARK}: differs from the baseline ({cmp.baseline}) with {cmp.adjust}-adjusted p < {cmp.alpha} "
             f"({cmp.test}, family per {cmp.family}); (k): tie group k; ↓: lower is better.",
             f"Paired tests on the {cmp.n_common:,} items all systems share; values on each system's own items "
             f"({', '.join(f'{s}: {n:,}' for s, n in cmp.n_items.items())})."]
    if cmp.ceilings:
        lines.append(f"Not ranked (ceiling): {', '.join(cmp.ceilings)}.")
    for label, notes in (("Not tested", cmp.untested), ("No CI", cmp.no_ci)):
        grouped: dict[str, list[str]] = {}
        for j, why in sorted(notes.items()):
            grouped.setdefault(why, []).append(cmp.columns[j].label)
        lines += [f"{label}: {', '.join(cols)}: {why}." for why, cols in grouped.items()]
    return lines


def _signatures(cmp: Comparison) -> list[str]:
    sigs = list(dict.fromkeys(c.signature for c in cmp.columns))
    return [f"[{k}] {s}" for k, s in enumerate(sigs, start=1)] + [f"[test] {cmp.test_signature}"]


def markdown(cmp: Comparison, details: bool = True) -> str:
    out = io.StringIO()
    cols = range(len(cmp.columns))
    out.write("| system | " + " | ".join(_header(cmp, j) for j in cols) + " |\n")
    out.write("|---|" + "---:|" * len(cmp.columns) + "\n")
    for name in cmp.systems:
        label = f"{name} (baseline)" if name == cmp.baseline else name
        out.write(f"| {label} | " + " | ".join(_cell_text(cmp, name, j, "markdown") for j in cols) + " |\n")
    out.write("\n" + "\n".join(f"{line}  " for line in _legend(cmp)) + "\n")
    if details:
        out.write("\n| metric | system | value | 95% CI | p | adj. p | group |\n|---|---|---:|---|---:|---:|---:|\n")
        for j, col in enumerate(cmp.columns):
            for name in cmp.systems:
                cell = cmp.cells[(name, j)]
                out.write(f"| {col.label} | {name} | {fmt_value(cell.value, col.display_factor)} | {_ci_text(cell, col)} | "
                          f"{fmt_p(cell.p)} | {fmt_p(cell.p_adjusted)} | {cell.group or ''} |\n")
    out.write("\nSignatures:\n\n" + "".join(f"- `{s}`\n" for s in _signatures(cmp)))
    return out.getvalue()


def text(cmp: Comparison) -> str:
    header = ("metric", "system", "value", "95% CI", "p", "adj. p", "sig", "group")
    rows = []
    for j, col in enumerate(cmp.columns):
        for name in cmp.systems:
            cell = cmp.cells[(name, j)]
            rows.append((_header(cmp, j), name + (" *" if name == cmp.baseline else ""),
                         fmt_value(cell.value, col.display_factor), _ci_text(cell, col), fmt_p(cell.p), fmt_p(cell.p_adjusted),
                         MARK if cell.significant else "", str(cell.group or "")))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:{'>' if i in (2, 4, 5) else '<'}{w}}}" for i, w in enumerate(widths))
    out = io.StringIO()
    out.write(f"pdg-eval compare: {len(cmp.systems)} systems, baseline * = {cmp.baseline}\n\n")
    out.write(line.format(*header) + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write(line.format(*r).rstrip() + "\n")
    out.write("\n" + "\n".join(_legend(cmp)) + "\n\nsignatures:\n" + "".join(f"  {s}\n" for s in _signatures(cmp)))
    return out.getvalue()


def _latex_escape(s: str) -> str:
    return "".join({"_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}.get(c, c) for c in s)


def latex(cmp: Comparison) -> str:
    cols = range(len(cmp.columns))
    out = io.StringIO()
    out.write("% requires \\usepackage{booktabs}\n\\begin{tabular}{l" + "r" * len(cmp.columns) + "}\n\\toprule\n")
    out.write("System & " + " & ".join(_latex_escape(cmp.columns[j].label) + ("" if cmp.columns[j].higher_is_better
                                                                                else r" $\downarrow$") for j in cols))
    out.write(" \\\\\n\\midrule\n")
    for name in cmp.systems:
        out.write(_latex_escape(name) + " & " + " & ".join(_cell_text(cmp, name, j, "latex") for j in cols) + " \\\\\n")
    out.write("\\bottomrule\n\\end{tabular}\n")
    out.write("".join(f"% {line}\n" for line in _legend(cmp) + _signatures(cmp)))
    return out.getvalue()


def render(cmp: Comparison, fmt: str) -> str:
    if fmt == "markdown":
        return markdown(cmp)
    if fmt == "latex":
        return latex(cmp)
    if fmt == "json":
        return json.dumps(cmp.to_json(), ensure_ascii=False, indent=1) + "\n"
    return text(cmp)
