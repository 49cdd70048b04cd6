"""``pdg-eval scorers train|eval nli|cohcon`` and ``scorers pairs``: build and check pdg-eval's own scorers."""

from __future__ import annotations

import argparse
import json

from ..shared import shared_path
from .args import non_negative_int, positive_float, positive_int


def _default_data(*parts: str) -> str | None:
    try:
        return str(shared_path("data", *parts))
    except FileNotFoundError:
        return None


def _default_files(*parts: str) -> list[str]:
    """``[path]`` of a shared data file when it exists, else ``[]`` (defaults of repeatable options)."""
    path = _default_data(*parts)
    return [path] if path else []


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scorers", help="train or evaluate pdg-eval's own consistency scorers")
    sub = p.add_subparsers(dest="scorer_command", required=True)
    train = sub.add_parser("train", help="fine-tune a scorer by its recorded recipe")
    train.add_argument("kind", choices=("nli", "cohcon"),
                       help="nli: C-score pair classifier; cohcon: CLV's (persona, context, response) classifier")
    train.add_argument("--out", required=True, help="output folder (model, tokenizer, manifest.json)")
    train.add_argument("--backbone", help="encoder folder or hub id (default: offline all-MiniLM-L6-v2)")
    train.add_argument("--train", dest="train_files", action="append",
                       help="nli: DNLI-style pairs (repeatable; default: the RCDG nli-train.txt); cohcon: the ConvAI2 "
                            "per/src/tgt files as PER,SRC,TGT (default: the convai2_train_sample train files)")
    train.add_argument("--valid", dest="valid_file", help="nli: held-out pairs (default: the RCDG nli-valid.txt); "
                                                          "cohcon: held out are 10%% of the training dialogues")
    train.add_argument("--epochs", type=positive_int, help="default: nli 4, cohcon 2")
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--lr", type=positive_float, default=5e-5)
    train.add_argument("--max-length", type=positive_int, help="default: nli 64, cohcon 256 (CLV)")
    train.add_argument("--seed", type=non_negative_int, default=13)
    train.add_argument("--premise-order", choices=("persona", "response", "both"), default="persona",
                       help="nli: which text the model reads first: the persona sentence (chanliang, pal_max, "
                            "idl_pairwise), the response (paml_sum), or both (every pair in both orders); recorded in "
                            "manifest.json, and C-score refuses variants that feed the other order (default: persona)")
    train.add_argument("--quiet", "-q", action="store_true")
    train.set_defaults(func=run_train)
    ev = sub.add_parser("eval", help="held-out accuracy and confusion matrix of a scorer")
    ev.add_argument("kind", choices=("nli", "cohcon"))
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", help="nli: DNLI-style pairs (default: the RCDG nli-valid.txt); cohcon: PER,SRC,TGT "
                                   "files (default: the full ConvAI2 valid set from convai2_train_sample)")
    ev.set_defaults(func=run_eval)
    pairs = sub.add_parser("pairs", help="rebuild DNLI-style pairs from triple-annotated ConvAI2 dialogues",
                           description="Entailment = same triple, neutral = no shared relation, contradiction = same "
                                       "single-valued relation with another object (pdg_eval.scorers.dnli_rebuild).")
    pairs.add_argument("--triples", action="append",
                       help="GettingToKnowYou *_both_original_final.txt (repeatable; default: the ConvAI2 test file, "
                            "so nothing of ConvAI2 valid, the usual evaluation split, is trained on)")
    pairs.add_argument("--exclude", action="append",
                       help="held-out DNLI-style pair file whose utterances are left out (default: the RCDG nli-valid.txt)")
    pairs.add_argument("--seed", type=non_negative_int, default=13)
    pairs.add_argument("--out", required=True, help="output file, RCDG format 'utterance</s>persona</s>label'")
    pairs.set_defaults(func=run_pairs)


def _self_turn_files(value: str | None, split: str) -> list[str]:
    """PER,SRC,TGT from the command line, or the convai2_train_sample files of ``split``."""
    from ..errors import ConfigError

    if value:
        files = value.split(",")
        if len(files) != 3:
            raise ConfigError(f"expected three comma-separated files PER,SRC,TGT, got {value!r}")
        return files
    files = [_default_data("convai2_train_sample", f"{kind}-{split}.txt") for kind in ("per", "src", "tgt")]
    if None in files:
        raise ConfigError("no ConvAI2 per/src/tgt files found: pass them as PER,SRC,TGT")
    return files  # type: ignore[return-value]


def run_train(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models.runtime import default_sentence_encoder

    backbone = args.backbone or default_sentence_encoder()
    if args.kind == "cohcon":
        from ..scorers.cohcon import CohConRecipe, train_cohcon

        if args.train_files and len(args.train_files) > 1:
            raise ConfigError("cohcon takes one --train PER,SRC,TGT")
        per, src, tgt = _self_turn_files(args.train_files[0] if args.train_files else None, "train")
        recipe = CohConRecipe(backbone=backbone, persona_file=per, source_file=src, target_file=tgt,
                              epochs=args.epochs or 2, batch_size=args.batch_size, lr=args.lr,
                              max_length=args.max_length or 256, seed=args.seed)
        manifest = train_cohcon(recipe, args.out, progress=not args.quiet)
    else:
        from ..models.nli_labels import PREMISE_ORDERS
        from ..scorers.nli import NliRecipe, train_nli

        train_files = args.train_files or _default_files("consistency", "dnli_style_pairs", "nli-train.txt")
        valid_file = args.valid_file or _default_data("consistency", "dnli_style_pairs", "nli-valid.txt")
        if not train_files or not valid_file:
            raise ConfigError("no training data: pass --train and --valid "
                              "(DNLI-style 'utterance</s>persona</s>label' files)")
        recipe = NliRecipe(backbone=backbone, train=tuple(train_files), valid=valid_file, epochs=args.epochs or 4,
                           batch_size=args.batch_size, lr=args.lr, max_length=args.max_length or 64, seed=args.seed,
                           premise_order=PREMISE_ORDERS[args.premise_order])
        manifest = train_nli(recipe, args.out, progress=not args.quiet)
    print(json.dumps({"out": args.out, "heldout": manifest["heldout"], "weights_sha256": manifest["weights_sha256"],
                      "train_seconds": manifest["train_seconds"]}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    if args.kind == "cohcon":
        from ..scorers.cohcon import clv_examples, evaluate, read_self_turns

        dialogues = read_self_turns(*_self_turn_files(args.data, "val"))
        print(json.dumps(evaluate(args.model, [e for d in dialogues for e in clv_examples(d)]), indent=2))
        return 0
    from ..models.runtime import ModelFolder
    from ..scorers.nli import evaluate as evaluate_nli, in_order, read_dnli_pairs

    data = args.data or _default_data("consistency", "dnli_style_pairs", "nli-valid.txt")
    if not data:
        raise ConfigError("no evaluation data: pass --data")
    order = ModelFolder(args.model).premise_order or "persona_first"  # the order it was trained on
    print(json.dumps(evaluate_nli(args.model, in_order(read_dnli_pairs(data), order)), indent=2))
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from collections import Counter

    from ..errors import ConfigError
    from ..scorers.dnli_rebuild import rebuild_pairs, write_pairs
    from ..scorers.nli import read_dnli_pairs
    from ..outputs import atomic_writer, check_outputs

    triples = args.triples or _default_files("consistency", "dnli_triples_convai2", "test_both_original_final.txt")
    excluded = args.exclude or _default_files("consistency", "dnli_style_pairs", "nli-valid.txt")
    if not triples:
        raise ConfigError("no triple-annotated dialogues: pass --triples FILE")
    check_outputs([args.out], [*triples, *excluded])
    examples = rebuild_pairs(triples, exclude=[e.hypothesis for f in excluded for e in read_dnli_pairs(f)], seed=args.seed)
    with atomic_writer(args.out) as handle:
        write_pairs(examples, handle)
    counts = Counter(e.label for e in examples)
    print(json.dumps({"out": args.out, "n": len(examples), "entailment": counts[2], "neutral": counts[1],
                      "contradiction": counts[0], "triples": triples, "excluded": excluded}, indent=2))
    return 0
