"""Entry point of the ``pdg-eval`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, NoReturn, Sequence

from .. import __version__
from ..errors import InputError, PdgEvalError
from ..models.distributed import finish
from ..plugins import load_plugins
from ..collector import freeze_after_pauses
from . import annotate, compare, leaderboard, lm, power, score, scorers, stress


def _list_metrics(args: argparse.Namespace) -> int:
    from ..metrics import load_all
    from ..metrics.base import METRICS

    load_all()
    for name in sorted(METRICS):
        family = METRICS[name]
        print(f"{name}  (default variant: {family.default_variant})")
        for variant, cls in family.variants.items():
            tag = " [bug-compatible]" if cls.bug_compatible else ""
            tok = f" tok={cls.default_tokenizer}" if cls.default_tokenizer else ""
            print(f"  {name}:{variant}{tok}{tag}\n      {cls.description}\n      source: {cls.source}")
    return 0


def _list_presets(args: argparse.Namespace) -> int:
    from ..presets import PRESETS
    from ..scoring import MODEL_SLOTS, split_model_tag

    for preset in PRESETS.values():
        print(f"{preset.name}: {preset.description}")
        for spec in preset.metrics:
            metric, tag = split_model_tag(spec)
            note = ("   (when the records have the field)" if spec.endswith("?")
                    else f"   (model: {MODEL_SLOTS[tag].option}, default {MODEL_SLOTS[tag].default})" if tag else "")
            print(f"    {metric}{note}")
        if preset.notes:
            print(f"  note: {preset.notes}")
    return 0


def _print_schema(args: argparse.Namespace) -> int:
    from ..records import record_schema

    print(json.dumps(record_schema(), indent=2))
    return 0


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with pdg-eval's rule for bad input: one line on stderr and exit code 2 (the usage is in ``--help``).
    Subcommand parsers are of the same class (``add_subparsers`` creates them with ``type(self)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="pdg-eval", description="Evaluation toolkit for Personalized Dialogue Generation.")
    parser.add_argument("--version", action="version", version=f"pdg-eval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    score.add_parser(sub)
    compare.add_parser(sub)
    power.add_parser(sub)
    leaderboard.add_parser(sub)
    scorers.add_parser(sub)
    lm.add_parser(sub)
    annotate.add_parser(sub)
    stress.add_parser(sub)
    for add_parser in load_plugins("pdg_eval.commands"):  # `run`, when the methods are installed
        add_parser(sub)
    sub.add_parser("metrics", help="list metrics, variants and their sources").set_defaults(func=_list_metrics)
    sub.add_parser("presets", help="list paper presets").set_defaults(func=_list_presets)
    sub.add_parser("schema", help="print the JSON Schema of an input record").set_defaults(func=_print_schema)
    return parser


def exit_status(call: Callable[[], object], prog: str = "pdg-eval") -> int:
    """Run ``call`` as a command: its status (when it returns an int, else 0), or 2 with one line on stderr for bad input or
    configuration (``file:line: field: problem``) and unreadable or unwritable files."""
    try:
        status = call()
        finish()  # under `accelerate launch` / `torchrun`: leave together
        return status if isinstance(status, int) else 0
    except InputError as exc:  # one line: file:line: field: problem
        print(exc.format(), file=sys.stderr)
        return 2
    except PdgEvalError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: the reader has all it wanted
        # Python's documented recipe (library/signal, "Note on SIGPIPE"): no flush error when the interpreter exits
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # unreadable input or unwritable output
        print(f"{exc.filename}: {exc.strerror}" if exc.filename else f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    freeze_after_pauses()  # a command ends when its work does
    return exit_status(lambda: args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
