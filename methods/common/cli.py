"""``pdg-eval run``: train and generate with the methods and baselines of ``methods/`` and ``baselines/``.

The subcommand reaches ``pdg-eval`` through the ``pdg_eval.commands`` entry point (``pyproject.toml``): the core's
command line lists what the installed packages add, and never imports the methods itself.

    pdg-eval run list
    pdg-eval run METHOD train --config CFG.yaml [--set section.key=value ...] --out RUN_DIR [--resume]
    pdg-eval run METHOD generate [--config CFG.yaml] [--checkpoint RUN_DIR] [--set ...] --out preds.jsonl [--resume]
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="train / generate with a method or baseline (writes pdg-eval records)",
                              description="Train and generate with pdg-eval's method and baseline implementations.")
    p.add_argument("method", help="a method name, or 'list'")
    p.add_argument("action", nargs="?", choices=("train", "generate"))
    p.add_argument("--config", metavar="FILE", help="run configuration (YAML or JSON); see configs/")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration field, e.g. training.learning_rate=1e-5 (repeatable)")
    p.add_argument("--out", metavar="PATH", help="train: the run folder; generate: the records file (.jsonl)")
    p.add_argument("--checkpoint", metavar="RUN_DIR",
                   help="generate: a folder written by `train` (its model and training settings are used; decoding, "
                        "evaluation data and generation-time model options such as PAL's strategy come from this "
                        "command)")
    p.add_argument("--resume", action="store_true",
                   help="train: continue from the last checkpoint in --out; generate: continue an interrupted "
                        "generation (the chunks kept in OUT.partial) of the same command")
    p.add_argument("--init-from", metavar="RUN_DIR",
                   help="train: start from the weights of a trained run (a second stage, e.g. PAA's Hits@1 head)")
    p.add_argument("--score-candidates", action="store_true",
                   help="generate: also score every ranking candidate (records' candidate_scores, for Hits@1)")
    p.add_argument("--with-nll", action="store_true",
                   help="generate: also store each gold response's per-token NLL (records' nll field, for PPL)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pdg_eval.errors import ConfigError
    from pdg_eval.files import is_installed

    missing = [name for name in ("torch", "transformers", "peft", "yaml") if not is_installed(name)]
    if missing:
        raise ConfigError(f"pdg-eval run needs {', '.join(missing)}: pip install 'pdg-eval[methods]'")
    from .method import get_method, method_config, method_names

    if args.method == "list":
        for name in method_names():
            cls = get_method(name)
            kind = "trainable" if cls.trainable else "prompt-only"
            print(f"{name}  ({kind})  {cls.description}")
        return 0
    if args.action is None:
        raise ConfigError("say what to do: pdg-eval run METHOD train|generate")
    if not args.out:
        raise ConfigError("--out is required")
    get_method(args.method)  # unknown names fail before any file is read
    if args.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    config = method_config(args.method, args.config, args.overrides)
    if args.action == "train":
        from .runner import train_run

        record = train_run(args.method, config, args.out, resume=args.resume, progress=not args.quiet,
                           init_from=args.init_from)
        summary = record["summary"]
        print(json.dumps({"out": args.out, "steps": summary["steps"], "first_loss": summary["first_loss"],
                          "last_loss": summary["last_loss"], "wall_s": round(summary["wall_s"], 1),
                          "tokens_per_s": round(summary["tokens_per_s"], 1)}))
        return 0
    from .runner import generate_run

    record = generate_run(args.method, config, args.out, checkpoint=args.checkpoint, progress=not args.quiet,
                          with_nll=args.with_nll, score_candidates=args.score_candidates, resume=args.resume)
    cost = record["cost"]
    print(json.dumps({"out": args.out, "examples": cost["examples"], "wall_s": round(cost["wall_s"], 1),
                      "tokens_per_s": cost["tokens_per_s"] and round(cost["tokens_per_s"], 1),
                      "decoding": record["decoding"]}))
    return 0
