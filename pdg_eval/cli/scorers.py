"""``pdg-eval scorers train|eval nli|cohcon`` and ``scorers pairs``: build and check pdg-eval's own scorers."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from ..files import shared_path
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
    from ..models.triple_classifier import ARCHITECTURES

    p = subparsers.add_parser("scorers", help="train or evaluate pdg-eval's own consistency scorers")
    sub = p.add_subparsers(dest="scorer_command", required=True)
    train = sub.add_parser("train", help="fine-tune a scorer (LoRA adapter + head) by its recorded recipe")
    train.add_argument("kind", choices=("nli", "cohcon"),
                       help="nli: C-score pair classifier; cohcon: CLV's (persona, context, response) classifier")
    train.add_argument("--out", required=True, help="output folder (adapter, config, manifest.json)")
    train.add_argument("--backbone", help="encoder folder or hub id (default: offline all-MiniLM-L6-v2)")
    train.add_argument("--train", dest="train_files", action="append",
                       help="repeatable. nli: DNLI-style pairs, or a triple-annotated ConvAI2 dialogue file whose "
                            "pairs are rebuilt (default: the RCDG nli-train.txt and the ConvAI2 test triples); "
                            "cohcon: ConvAI2 per/src/tgt files as PER,SRC,TGT, a both-persona dialogue file or a "
                            "Synthetic-Persona-Chat CSV (default: the convai2_train_sample train files and the "
                            "ConvAI2 test dialogues)")
    train.add_argument("--valid", dest="valid_files", action="append",
                       help="held-out data, never trained on (training items sharing an utterance are left out). "
                            "nli: repeatable, as --train (default: the RCDG nli-valid.txt and the ConvAI2 valid "
                            "triples); cohcon: one PER,SRC,TGT (default: the whole ConvAI2 valid set)")
    train.add_argument("--epochs", type=positive_int, help="default: nli 4, cohcon 2")
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--lr", type=positive_float, default=1e-3, help="default: 1e-3 (LoRA)")
    train.add_argument("--lora-rank", type=positive_int, default=8)
    train.add_argument("--max-length", type=positive_int,
                       help="tokens per input: nli per pair, cohcon per sentence (clv-cross-v1: per context or "
                            "response, four times that for the whole triple) (default 64)")
    train.add_argument("--architecture", choices=ARCHITECTURES,
                       help="cohcon only: the triple classifier (default siamese-meanpool-v1; siamese-cross-v2 adds a "
                            "cross-encoding of context and response; clv-cross-v1 is CLV's cross-encoder over the "
                            "whole triple, for base-size backbones on a GPU)")
    train.add_argument("--seed", type=non_negative_int, default=13)
    train.add_argument("--premise-order", choices=("persona", "response", "both"), default="persona",
                       help="nli: which text the model reads first: the persona sentence (chanliang, pal_max, "
                            "idl_pairwise), the response (paml_sum), or both (every pair in both orders); recorded in "
                            "manifest.json, and C-score refuses variants that feed the other order (default: persona)")
    train.add_argument("--init", metavar="SCORER",
                       help="nli: start from this trained scorer's adapter and head (name or folder; same backbone, "
                            "LoRA rank and premise order), e.g. to continue on added pairs")
    train.add_argument("--device", default="auto",
                       help="torch device to train on (default: the GPU when there is one, with bf16 autocast where "
                            "it supports it, else the CPU); recorded in manifest.json")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its last checkpoint")
    train.add_argument("--quiet", "-q", action="store_true")
    train.set_defaults(func=run_train)
    ev = sub.add_parser("eval", help="held-out accuracy, per-class recall and confusion matrix of a scorer")
    ev.add_argument("kind", choices=("nli", "cohcon"))
    ev.add_argument("--model", help="scorer folder or name (default: the scorer shipped with pdg-eval)")
    ev.add_argument("--data", action="append",
                    help="nli: repeatable, DNLI-style pairs or a triple-annotated dialogue file (default: the RCDG "
                         "nli-valid.txt and the ConvAI2 valid triples); cohcon: PER,SRC,TGT (default: the whole "
                         "ConvAI2 valid set from convai2_train_sample)")
    ev.add_argument("--limit", type=positive_int, help="only the first N items of each set")
    ev.set_defaults(func=run_eval)
    ens = sub.add_parser("ensemble", help="an NLI scorer averaging trained NLI scorers' class probabilities",
                         description="Writes a scorer folder holding only manifest.json (members, their hashes, the "
                                     "held-out report of the average); use it as --nli-model or model=.")
    ens.add_argument("--member", dest="members", action="append", required=True,
                     help="a trained NLI scorer, folder or name (repeat: at least two, one premise order)")
    ens.add_argument("--out", required=True, help="output folder (must not exist)")
    ens.add_argument("--valid", dest="valid_files", action="append",
                     help="held-out data to report on, as for `train nli` (default: the RCDG nli-valid.txt and the "
                          "ConvAI2 valid triples)")
    ens.set_defaults(func=run_ensemble)
    pairs = sub.add_parser("pairs", help="build DNLI-style pairs from triple-annotated ConvAI2 dialogues or PersonaExt",
                           description="Entailment = same triple, neutral = no shared relation, contradiction = same "
                                       "single-valued relation with another object (pdg_eval.scorers.dnli_rebuild; "
                                       "with --personaext: pdg_eval.scorers.personaext_pairs).")
    pairs.add_argument("--triples", action="append",
                       help="GettingToKnowYou *_both_original_final.txt (repeatable; default: the ConvAI2 test file, "
                            "so nothing of ConvAI2 valid, the usual evaluation split, is trained on)")
    pairs.add_argument("--personaext", metavar="DIR_OR_FILE",
                       help="PersonaExt split files (a folder of */*.jsonl) instead of --triples: sentence pairs by "
                            "their relation triples")
    pairs.add_argument("--exclude", action="append",
                       help="held-out pair or triple file whose sentences are left out (default: the RCDG "
                            "nli-valid.txt; with --personaext also the ConvAI2 valid triples, premises and "
                            "hypotheses alike)")
    pairs.add_argument("--balance", action="store_true",
                       help="keep as many pairs of each label as the rarest label has (a seeded sample)")
    pairs.add_argument("--seed", type=non_negative_int, default=13)
    pairs.add_argument("--out", required=True, help="output file, RCDG format 'utterance</s>persona</s>label'")
    pairs.set_defaults(func=run_pairs)


def _self_turn_files(split: str) -> str:
    """PER,SRC,TGT of the convai2_train_sample files of ``split``."""
    from ..errors import ConfigError

    files = [_default_data("convai2_train_sample", f"{kind}-{split}.txt") for kind in ("per", "src", "tgt")]
    if None in files:
        raise ConfigError("no ConvAI2 per/src/tgt files found: pass them as PER,SRC,TGT")
    return ",".join(files)  # type: ignore[arg-type]


def default_sources(kind: str, role: str) -> list[str]:
    """The shared data a scorer trains on (``role="train"``) or is evaluated on (``"valid"``) by default."""
    triples = "consistency", "dnli_triples_convai2"
    if kind == "nli":
        pairs = "consistency", "dnli_style_pairs", f"nli-{role}.txt"
        split = "test" if role == "train" else "valid"
        return [*_default_files(*pairs), *_default_files(*triples, f"{split}_both_original_final.txt")]
    if role == "train":
        return [_self_turn_files("train"), *_default_files(*triples, "test_both_original_final.txt")]
    return [_self_turn_files("val")]


def run_train(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models.adapters import MINILM_ID
    from ..scorers.training import LoraSettings

    backbone = args.backbone or MINILM_ID  # resolved to the offline copy
    train = args.train_files or default_sources(args.kind, "train")
    valid = args.valid_files or default_sources(args.kind, "valid")
    if not train or not valid:
        raise ConfigError("no training or held-out data found: pass --train and --valid")
    lora = LoraSettings(rank=args.lora_rank, alpha=2 * args.lora_rank)
    command = shlex.join(["pdg-eval", *sys.argv[1:]])
    if args.init and args.kind != "nli":
        raise ConfigError("--init is an option of `scorers train nli`")
    if args.kind == "cohcon":
        from ..models.triple_classifier import ARCHITECTURE
        from ..scorers.cohcon import CohConRecipe, train_cohcon

        if len(valid) > 1:
            raise ConfigError("cohcon takes one --valid PER,SRC,TGT")
        recipe = CohConRecipe(backbone=backbone, train=tuple(train), valid=valid[0], epochs=args.epochs or 2,
                              batch_size=args.batch_size, lr=args.lr, max_length=args.max_length or 64,
                              seed=args.seed, lora=lora, architecture=args.architecture or ARCHITECTURE)
        manifest = train_cohcon(recipe, args.out, progress=not args.quiet, resume=args.resume, command=command,
                                device=args.device)
    else:
        if args.architecture:
            raise ConfigError("--architecture is an option of `scorers train cohcon`")
        from ..models.nli_labels import PREMISE_ORDERS
        from ..scorers.nli import NliRecipe, train_nli

        recipe = NliRecipe(backbone=backbone, train=tuple(train), valid=tuple(valid), epochs=args.epochs or 4,
                           batch_size=args.batch_size, lr=args.lr, max_length=args.max_length or 64, seed=args.seed,
                           premise_order=PREMISE_ORDERS[args.premise_order], lora=lora, init=args.init)
        manifest = train_nli(recipe, args.out, progress=not args.quiet, resume=args.resume, command=command,
                             device=args.device)
    print(json.dumps({"out": args.out, "heldout": manifest["heldout"], "weights_sha256": manifest["weights_sha256"],
                      "train_seconds": manifest["train_seconds"]}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models.adapters import SHIPPED_COHCON, SHIPPED_NLI

    data = args.data or default_sources(args.kind, "valid")
    if not data:
        raise ConfigError("no evaluation data: pass --data")
    report = {}
    if args.kind == "cohcon":
        from ..scorers.cohcon import clv_examples, evaluate, read_dialogue_source

        model = args.model or SHIPPED_COHCON
        for source in data:
            examples = [e for d in read_dialogue_source(source) for e in clv_examples(d)][:args.limit]
            report[source] = evaluate(model, examples)
    else:
        from ..models.runtime import ModelFolder
        from ..scorers.nli import evaluate as evaluate_nli, in_order, read_nli_source

        model = args.model or SHIPPED_NLI
        order = ModelFolder(model).premise_order or "persona_first"  # the order it was trained on
        for source in data:
            report[source] = evaluate_nli(model, in_order(read_nli_source(source)[:args.limit], order))
    print(json.dumps({"model": model, "sets": report}, indent=2))
    return 0


def run_ensemble(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..scorers.ensemble import build_nli_ensemble

    valid = args.valid_files or default_sources("nli", "valid")
    if not valid:
        raise ConfigError("no held-out data found: pass --valid")
    manifest = build_nli_ensemble(args.members, args.out, valid, command=shlex.join(["pdg-eval", *sys.argv[1:]]))
    print(json.dumps({"out": args.out, "heldout": manifest["heldout"], "weights_sha256": manifest["weights_sha256"]},
                     indent=2))
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from collections import Counter

    from ..errors import ConfigError
    from ..scorers.dnli_rebuild import rebuild_pairs, write_pairs
    from ..scorers.nli import balance_classes, read_dnli_pairs
    from ..files import atomic_writer, check_outputs

    if args.personaext:
        from ..readers.personaext import personaext_files, read_personaext
        from ..scorers.nli import read_nli_source
        from ..scorers.personaext_pairs import personaext_pairs

        if args.triples:
            raise ConfigError("give --triples or --personaext, not both")
        files = personaext_files(args.personaext)
        if not files:
            raise ConfigError(f"--personaext {args.personaext}: no PersonaExt split files (*.jsonl)")
        excluded = args.exclude or default_sources("nli", "valid")
        check_outputs([args.out], [*files, *excluded])
        held_out = [text for f in excluded for e in read_nli_source(f) for text in (e.premise, e.hypothesis)]
        examples = personaext_pairs(read_personaext(files), exclude=held_out, seed=args.seed)
        sources = {"personaext": [str(f) for f in files]}
    else:
        triples = args.triples or _default_files("consistency", "dnli_triples_convai2", "test_both_original_final.txt")
        excluded = args.exclude or _default_files("consistency", "dnli_style_pairs", "nli-valid.txt")
        if not triples:
            raise ConfigError("no triple-annotated dialogues: pass --triples FILE")
        check_outputs([args.out], [*triples, *excluded])
        examples = rebuild_pairs(triples, exclude=[e.hypothesis for f in excluded for e in read_dnli_pairs(f)],
                                 seed=args.seed)
        sources = {"triples": triples}
    if args.balance:
        examples = balance_classes(examples, seed=args.seed)
    with atomic_writer(args.out) as handle:
        write_pairs(examples, handle)
    counts = Counter(e.label for e in examples)
    print(json.dumps({"out": args.out, "n": len(examples), "entailment": counts[2], "neutral": counts[1],
                      "contradiction": counts[0], "balanced": args.balance, **sources, "excluded": excluded}, indent=2))
    return 0
