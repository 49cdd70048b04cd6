"""Peak memory of ``pdg-eval score`` on large files: the working tree against a git revision, side by side.

The input is PAA's published ConvAI2 valid outputs (7,801 records aligned with the dataset) replicated with unique
ids to each size. For each tree and size one fresh interpreter runs ``pdg-eval score FILE -m ... -q`` (sentence-level
metrics, no item outputs) and reports its peak RSS (``getrusage``) and wall time; the printed scores of the two trees
must be the same bytes. The revision is checked out with ``git worktree add`` and imported through ``PYTHONPATH``,
as in ``bench_startup.py``.

    python benchmarks/bench_memory.py                              # 10k and 100k records, working tree vs HEAD
    python benchmarks/bench_memory.py --sizes 10000 100000 1000000 --before HEAD~2 --workdir /tmp/mem
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_startup import check_tree, in_tree  # noqa: E402

METRICS = ["-m", "bleu:nltk_sentence_avg", "-m", "f1", "-m", "rouge:pltrdy", "-m", "p-f1"]
CHILD = """
import resource, sys, time
from pdg_eval.cli.main import main
start = time.perf_counter()
status = main(["score", sys.argv[1], *sys.argv[2:], "-q"])
wall = time.perf_counter() - start
print(f"@@ {status} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {wall:.2f}", file=sys.stderr)
"""


def replicated(folder: Path, size: int) -> Path:
    """PAA's outputs with the dataset's fields, replicated with unique ids to ``size`` records (made once)."""
    path = folder / f"paa_convai2_{size}.jsonl"
    if path.is_file():
        return path
    from pdg_eval.files import shared_path
    from pdg_eval.readers import open_records

    base = [r.to_json() for r in open_records(shared_path("data", "outputs", "paa", "PAA.txt"), "paa",
                                              dataset=shared_path("data", "convai2", "valid_self_original.txt"))]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for k in range(size):
            row = dict(base[k % len(base)], id=f"{k // len(base)}-{base[k % len(base)]['id']}")
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return path


def measure(tree: Path, path: Path) -> tuple[float, float, str]:
    """Peak RSS (MB), wall seconds and the printed scores of one ``score`` run importing pdg_eval from ``tree``."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), *METRICS], **in_tree(tree), capture_output=True,
                          text=True)
    line = next(line for line in done.stderr.splitlines() if line.startswith("@@ "))
    status, rss_kb, wall = line.split()[1:]
    if status != "0":
        raise SystemExit(f"score exited {status} in {tree}:\n{done.stderr[-2000:]}")
    return int(rss_kb) / 1024, float(wall), done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", help="where the replicated files are kept (default: a temporary folder)")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], capture_output=True,
                            text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="pdg-memory-") as tmp:
        folder = Path(args.workdir) if args.workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {size: replicated(folder, size) for size in sorted(args.sizes)}
        before_tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(before_tree), commit],
                       check=True)
        try:
            check_tree(before_tree)
            check_tree(REPO)
            print(f"pdg-eval score {' '.join(METRICS)} -q: peak RSS and wall time, {commit} vs the working tree "
                  f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
            print(f"{'records':>10} {'before MB':>10} {'after MB':>9} {'before s':>9} {'after s':>8}  same scores")
            for size, path in files.items():
                before = measure(before_tree, path)
                after = measure(REPO, path)
                print(f"{size:>10,} {before[0]:>10.0f} {after[0]:>9.0f} {before[1]:>9.1f} {after[1]:>8.1f}  "
                      f"{'yes' if before[2] == after[2] else 'NO'}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
