"""``pdg-eval leaderboard run|import-reported|build|check``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import ConfigError
from ..files import all_or_nothing, shared_path
from ..leaderboard import LEADERBOARDS, Board, board_names, build, import_reported, load_board, run_board, stale
from ..scoring import MODEL_SLOTS
from .args import add_model_options, non_negative_int, positive_int, slot_models


#: the options of ``leaderboard run`` that change its numbers, with their defaults
_RUN_DEFAULTS = {"resamples": 10_000, "ci_resamples": 1000, "seed": 12345}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("leaderboard", help="regenerate or check leaderboards/*.md",
                              description="Leaderboards are rendered from committed run records (leaderboards/runs/) "
                                          "and the papers' reported numbers (leaderboards/reported/).")
    sub = p.add_subparsers(dest="action", required=True)
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, default=LEADERBOARDS, metavar="DIR",
                      help="folder of the boards' .toml, .md, runs/ and reported/ (default: ./leaderboards of the "
                           "working directory)")
    for action, text in (("build", "regenerate the markdown (and HTML pages) from the stored records"),
                         ("check", "fail when a markdown file or HTML page is stale")):
        q = sub.add_parser(action, help=text, parents=[root])
        q.add_argument("names", nargs="*", help="boards (default: all)")
        if action == "build":
            q.add_argument("--html", action="store_true",
                           help="also write <board>.html: one self-contained page with sortable tables (kept up to "
                                "date by later builds and checked by `check` once it exists)")
        q.set_defaults(func=run_build if action == "build" else run_check)
    q = sub.add_parser("run", help="score every system under every preset and write the run records (needs ../shared)",
                       parents=[root])
    q.add_argument("name")
    q.add_argument("--preset", action="append", help="only these presets (default: the board's)")
    for option, default in _RUN_DEFAULTS.items():
        q.add_argument(f"--{option.replace('_', '-')}", default=default,
                       type=positive_int if option == "resamples" else non_negative_int)
    add_model_options(q)
    q.set_defaults(func=run_records)
    q = sub.add_parser("import-reported", help="copy the board's rows of ../shared/data/reported/*.csv",
                       parents=[root])
    q.add_argument("name")
    q.set_defaults(func=run_import)


def _boards(names: list[str], root: Path) -> list[Board]:
    if not root.is_dir():
        raise ConfigError(f"--root {root}: no such folder (boards are found in ./leaderboards of the working "
                          "directory, or in the folder --root names)")
    return [load_board(n, root) for n in (names or board_names(root))]


def run_build(args) -> int:
    """All boards or none: a bad file in one leaves every markdown file as it was."""
    boards = _boards(args.names, args.root)
    with all_or_nothing():
        changed = [build(board, html=args.html) for board in boards]
    for outputs in changed:
        for path, written in outputs.items():
            print(f"{path}: {'written' if written else 'unchanged'}")
    return 0


def run_check(args) -> int:
    fresh = True
    for board in _boards(args.names, args.root):
        outdated = stale(board)
        if outdated:
            fresh = False
            for path in outdated:
                print(f"{path.name}: stale; run `pdg-eval leaderboard build {board.name}`", file=sys.stderr)
        else:
            print(f"{board.markdown_path.name}: up to date")
    return 0 if fresh else 1


def run_import(args) -> int:
    board = load_board(args.name, args.root)
    doc = import_reported(board, shared_path())
    print(f"{board.reported_path}: {len(doc['rows'])} reported rows")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The run as a command line: the board, its presets and the non-default options, in a fixed order, so that
    a re-run records the same command (``--root`` says where the files are, not what is computed)."""
    parts = ["pdg-eval", "leaderboard", "run", args.name]
    for preset in args.preset or ():
        parts += ["--preset", preset]
    for option, default in _RUN_DEFAULTS.items():
        if getattr(args, option) != default:
            parts += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    for slot in MODEL_SLOTS.values():
        if getattr(args, slot.dest):
            parts += [slot.option, getattr(args, slot.dest)]
    return shlex.join(parts)


def run_records(args) -> int:
    board = load_board(args.name, args.root)
    for preset in args.preset or board.presets:
        if preset not in board.presets:
            raise ConfigError(f"preset {preset!r} is not on board {board.name} ({', '.join(board.presets)})")
    run_board(board, args.preset or board.presets, resamples=args.resamples, seed=args.seed,
              ci_resamples=args.ci_resamples, models=slot_models(args), command=_command(args),
              log=lambda line: print(line, file=sys.stderr))
    return 0
