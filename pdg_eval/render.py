"""Rendering at the bottom layer: plain-text, Markdown and LaTeX (booktabs) tables, numbers, and figures.

Used by ``score``, ``compare``, the leaderboards, the annotation reports and the methods' summaries, so every table
pdg-eval writes has one look. Figures are PNGs without a date or version in their metadata: the same data give the
same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Collection, Sequence

from .files import atomic_writer


def fmt_p(p: float | None, missing: str = "") -> str:
    """A p-value: four decimals, ``<0.0001`` below that, ``missing`` when there is none."""
    if p is None:
        return missing
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: int | str = 1) -> str:
    """A GitHub Markdown table; columns from ``right`` on are right-aligned (or, given as text such as ``"llr"``,
    each column as its letter says); ``|`` inside a cell is escaped."""
    letters = right if isinstance(right, str) else "l" * right + "r" * (len(header) - right)
    align = ["---:" if letter == "r" else "---" for letter in letters]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Collection[int] = ()) -> str:
    """A fixed-width table for terminals: a header, a rule of dashes, the rows; columns in ``right`` right-aligned."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join(f"{{:{'>' if i in right else '<'}{w}}}" for i, w in enumerate(widths))
    out = [line.format(*cells[0]).rstrip(), "  ".join("-" * w for w in widths)]
    out += [line.format(*r).rstrip() for r in cells[1:]]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join({"_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}.get(c, c)
                   for c in text)


def latex_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> str:
    """A booktabs tabular; cells are LaTeX already (escape text with :func:`latex_escape`)."""
    out = ["% requires \\usepackage{booktabs}", "\\begin{tabular}{" + "l" * right + "r" * (len(header) - right) + "}",
           "\\toprule", " & ".join(header) + " \\\\", "\\midrule"]
    out += [" & ".join(row) + " \\\\" for row in rows]
    out += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(out) + "\n"


# -- figures -----------------------------------------------------------------------------------------------------

def pyplot():
    """matplotlib's pyplot without a display, with deterministic SVG ids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "pdg-eval", "font.size": 9})
    return plt


def save_figure(fig, path: Path | BinaryIO) -> str:
    """Save ``fig`` as a PNG without a timestamp-bearing "Software" field (same bytes for the same data); a path is
    written through :func:`~pdg_eval.files.atomic_writer` (so inside ``all_or_nothing`` it waits for the rest)."""
    fig.tight_layout()
    if isinstance(path, Path):
        with atomic_writer(path, binary=True) as handle:
            fig.savefig(handle, format="png", dpi=120, metadata={"Software": None})
    else:
        fig.savefig(path, format="png", dpi=120, metadata={"Software": None})
    pyplot().close(fig)
    return path.name if isinstance(path, Path) else ""
