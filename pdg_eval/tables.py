"""Rendering a :class:`~pdg_eval.compare.Comparison`: text, markdown, LaTeX (booktabs) and JSON.

Conventions: values on the scale the papers print (x100 where they print percentages); best system **bold**,
second underlined (ceilings such as the gold references are not ranked); ``†`` = significantly different from the
baseline after correction; ``(k)`` = tie group k (systems in one group cannot be told apart).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

from .compare import Cell, Column, Comparison, ranked
from .render import fmt_p, latex_escape, latex_table, markdown_table, text_table
from .report import display_value as fmt_value

FORMATS = ("text", "markdown", "latex", "json")
MARK = "†"


def ci_text(cell: Cell, col: Column) -> str:
    """``[low, high]`` on the printed scale, or nothing without an interval."""
    return f"[{fmt_value(cell.ci[0], col.display_factor)}, {fmt_value(cell.ci[1], col.display_factor)}]" if cell.ci else ""


def places(cmp: Comparison, j: int) -> dict[str, int]:
    """The best (0) and second (1) systems of column ``j`` (ceilings not ranked)."""
    order = ranked(cmp.columns, j, cmp.systems, cmp.cells, cmp.ceilings)
    return {name: k for k, name in enumerate(order[:2])}


def _cell_text(cmp: Comparison, name: str, j: int, style: str) -> str:
    cell, col = cmp.cells[(name, j)], cmp.columns[j]
    text = fmt_value(cell.value, col.display_factor)
    place = places(cmp, j).get(name)
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


def column_header(cmp: Comparison, j: int) -> str:
    """A column's label, with ↓ when lower is better."""
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


def markdown(cmp: Comparison, details: bool = True, legend: bool = True, signatures: bool = True) -> str:
    cols = range(len(cmp.columns))
    rows = [[f"{name} (baseline)" if name == cmp.baseline else name,
             *(_cell_text(cmp, name, j, "markdown") for j in cols)] for name in cmp.systems]
    out = markdown_table(["system", *(column_header(cmp, j) for j in cols)], rows)
    if legend:
        out += "\n" + "\n".join(f"{line}  " for line in _legend(cmp)) + "\n"
    if details:
        detail_rows = [[col.label, name, fmt_value(cell.value, col.display_factor), ci_text(cell, col),
                        fmt_p(cell.p), fmt_p(cell.p_adjusted), cell.group or ""]
                       for j, col in enumerate(cmp.columns) for name in cmp.systems
                       for cell in [cmp.cells[(name, j)]]]
        out += "\n" + markdown_table(["metric", "system", "value", "95% CI", "p", "adj. p", "group"], detail_rows,
                                     right="llrlrrr")
    return out + ("\nSignatures:\n\n" + "".join(f"- `{s}`\n" for s in _signatures(cmp)) if signatures else "")


def text(cmp: Comparison) -> str:
    header = ("metric", "system", "value", "95% CI", "p", "adj. p", "sig", "group")
    rows = [(column_header(cmp, j), name + (" *" if name == cmp.baseline else ""), fmt_value(cell.value, col.display_factor),
             ci_text(cell, col), fmt_p(cell.p), fmt_p(cell.p_adjusted), MARK if cell.significant else "",
             str(cell.group or ""))
            for j, col in enumerate(cmp.columns) for name in cmp.systems for cell in [cmp.cells[(name, j)]]]
    return (f"pdg-eval compare: {len(cmp.systems)} systems, baseline * = {cmp.baseline}\n\n"
            + text_table(header, rows, right={2, 4, 5})
            + "\n" + "\n".join(_legend(cmp)) + "\n\nsignatures:\n" + "".join(f"  {s}\n" for s in _signatures(cmp)))


def latex(cmp: Comparison) -> str:
    cols = range(len(cmp.columns))
    header = ["System", *(latex_escape(cmp.columns[j].label) + ("" if cmp.columns[j].higher_is_better
                                                                else r" $\downarrow$") for j in cols)]
    rows = [[latex_escape(name), *(_cell_text(cmp, name, j, "latex") for j in cols)] for name in cmp.systems]
    return latex_table(header, rows) + "".join(f"% {line}\n" for line in _legend(cmp) + _signatures(cmp))


def combined(parts: Sequence[tuple[Comparison, int, str]]) -> Comparison:
    """One comparison from columns of comparisons of the same systems (a board's presets): ``(comparison, column,
    label)`` each, relabelled; cells, tests and notes travel with their column."""
    first = parts[0][0]
    columns, cells, untested, no_ci = [], {}, {}, {}
    for k, (cmp, j, label) in enumerate(parts):
        columns.append(dataclasses.replace(cmp.columns[j], label=label))
        cells.update({(name, k): cmp.cells[(name, j)] for name in first.systems})
        if j in cmp.untested:
            untested[k] = cmp.untested[j]
        if j in cmp.no_ci:
            no_ci[k] = cmp.no_ci[j]
    return dataclasses.replace(first, columns=columns, cells=cells, untested=untested, no_ci=no_ci)


def render(cmp: Comparison, fmt: str) -> str:
    if fmt == "markdown":
        return markdown(cmp)
    if fmt == "latex":
        return latex(cmp)
    if fmt == "json":
        return json.dumps(cmp.to_json(), ensure_ascii=False, indent=1) + "\n"
    return text(cmp)


def plot_differences(cmp: Comparison, intervals: dict, path) -> None:
    """Forest plot: per metric key, each system's difference to the baseline with its paired bootstrap 95% interval
    (:func:`pdg_eval.compare.difference_intervals`), on the printed scale; significant differences filled."""
    from .render import pyplot, save_figure

    systems = [s for s in cmp.systems if s != cmp.baseline]
    columns = list(range(len(cmp.columns)))
    plt = pyplot()
    fig, axes = plt.subplots(len(columns), 1, figsize=(6.4, 0.5 + 0.34 * len(systems) * len(columns) + 0.5 * len(columns)),
                             squeeze=False)
    for ax, j in zip(axes[:, 0], columns):
        col = cmp.columns[j]
        ax.axvline(0.0, color="#888888", linewidth=0.8)
        for y, name in enumerate(reversed(systems)):
            entry = intervals.get((name, j))
            if not isinstance(entry, tuple):
                ax.text(0.02, y, "no paired bootstrap interval (see the table's notes)", va="center", fontsize=7,
                        color="#666666", transform=ax.get_yaxis_transform())
                continue
            delta, low, high = (v * col.display_factor for v in entry)
            filled = cmp.cells[(name, j)].significant
            ax.errorbar([delta], [y], xerr=[[delta - low], [high - delta]], fmt="o", color="#1f5f8b", capsize=3,
                        markerfacecolor="#1f5f8b" if filled else "white")
        ax.set_yticks(range(len(systems)), list(reversed(systems)))
        ax.set_ylim(-0.6, len(systems) - 0.4)
        arrow = "" if col.higher_is_better else " (lower is better)"
        ax.set_title(f"{col.label}{arrow}: difference to {cmp.baseline}", fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("difference (printed scale), paired bootstrap 95% interval; filled: significant")
    save_figure(fig, path)
