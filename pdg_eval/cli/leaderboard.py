"""``pdg-eval leaderboard run|import-reported|build|check``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

from ..compare import SystemRun, compare
from ..errors import ConfigError
from ..leaderboard import LEADERBOARDS, Board, board_names, build, import_reported, load_board, stale
from ..files import all_or_nothing, atomic_writer, file_sha256, shared_path
from ..readers import open_records
from ..scoring import requested_metrics, score_records
from .args import add_model_options, non_negative_int, positive_int


#: the options of ``leaderboard run`` that change its numbers, with their defaults
_RUN_DEFAULTS = {"resamples": 10_000, "ci_resamples": 1000, "seed": 12345}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("leaderboard", help="regenerate or check leaderboards/*.md",
                              description="Leaderboards are rendered from committed run records (leaderboards/runs/) "
                                          "and the papers' reported numbers (leaderboards/reported/).")
    sub = p.add_subparsers(dest="action", required=True)
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, default=LEADERBOARDS, metavar="DIR",
                      help="folder of the boards' .toml, .md, runs/ and reported/ (default: the repository's "
                           "leaderboards/)")
    for action, text in (("build", "regenerate the markdown from the stored records"),
                         ("check", "fail when a markdown file is stale")):
        q = sub.add_parser(action, help=text, parents=[root])
        q.add_argument("names", nargs="*", help="boards (default: all)")
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
        raise ConfigError(f"--root {root}: no such folder")
    return [load_board(n, root) for n in (names or board_names(root))]


def run_build(args) -> int:
    """All boards or none: a bad file in one leaves every markdown file as it was."""
    boards = _boards(args.names, args.root)
    with all_or_nothing():
        changed = [build(board) for board in boards]
    for board, written in zip(boards, changed):
        print(f"{board.markdown_path}: {'written' if written else 'unchanged'}")
    return 0


def run_check(args) -> int:
    fresh = True
    for board in _boards(args.names, args.root):
        if stale(board):
            fresh = False
            print(f"{board.markdown_path.name}: stale; run `pdg-eval leaderboard build {board.name}`", file=sys.stderr)
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
    for option in ("nli_model", "cohcon_model"):
        if getattr(args, option):
            parts += [f"--{option.replace('_', '-')}", getattr(args, option)]
    return shlex.join(parts)


def run_records(args) -> int:
    board = load_board(args.name, args.root)
    dataset = shared_path(*board.dataset.split("/"))
    command = _command(args)
    for preset in args.preset or board.presets:
        if preset not in board.presets:
            raise ConfigError(f"preset {preset!r} is not on board {board.name} ({', '.join(board.presets)})")
        start = time.perf_counter()
        specs = requested_metrics(preset, (), models={"nli": args.nli_model, "cohcon": args.cohcon_model})
        runs, provenance, skipped, notes = [], [], [], []
        for entry in board.systems:
            path = entry.resolve(shared_path())
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                records = open_records(str(path), entry.format,
                                       dataset=None if entry.format == "convai2" else str(dataset))
                if board.first_dialogues is not None:
                    records = (r for r in records if int(str(r.id).split("-")[0]) < board.first_dialogues)
                result = score_records(records, specs, source=entry.path)
            notes += [f"{entry.name}: {w.message}".replace(str(shared_path()) + "/", "") for w in caught]
            skipped = sorted(set(skipped) | set(result.skipped))
            runs.append(SystemRun.from_score_run(entry.name, result))
            provenance.append({"name": entry.name, "path": entry.path, "format": entry.format, "role": entry.role,
                               "sha256": file_sha256(path), "items": result.n_items})
            print(f"{preset}: scored {entry.name} ({result.n_items:,} items)", file=sys.stderr)
        common = set.intersection(*(set(run.metrics) for run in runs))
        for identity in sorted(set().union(*(set(run.metrics) for run in runs)) - common):
            having = [run for run in runs if identity in run.metrics]
            skipped.append(f"{having[0].metrics[identity].spec}: only {', '.join(r.name for r in having)} (the other "
                           "systems' files have no field for it)")
        runs = [_only(run, common) for run in runs]
        ceilings = [e.name for e in board.systems if e.role == "ceiling"]
        cmp = compare(runs, board.baseline, "ar", args.resamples, args.seed, ci_resamples=args.ci_resamples,
                      ceilings=ceilings, progress=lambda s: print(f"{preset}: testing {s}", file=sys.stderr))
        from .. import __version__

        doc = {"comparison": cmp.to_json(),
               "provenance": {"board": board.name, "preset": preset, "systems": provenance, "skipped": skipped,
                              "warnings": notes, "command": command, "version": __version__,
                              "seconds": round(time.perf_counter() - start, 1)}}
        with atomic_writer(board.run_path(preset), parents=True) as handle:
            json.dump(doc, handle, ensure_ascii=False, indent=1, sort_keys=True)
            handle.write("\n")
        print(f"{board.run_path(preset)}: written ({doc['provenance']['seconds']} s)", file=sys.stderr)
    return 0


def _only(run: SystemRun, identities: set[str]) -> SystemRun:
    """The run restricted to the metrics every system of the board has (e.g. PPL needs the records' ``nll``)."""
    keep = [identity for identity in run.metrics if identity in identities]
    return dataclasses.replace(run, metrics={k: run.metrics[k] for k in keep}, stats={k: run.stats[k] for k in keep},
                               signatures={k: run.signatures[k] for k in keep}, values={k: run.values[k] for k in keep})
