"""Start-up time of the ``pdg-eval`` command: the working tree against a git revision.

For each tree: the median wall time of ``pdg-eval --help`` (a subprocess, the venv's console script) and the median
cumulative ``python -X importtime`` time of ``pdg_eval.cli.main``. The revision is checked out with
``git worktree add`` into a temporary folder (removed afterwards) and run with ``PYTHONPATH`` pointing at it, with the
same interpreter and packages; each tree gets one untimed warm-up run (bytecode compilation).

    python benchmarks/bench_startup.py                  # working tree vs HEAD, 10 runs each
    python benchmarks/bench_startup.py --before HEAD~3 --runs 20
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "pdg-eval"  # the console script of this interpreter's environment
IMPORTTIME = re.compile(r"^import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*pdg_eval\.cli\.main$", re.MULTILINE)


def in_tree(tree: Path) -> dict:
    """``subprocess.run`` arguments that import ``pdg_eval`` from ``tree``: PYTHONPATH precedes the editable install,
    and the working folder (first on ``python -c``'s path) is the tree itself."""
    return {"env": {**os.environ, "PYTHONPATH": str(tree)}, "cwd": tree}


def check_tree(tree: Path) -> None:
    found = subprocess.run([sys.executable, "-c", "import pdg_eval; print(pdg_eval.__file__)"], **in_tree(tree),
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"PYTHONPATH={tree} imports pdg_eval from {found}, not from that tree")


def help_seconds(tree: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(CLI), "--help"], **in_tree(tree), stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def import_ms(tree: Path) -> float:
    """Cumulative ``-X importtime`` of ``pdg_eval.cli.main`` in a fresh interpreter, in milliseconds."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pdg_eval.cli.main"], **in_tree(tree),
                          capture_output=True, text=True, check=True)
    return int(IMPORTTIME.search(done.stderr).group(1)) / 1000


def measure(tree: Path, runs: int) -> tuple[float, float]:
    """Median ``--help`` seconds and median import milliseconds over ``runs`` runs, after one warm-up."""
    check_tree(tree)
    help_seconds(tree)
    helps = [help_seconds(tree) for _ in range(runs)]
    imports = [import_ms(tree) for _ in range(runs)]
    return statistics.median(helps), statistics.median(imports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per tree (default 10)")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], capture_output=True,
                            text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="pdg-startup-") as tmp:
        before_tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(before_tree), commit],
                       check=True)
        try:
            before = measure(before_tree, args.runs)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)], check=True)
    after = measure(REPO, args.runs)
    print(f"pdg-eval --help, median of {args.runs} wall times (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"  before ({args.before} = {commit}): {before[0]:.3f} s")
    print(f"  after (working tree):  {after[0]:.3f} s")
    print(f"  ratio before/after:    {before[0] / after[0]:.2f}x")
    print(f"python -X importtime, cumulative pdg_eval.cli.main, median of {args.runs}")
    print(f"  before: {before[1]:.1f} ms")
    print(f"  after:  {after[1]:.1f} ms")
    print(f"  ratio:  {before[1] / after[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
