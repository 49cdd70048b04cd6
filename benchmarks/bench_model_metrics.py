"""NLI C-score throughput: pdg-eval's pipeline vs the bare batched forward pass of the same model,
vs a naive per-pair loop, and a second run served from the score cache.

    python benchmarks/bench_model_metrics.py --model DIR [--pairs N] [--batch-size 64]

Pairs are (persona sentence, gold response) over ConvAI2 valid (about 35k).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="NLI model folder (e.g. from `pdg-eval scorers train nli`)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--naive-pairs", type=int, default=300, help="pairs timed for the per-pair loop")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N turns (0: all 7,801)")
    args = parser.parse_args()
    os.environ["PDG_EVAL_CACHE"] = str(Path(tempfile.mkdtemp()) / "scores.sqlite")

    import torch

    from pdg_eval.metrics.base import build_metric
    from pdg_eval.models.runtime import PairClassifier
    from pdg_eval.readers import open_records
    from pdg_eval.files import shared_path

    dataset = shared_path("data", "convai2", "valid_self_original.txt")
    records = list(open_records(str(dataset), "convai2"))
    if args.limit:
        records = records[:args.limit]
    pairs = [(p, r.response) for r in records for p in r.persona]
    print(f"pdg-eval NLI benchmark: {len(records):,} turns, {len(pairs):,} pairs, model {args.model}, "
          f"batch {args.batch_size}, torch {torch.__version__}, {platform.machine()}, threads {torch.get_num_threads()}")

    bare = PairClassifier(args.model, batch_size=args.batch_size)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(pairs), args.batch_size):
            chunk = pairs[i:i + args.batch_size]
            enc = bare.tokenizer([a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True,
                                 max_length=128, return_tensors="pt")
            bare.model(**enc)
    t_bare = time.perf_counter() - start

    metric = build_metric(f"c-score:chanliang,model={args.model},batch_size={args.batch_size}")
    metric.model  # the weights load on first use: keep that out of the timed run
    start = time.perf_counter()
    first = metric.aggregate(metric.items_stats(records))
    t_pipe = time.perf_counter() - start
    start = time.perf_counter()
    second = build_metric(f"c-score:chanliang,model={args.model},batch_size={args.batch_size}")
    again = second.aggregate(second.items_stats(records))
    t_cached = time.perf_counter() - start
    assert again == first

    subset = pairs[:args.naive_pairs]
    start = time.perf_counter()
    with torch.inference_mode():
        for a, b in subset:
            bare.model(**bare.tokenizer(a, b, truncation=True, max_length=128, return_tensors="pt"))
    t_naive = (time.perf_counter() - start) * len(pairs) / len(subset)

    rate = lambda t: len(pairs) / t  # noqa: E731
    print(f"bare batched forward (file order): {t_bare:8.1f} s  {rate(t_bare):8.0f} pairs/s")
    print(f"pdg-eval pipeline, cold cache    : {t_pipe:8.1f} s  {rate(t_pipe):8.0f} pairs/s  "
          f"({t_bare / t_pipe:.2f}x the bare pass; C-score {first['c-score']:.4f})")
    print(f"pdg-eval pipeline, second run    : {t_cached:8.2f} s  ({100 * t_cached / t_pipe:.1f}% of the first run)")
    print(f"naive per-pair loop (timed on {len(subset)} pairs, extrapolated): {t_naive:8.1f} s "
          f"({t_naive / t_pipe:.1f}x slower than the pipeline)")


if __name__ == "__main__":
    main()
