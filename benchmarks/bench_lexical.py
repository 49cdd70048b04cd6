"""Speed of pdg-eval's lexical suite against the reference implementations, side by side.

Scores ConvAI2 valid (7,801 turns; system: the published SC-GPT ``hyp-normal_ord`` outputs) and a
10x replicated copy with every lexical metric variant that has a reference library, checks that
the values agree, and prints the time ratio. Exact all-others self-BLEU is timed on all responses;
the Texygen reference (quadratic) is timed on its own default subset of 500 and extrapolated.

    python benchmarks/bench_lexical.py            # 1x and 10x
    python benchmarks/bench_lexical.py --replicate 1
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdg_eval import __version__, reference  # noqa: E402
from pdg_eval.metrics import ngrams  # noqa: E402
from pdg_eval.metrics.base import build_metric  # noqa: E402
from pdg_eval.metrics.selfbleu import self_bleu_all_others  # noqa: E402
from pdg_eval.readers import open_records  # noqa: E402
from pdg_eval.scoring import MetricSpec, score_records  # noqa: E402
from pdg_eval.files import shared_path  # noqa: E402
from pdg_eval.tokenize import get_tokenizer  # noqa: E402

SUITE = [spec for spec in reference.REFERENCES]


def clear_caches() -> None:
    """Cold start for pdg-eval: drop tokenizer and n-gram caches."""
    for name in ("whitespace", "treebank", "13a", "punct", "parlai", "rouge-score"):
        get_tokenizer(name)._cache.clear()
    ngrams._STATS_CACHE.clear()
    gc.collect()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def load(replicate: int):
    dataset = shared_path("data", "convai2", "valid_self_original.txt")
    hyp = shared_path("data", "outputs", "sc_gpt", "hyp-normal_ord")
    base = list(open_records(str(hyp), "lines", dataset=str(dataset)))
    return [dataclasses.replace(r, id=f"{k}-{r.id}") for k in range(replicate) for r in base]


def agree(ours: dict, ref: dict) -> bool:
    return all(math.isclose(ours[k], ref[k], rel_tol=1e-12, abs_tol=1e-9) for k in ref)


def run_suite(records, label: str, jobs: int = 1) -> None:
    print(f"\n## {label}: {len(records):,} records\n")
    print(f"{'metric':<24}{'reference s':>12}{'pdg-eval s':>12}{'ratio':>9}  values")
    ref_total = ours_total = 0.0
    for spec in SUITE:
        clear_caches()
        t_ref, (_, ref_values) = timed(lambda: reference.REFERENCES[spec](records))
        clear_caches()
        metric = build_metric(spec)
        t_ours, values = timed(lambda: metric.aggregate([metric.item_stats(r) for r in records]))
        ref_total += t_ref
        ours_total += t_ours
        print(f"{spec:<24}{t_ref:>12.3f}{t_ours:>12.3f}{t_ref / t_ours:>8.1f}x  {'identical' if agree(values, ref_values) else 'DIFFER'}")
    clear_caches()
    t_pass, one = timed(lambda: score_records(iter(records), [MetricSpec(s) for s in SUITE]))
    print(f"{'sum of the above':<24}{ref_total:>12.3f}{ours_total:>12.3f}{ref_total / ours_total:>8.1f}x")
    print(f"{'one pdg-eval pass (all)':<24}{ref_total:>12.3f}{t_pass:>12.3f}{ref_total / t_pass:>8.1f}x"
          "  (shared tokenisation, as `pdg-eval score` runs)")
    if jobs > 1:
        clear_caches()
        t_jobs, many = timed(lambda: score_records(iter(records), [MetricSpec(s) for s in SUITE], jobs=jobs))
        same = [(r.scores, r.stats) for r in one.results] == [(r.scores, r.stats) for r in many.results]
        print(f"{f'the pass, --jobs {jobs}':<24}{ref_total:>12.3f}{t_jobs:>12.3f}{ref_total / t_jobs:>8.1f}x"
              f"  (values and per-item statistics {'identical to --jobs 1' if same else 'DIFFER'})")


def run_self_bleu(records, ref_n: int) -> None:
    print("\n## self-BLEU (Texygen, gram 3, all others)\n")
    metric = build_metric("self-bleu,grams=3")
    clear_caches()
    t_ours, value = timed(lambda: metric.aggregate([metric.item_stats(r) for r in records]))
    print(f"pdg-eval exact over all {len(records):,} responses: {t_ours:.2f} s, self-BLEU-3 = {value['self-bleu-3']:.6f}")
    subset = records[:ref_n]
    t_ref, (ref_items, _) = timed(lambda: reference.texygen_self_bleu(subset, gram=3))
    ids = [metric.item_stats(r) for r in subset]
    same = self_bleu_all_others(ids, 3) == [p[0] for p in ref_items]
    est = t_ref * (len(records) / ref_n) ** 2
    print(f"Texygen reference on the first {ref_n}: {t_ref:.2f} s (per-item values {'identical' if same else 'DIFFER'});"
          f" quadratic extrapolation to {len(records):,}: ~{est:,.0f} s (~{est / t_ours:,.0f}x), an estimate, not a run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicate", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--selfbleu-ref-n", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1, help="also time the pass with this many processes")
    args = parser.parse_args()
    print(f"pdg-eval {__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{platform.processor() or 'cpu'}; command: python benchmarks/bench_lexical.py {' '.join(sys.argv[1:])}")
    base = load(1)
    for k in args.replicate:
        run_suite(base if k == 1 else load(k), f"ConvAI2 valid x{k}", args.jobs)
    run_self_bleu(base, args.selfbleu_ref_n)


if __name__ == "__main__":
    main()
