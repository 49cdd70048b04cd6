"""``pdg-eval compare``: systems x metrics with intervals, paired tests against a baseline, corrections, tie groups."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..compare import (FAMILIES, TESTS, compare, difference_intervals, is_score_json, load_runs,
                       metrics_every_system_has)
from ..errors import ConfigError
from ..files import all_or_nothing, atomic_writer, check_outputs
from ..presets import PRESETS
from ..readers import FORMATS
from ..scoring import requested_metrics, score_file
from ..tables import FORMATS as TABLE_FORMATS, plot_differences, render
from ..tokenize import TOKENIZERS
from .args import add_model_options, non_negative_int, positive_int, probability, slot_models


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="compare systems with paired significance tests",
        description="One table, systems x metrics: values, bootstrap CIs, paired tests against a baseline (Holm-"
                    "corrected by default), significance markers and tie groups. Each INPUT is a predictions file "
                    "(scored here with --preset / --metric) or a score JSON written by `pdg-eval score --json`.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="two or more systems")
    p.add_argument("--name", action="append", help="display name per input, in order (default: file stem)")
    p.add_argument("--baseline", help="system name to test against (default: the first)")
    p.add_argument("--ceiling", action="append", default=[], help="system shown but not ranked (e.g. gold)")
    p.add_argument("--format", dest="input_format", default="auto", choices=("auto", *FORMATS), help="input format")
    p.add_argument("--dataset", help="ConvAI2 ParlAI text file for formats that need it (see `pdg-eval score`)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="paper preset (default: pdg when no --metric)")
    p.add_argument("--metric", "-m", action="append", default=[], help="add a metric spec (repeatable)")
    add_model_options(p)
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="override the tokenizer of every metric")
    p.add_argument("--test", choices=TESTS, default="ar",
                   help="ar: paired approximate randomization (default); bootstrap: paired bootstrap; t: paired t-test "
                        "on per-item values (IDL's protocol; sentence-level metrics only)")
    p.add_argument("--resamples", type=positive_int, default=10_000, help="AR shuffles / bootstrap resamples (default 10000)")
    p.add_argument("--loop-resamples", type=non_negative_int, default=0,
                   help="resamples for metrics with no vectorised form (self-BLEU, MORPHEUS P-Co): each re-aggregates "
                        "the whole corpus, so they are untested unless this is > 0")
    p.add_argument("--seed", type=non_negative_int, default=12345)
    p.add_argument("--adjust", choices=("holm", "fdr_bh"), default="holm",
                   help="multiple-comparison correction: holm (family-wise, default) or fdr_bh (Benjamini-Hochberg)")
    p.add_argument("--family", choices=FAMILIES, default="column",
                   help="correct per metric column (default) or over the whole table")
    p.add_argument("--alpha", type=probability, default=0.05)
    p.add_argument("--ci-resamples", type=non_negative_int, default=1000, help="bootstrap resamples for 95%% CIs (0: none)")
    p.add_argument("--no-groups", action="store_true", help="skip tie groups (they need extra pairwise tests)")
    p.add_argument("--output-format", "-f", choices=TABLE_FORMATS, default="text")
    p.add_argument("--out", "-o", help="write the table here instead of stdout")
    p.add_argument("--plot", metavar="FILE.png", help="forest plot: each system's difference to the baseline per metric "
                                                      "key, with its paired bootstrap 95%% interval (--ci-resamples)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out, args.plot], [*args.inputs, args.dataset])
    if args.plot and args.ci_resamples == 0:
        raise ConfigError("--plot draws bootstrap intervals: give --ci-resamples > 0")
    specs = requested_metrics(args.preset, args.metric, models=slot_models(args))

    def score(path: str):
        result, reader_warnings = score_file(path, specs, args.input_format, dataset=args.dataset,
                                             tokenizer=args.tokenizer)
        for warning in reader_warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return result

    runs = load_runs(args.inputs, args.name, score)
    if not any(is_score_json(path) for path in args.inputs):  # stored scores must match: their columns are refused
        runs, partial = metrics_every_system_has(runs)
        for note in partial:
            print(f"skipped: {note}", file=sys.stderr)
    progress = None if args.quiet else (lambda spec: print(f"testing {spec} ...", file=sys.stderr))
    result = compare(runs, args.baseline, args.test, args.resamples, args.seed, args.adjust, args.alpha, args.family,
                     args.ci_resamples, args.loop_resamples, not args.no_groups, args.ceiling, progress)
    table = render(result, args.output_format)
    with all_or_nothing():
        if args.plot:
            plot_differences(result, difference_intervals(runs, result, args.ci_resamples, args.seed), Path(args.plot))
        if args.out:
            with atomic_writer(args.out) as handle:
                handle.write(table)
    if not args.out:
        sys.stdout.write(table)
    return 0
