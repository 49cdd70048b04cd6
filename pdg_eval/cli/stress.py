"""``pdg-eval stress``: what each persona/consistency metric rewards, on perturbed ConvAI2 gold responses
(:mod:`pdg_eval.stress`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from .args import add_model_options, non_negative_int, positive_int, slot_models

SELF_FILE = ("data", "convai2", "valid_self_original.txt")
BOTH_FILE = ("data", "convai2", "valid_both_original_no_cands.txt")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stress", help="metric stress test: scores of perturbed gold responses",
        description="Score controlled perturbations of ConvAI2 gold responses (persona copied, negated, the "
                    "partner's persona, another dialogue's response, a generic reply, a later turn, empty) with every "
                    "persona/consistency metric, and the share of items on which each metric orders them as a valid "
                    "metric must (pass = strictly in order; ties reported apart).")
    p.add_argument("--dataset", help="ConvAI2 ParlAI text file (default: the shared valid_self_original.txt)")
    p.add_argument("--partner-dataset", metavar="FILE",
                   help="both-persona ConvAI2 file of the same split, for partner_persona (default with the shared "
                        "dataset: the shared valid_both_original_no_cands.txt)")
    p.add_argument("--limit", type=positive_int, default=500, help="turns to draw (default 500)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the draw and the perturbations")
    p.add_argument("--metric", "-m", action="append", default=[], metavar="SPEC",
                   help="metric to test instead of every persona/consistency metric (repeatable)")
    add_model_options(p)
    p.add_argument("--idf", metavar="FILE", help="global idf table for p-cover:msp (skipped without)")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write all numbers, signatures and settings")
    p.add_argument("--plot", metavar="FILE.png", help="heatmap metrics x perturbations, normalised per metric")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _datasets(args: argparse.Namespace) -> tuple[str, str | None]:
    from ..files import shared_path

    if args.dataset:
        return args.dataset, args.partner_dataset
    try:
        dataset = str(shared_path(*SELF_FILE))
    except FileNotFoundError:
        raise ConfigError("no --dataset given and the shared ConvAI2 valid_self_original.txt is not found") from None
    if args.partner_dataset:
        return dataset, args.partner_dataset
    try:
        return dataset, str(shared_path(*BOTH_FILE))
    except FileNotFoundError:
        return dataset, None


def run(args: argparse.Namespace) -> int:
    from ..files import all_or_nothing, atomic_writer, check_outputs
    from ..stress import format_stress, plot_stress, stress, stress_json, stress_specs

    dataset, partner = _datasets(args)
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise ConfigError(f"--plot {args.plot}: give a .png file name")
    check_outputs([args.json_out, args.plot], [dataset, partner, args.idf])
    specs = stress_specs(args.metric, slot_models(args), args.idf)
    result = stress(dataset, args.limit, args.seed, specs, partner, progress=not args.quiet and sys.stderr.isatty())
    with all_or_nothing():
        if args.json_out:
            with atomic_writer(args.json_out) as handle:
                json.dump(stress_json(result), handle, ensure_ascii=False, indent=1)
                handle.write("\n")
        if args.plot:
            with atomic_writer(args.plot, binary=True) as handle:
                plot_stress(result, handle)
    sys.stdout.write(format_stress(result))
    return 0
