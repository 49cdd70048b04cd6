"""``pdg-eval scorers train|eval nli``: build and check pdg-eval's own NLI scorer for the C-score."""

from __future__ import annotations

import argparse
import json

from ..shared import shared_path


def _default_data(name: str) -> str | None:
    try:
        return str(shared_path("data", "consistency", "dnli_style_pairs", name))
    except FileNotFoundError:
        return None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scorers", help="train or evaluate pdg-eval's own consistency scorers")
    sub = p.add_subparsers(dest="scorer_command", required=True)
    train = sub.add_parser("train", help="fine-tune a scorer by its recorded recipe")
    train.add_argument("kind", choices=("nli",))
    train.add_argument("--out", required=True, help="output folder (model, tokenizer, manifest.json)")
    train.add_argument("--backbone", help="encoder folder or hub id (default: offline all-MiniLM-L6-v2)")
    train.add_argument("--train", dest="train_file", default=_default_data("nli-train.txt"), help="DNLI-style pairs")
    train.add_argument("--valid", dest="valid_file", default=_default_data("nli-valid.txt"), help="held-out pairs")
    train.add_argument("--epochs", type=int, default=4)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=5e-5)
    train.add_argument("--max-length", type=int, default=64)
    train.add_argument("--seed", type=int, default=13)
    train.add_argument("--quiet", "-q", action="store_true")
    train.set_defaults(func=run_train)
    ev = sub.add_parser("eval", help="held-out accuracy and confusion matrix of a scorer")
    ev.add_argument("kind", choices=("nli",))
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", default=_default_data("nli-valid.txt"))
    ev.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models.runtime import default_sentence_encoder
    from ..scorers.nli import NliRecipe, train_nli

    if not args.train_file or not args.valid_file:
        raise ConfigError("no training data: pass --train and --valid (DNLI-style 'utterance</s>persona</s>label' files)")
    recipe = NliRecipe(backbone=args.backbone or default_sentence_encoder(), train=args.train_file,
                       valid=args.valid_file, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       max_length=args.max_length, seed=args.seed)
    manifest = train_nli(recipe, args.out, progress=not args.quiet)
    print(json.dumps({"out": args.out, "heldout": manifest["heldout"], "weights_sha256": manifest["weights_sha256"],
                      "train_seconds": manifest["train_seconds"]}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..scorers.nli import evaluate, read_dnli_pairs

    if not args.data:
        raise ConfigError("no evaluation data: pass --data")
    print(json.dumps(evaluate(args.model, read_dnli_pairs(args.data)), indent=2))
    return 0
