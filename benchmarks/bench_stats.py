"""Speed of pdg-eval's paired significance tests against sacreBLEU's paired AR, side by side, on the same data.

10 systems on ConvAI2 valid (7,801 turns): the six published SC-GPT/DialoGPT runs, LMEDR (original personas), PAA
(its file aligned on the gold text: 7,751 turns, so the tests use the 7,751 turns all systems share), the gold
references, and SC-GPT's normalised gold file. (LMEDR's output on the revised personas is not one of them: it was
scored against other personas, and `compare` refuses to pair its items.) 8 metrics, all with vectorised resampling:
bleu:sacrebleu, bleu:nltk_sentence_avg, rouge:pltrdy, rouge:rouge_score, f1:parlai, distinct:corpus,
distinct:per_response, p-f1:msp. Paired AR of every system against the first (9 pairs), 10,000 shuffles.

sacreBLEU: ``PairedTest(..., test_type="ar", n_samples=10000)`` with ``BLEU()`` on the same 10 systems (its own
tokenisation and statistics included, as a user runs it). pdg-eval is timed for BLEU alone (the ratio) and for the
whole 8-metric grid; statistics extraction (scoring) is timed separately. BLEU p-values are checked against sacreBLEU
with the same seed (count="sacrebleu", sacreBLEU's strict rule).

    python benchmarks/bench_stats.py                 # 10,000 shuffles
    python benchmarks/bench_stats.py --resamples 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdg_eval import __version__  # noqa: E402
from pdg_eval.compare import SystemRun, compare  # noqa: E402
from pdg_eval.readers import open_records  # noqa: E402
from pdg_eval.resampling import Draws  # noqa: E402
from pdg_eval.scoring import MetricSpec, score_records  # noqa: E402
from pdg_eval.files import shared_path  # noqa: E402
from pdg_eval.stats import paired_tests  # noqa: E402
from bench_lexical import clear_caches  # noqa: E402

METRICS = ["bleu:sacrebleu", "bleu:nltk_sentence_avg", "rouge:pltrdy", "rouge:rouge_score", "f1:parlai",
           "distinct:corpus", "distinct:per_response", "p-f1:msp"]
SC_GPT = ["hyp-normal_ord", "hyp-dg", "hyp-multitask", "hyp-lex_pos_ord", "hyp-pos_maj10", "hyp-single_pos"]


def load_systems() -> dict[str, list]:
    dataset = str(shared_path("data", "convai2", "valid_self_original.txt"))
    out = {}
    for name in SC_GPT:
        out[name] = list(open_records(str(shared_path("data", "outputs", "sc_gpt", name)), "lines", dataset=dataset))
    path = shared_path("data", "outputs", "lmedr", "persona_original.tsv")
    out["lmedr-original"] = list(open_records(str(path), "lmedr", dataset=dataset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the alignment report: 50 of PAA's rows find no dataset turn
        out["paa"] = list(open_records(str(shared_path("data", "outputs", "paa", "PAA.txt")), "paa", dataset=dataset))
    first = out[SC_GPT[0]]
    out["gold"] = [dataclasses.replace(r, response=r.reference) for r in first]
    refs = [line.rstrip("\n") for line in open(shared_path("data", "outputs", "sc_gpt", "ref"), encoding="utf-8")]
    out["sc-gpt-ref"] = [dataclasses.replace(r, response=ref) for r, ref in zip(first, refs)]
    return out


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    import numpy as np
    import sacrebleu
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # its detokenisation hint, once per system
    systems = load_systems()
    names = list(systems)
    n_items = len(systems[names[0]])
    print(f"pdg-eval {__version__}, sacrebleu {sacrebleu.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, {platform.machine()}")
    print(f"{len(names)} systems x {n_items:,} items x {len(METRICS)} metrics, paired AR vs {names[0]}, "
          f"{args.resamples:,} shuffles\n")

    specs = [MetricSpec(m) for m in METRICS]
    clear_caches()
    t_score, runs = timed(lambda: [SystemRun.from_score_run(n, score_records(systems[n], specs, source=n))
                                   for n in names])
    print(f"pdg-eval statistics extraction (scoring, all 8 metrics, 10 systems): {t_score:.1f} s")

    t_grid, grid = timed(lambda: compare(runs, names[0], "ar", args.resamples, ci_resamples=0, groups=False))
    keys = len(grid.columns)
    print(f"pdg-eval paired AR, {len(names) - 1} pairs x {len(METRICS)} metrics ({keys} keys, {grid.n_common:,} "
          f"common items): {t_grid:.1f} s")

    # BLEU against sacreBLEU: the systems with every turn (sacreBLEU pairs segments by position)
    full = [k for k, n in enumerate(names) if len(systems[n]) == n_items]
    bleu = next(k for k, m in runs[0].metrics.items() if m.label == "bleu:sacrebleu")  # its signature identity
    bleu_runs = [runs[k].restricted({bleu}) for k in full]
    t_bleu, _ = timed(lambda: compare(bleu_runs, names[0], "ar", args.resamples, ci_resamples=0, groups=False))
    clear_caches()  # cold tokenizer and n-gram caches, as sacreBLEU starts
    t_bleu_score, _ = timed(lambda: [score_records(systems[names[k]], [MetricSpec("bleu:sacrebleu")], source=names[k])
                                     for k in full])
    print(f"pdg-eval paired AR, BLEU only (bleu-1..4), {len(full) - 1} pairs: {t_bleu:.2f} s "
          f"(+ {t_bleu_score:.1f} s statistics extraction)")

    refs = [[r.reference for r in systems[names[0]]]]
    named = [(names[k], [r.response for r in systems[names[k]]]) for k in full]
    t_sacre, (_, sacre) = timed(lambda: PairedTest(named, {"BLEU": BLEU()}, refs, test_type="ar",
                                                    n_samples=args.resamples)())
    print(f"sacreBLEU PairedTest --paired-ar, BLEU (bleu-4), {len(full) - 1} pairs: {t_sacre:.1f} s "
          "(statistics included)")

    # same draws, sacreBLEU's strict counting: the p-values agree
    metric = runs[0].metrics[bleu]
    draws = Draws("ar", n_items, args.resamples, 12345)
    worst = 0.0
    for k, index in enumerate(full[1:], start=1):
        name = names[index]
        ours = paired_tests(metric, runs[0].stats[bleu], runs[index].stats[bleu], "ar", count="sacrebleu",
                            draws=draws)["bleu-4"]
        theirs = sacre["BLEU"][k]
        worst = max(worst, abs(ours.p_value - theirs.p_value))
        print(f"  {name:>16}: BLEU {ours.score_b:6.2f} (sacreBLEU {theirs.score:6.2f})  "
              f"p {ours.p_value:.4f} (sacreBLEU {theirs.p_value:.4f})")
    print(f"largest p-value difference: {worst:.2e} (one resample = {1 / (args.resamples + 1):.2e})\n")
    print(f"ratio sacreBLEU / pdg-eval, BLEU paired AR from statistics: {t_sacre / t_bleu:.1f}x")
    print(f"ratio sacreBLEU / pdg-eval, BLEU incl. statistics extraction: {t_sacre / (t_bleu + t_bleu_score):.1f}x")
    print(f"whole grid ({len(METRICS)} metrics) vs sacreBLEU's BLEU alone: {t_grid:.1f} s vs {t_sacre:.1f} s")


if __name__ == "__main__":
    main()
