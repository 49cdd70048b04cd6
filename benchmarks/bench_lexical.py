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
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdg_eval import __version__, reference  # noqa: E402
from pdg_eval.metrics import bleu, ngrams  # noqa: E402
from pdg_eval.metrics.base import build_metric  # noqa: E402
from pdg_eval.metrics.selfbleu import self_bleu_all_others  # noqa: E402
from pdg_eval.readers import open_records  # noqa: E402
from pdg_eval.collector import freeze_after_pauses  # noqa: E402
from pdg_eval.scoring import CHUNK_SIZE, MetricSpec, score_records  # noqa: E402
from pdg_eval.files import shared_path  # noqa: E402
from pdg_eval.tokenize import get_tokenizer  # noqa: E402

SUITE = [spec for spec in reference.REFERENCES]


def clear_caches() -> None:
    """Cold start for pdg-eval: new tokenizer instances (empty text and stem caches), empty n-gram count and match
    caches, no remembered sentence-BLEU values. (Before 2026-12-05 the n-gram counts and the stems survived from one
    timing to the next.)"""
    get_tokenizer.cache_clear()
    bleu._sentence_bleu_values.cache_clear()
    ngrams._STATS_CACHE.clear()
    ngrams._COUNTS_CACHE.clear()
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


def chunked_stats(metric, records) -> list:
    """The metric's statistics of ``records`` as scoring computes them, chunk by chunk (``Metric.items_stats``)."""
    return [stats for start in range(0, len(records), CHUNK_SIZE)
            for stats in metric.items_stats(records[start:start + CHUNK_SIZE])]


def agree(ours: dict, ref: dict) -> bool:
    return all(math.isclose(ours[k], ref[k], rel_tol=1e-12, abs_tol=1e-9) for k in ref)


def run_suite(records, label: str, jobs: int = 1, repeat: int = 5) -> None:
    print(f"\n## {label}: {len(records):,} records\n")
    print(f"{'metric':<24}{'reference s':>12}{'pdg-eval s':>12}{'ratio':>9}  values")
    ref_total = ours_total = 0.0
    reference_values = []
    for spec in SUITE:
        clear_caches()
        t_ref, (_, ref_values) = timed(lambda: reference.REFERENCES[spec](records))
        clear_caches()
        metric = build_metric(spec)
        t_ours, values = timed(lambda: metric.aggregate(chunked_stats(metric, records)))
        ref_total += t_ref
        ours_total += t_ours
        reference_values.append(ref_values)
        print(f"{spec:<24}{t_ref:>12.3f}{t_ours:>12.3f}{t_ref / t_ours:>8.1f}x  {'identical' if agree(values, ref_values) else 'DIFFER'}")
    print(f"{'sum of the above':<24}{ref_total:>12.3f}{ours_total:>12.3f}{ref_total / ours_total:>8.1f}x")
    specs = [MetricSpec(s) for s in SUITE]
    passes: dict[tuple[int, bool], list] = {}  # (jobs, keep_stats) -> [(seconds, run), ...], taken in turn
    for _ in range(repeat):
        for keep in (False, True):  # `pdg-eval score` keeps per-item statistics only for item outputs (--json items)
            for n in sorted({1, jobs}):
                clear_caches()
                passes.setdefault((n, keep), []).append(
                    timed(lambda: score_records(iter(records), specs, jobs=n, keep_stats=keep)))
    runs = [run for timings in passes.values() for _, run in timings]
    same_scores = (len({repr([r.scores for r in run.results]) for run in runs}) == 1
                   and all(agree(r.scores, v) for r, v in zip(runs[0].results, reference_values, strict=True)))
    same_stats = all([r.stats for r in run.results] == [r.stats for r in passes[1, True][0][1].results]
                     for _, run in passes[jobs, True])
    print(f"\npasses, median of {repeat} (min - max)")
    for keep in (False, True):
        for n in sorted({1, jobs}):
            label = ("one pass" if n == 1 else f"the pass, --jobs {n}") + (", items" if keep else "")
            seconds = sorted(t for t, _ in passes[n, keep])
            t = statistics.median(seconds)
            print(f"{label:<24}{ref_total:>12.3f}{t:>12.3f}{ref_total / t:>8.1f}x  ({seconds[0]:.3f} - {seconds[-1]:.3f})")
    print(f"\nOne pass = `score_records` as `pdg-eval score` runs (shared tokenisation); ', items': keeping every "
          f"item's statistics, as `--json` with items, `--per-item` or `--plot` do. Scores of the {len(runs)} passes "
          f"{'identical, and equal to the references' if same_scores else 'DIFFER'}; per-item statistics with --jobs {jobs} "
          f"{'identical to one process' if same_stats else 'DIFFER'}.")


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
    parser.add_argument("--repeat", type=int, default=5, help="timings of each pass (their median is reported; "
                        "runs on a shared 2-core machine vary by +-15%%)")
    args = parser.parse_args()
    freeze_after_pauses()  # as the command line does
    print(f"pdg-eval {__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{platform.processor() or 'cpu'}; command: python benchmarks/bench_lexical.py {' '.join(sys.argv[1:])}")
    base = load(1)
    for k in args.replicate:
        run_suite(base if k == 1 else load(k), f"ConvAI2 valid x{k}", args.jobs, args.repeat if k == 1 else 1)
    run_self_bleu(base, args.selfbleu_ref_n)


if __name__ == "__main__":
    main()
