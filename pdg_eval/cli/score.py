"""``pdg-eval score``: score a predictions file under a preset and/or explicit metrics."""

from __future__ import annotations

import argparse
import sys

from ..files import all_or_nothing, check_outputs
from ..inputs import MAX_RECORD_BYTES
from ..models.distributed import is_main_process
from ..presets import PRESETS
from ..readers import FORMATS
from ..report import format_table, plot_per_item, write_json, write_per_item_csv
from ..scoring import requested_metrics, score_file
from ..tokenize import TOKENIZERS
from .args import add_model_options, positive_int, slot_models


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score", help="score a predictions file",
        description="Score system responses. INPUT is pdg-eval JSONL (see `pdg-eval schema`), or a published "
                    "output format (ParlAI ConvAI2 text, PAA GT/PD, LMEDR TSV, one response per line).")
    p.add_argument("input", help="predictions file")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="input format (default: sniffed)")
    p.add_argument("--dataset", help="ConvAI2 ParlAI text file that supplies persona, context, references and "
                                     "candidates for formats that lack them (lines, lmedr; alignment for paa; "
                                     "persona and context of jsonl records that leave them out, joined by id)")
    p.add_argument("--refs", help="line-aligned reference file for --format lines")
    p.add_argument("--preset", choices=sorted(PRESETS), help="paper preset (default: pdg when no --metric is given)")
    p.add_argument("--metric", "-m", action="append", default=[], metavar="NAME[:VARIANT][,key=value...]",
                   help="add a metric, e.g. bleu:sacrebleu or distinct:corpus,tok=cl100k (repeatable)")
    add_model_options(p)
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="override the tokenizer of every metric that tokenizes")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write values, signatures and per-item statistics")
    p.add_argument("--no-item-stats", action="store_true", help="leave per-item statistics out of --json")
    p.add_argument("--per-item", metavar="FILE", help="write per-item values of sentence-level metrics as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="draw the per-item distributions of the sentence-level metrics")
    p.add_argument("--max-record-bytes", type=positive_int, default=MAX_RECORD_BYTES,
                   help="longest accepted input line")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, metavar="N",
                   help="compute the lexical metrics' statistics in N processes (the output is the same as with 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.json_out, args.per_item, args.plot], [args.input, args.dataset, args.refs])
    specs = requested_metrics(args.preset, args.metric, models=slot_models(args))
    result, reader_warnings = score_file(args.input, specs, args.format, dataset=args.dataset, refs=args.refs,
                                         max_bytes=args.max_record_bytes, tokenizer=args.tokenizer,
                                         progress=not args.quiet and sys.stderr.isatty(), jobs=args.jobs,
                                         keep_stats=bool(args.json_out and not args.no_item_stats)
                                         or bool(args.per_item or args.plot))
    if not is_main_process():  # under `accelerate launch` the main process reports
        return 0
    for warning in reader_warnings + result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Outputs are written only after every record scored, and all of them or none.
    with all_or_nothing():
        if args.json_out:
            write_json(result, args.json_out, item_stats=not args.no_item_stats)
        if args.per_item:
            write_per_item_csv(result, args.per_item)
        if args.plot:
            plot_per_item(result, args.plot)
    sys.stdout.write(format_table(result))
    return 0
