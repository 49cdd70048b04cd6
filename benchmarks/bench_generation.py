"""Generation and training throughput of the methods harness, each measured side by side with its reference in one run.

1. Generation: the harness' batched generation (length-sorted, left-padded batches, key/value cache) and its
   shared-prefix generation (the turns of a dialogue prefill their common persona and history once:
   ``generate_shared_prefix``) against a one-example-at-a-time loop (``model.generate`` per prompt), same model,
   prompts and greedy settings; the outputs are compared text for text. Goal: ≥ 5× on CPU.
2. Training: the harness' ``train`` (``causal_lm_ft`` features) against a plain ``transformers.Trainer`` with
   transformers' own ``DataCollatorForSeq2Seq``, same model initialisation, features, batch size and steps, both
   writing the final checkpoint (transformers saves one at the end of training); tokens/s of both. Goal: within 10 %.
3. History states (MORPHEUS' code-prediction input, Eq. 12): the last layer's state at each prompt's last token by
   ``last_prompt_states`` (each dialogue's shared prefix prefilled once) against one forward per length-sorted,
   right-padded batch (MORPHEUS' ``last_states``), same base model and prompts; the largest difference is printed.

    python benchmarks/bench_generation.py                      # SmolLM2-135M (offline), 64 prompts, 20 steps
    python benchmarks/bench_generation.py --backbone random:tiny-gpt2 --prompts 32 --steps 10 --json out.json
    python benchmarks/bench_generation.py --skip generation --skip training     # history states only
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdg_eval_methods.common.config import DecodingConfig, load_run_config  # noqa: E402
from pdg_eval_methods.common.data import load_convai2  # noqa: E402
from pdg_eval_methods.common.generation import clean, generate_causal_lm  # noqa: E402
from pdg_eval_methods.common.method import get_method  # noqa: E402
from pdg_eval_methods.common.training import FeatureDataset, build_features, train  # noqa: E402
from pdg_eval.files import shared_dir  # noqa: E402


def one_at_a_time(model, tokenizer, prompts, decoding: DecodingConfig) -> list[str]:
    """The reference loop: one ``model.generate`` call per prompt, no padding."""
    import torch

    out = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            result = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=decoding.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                    eos_token_id=tokenizer.eos_token_id)
            tokens = result[0, ids.shape[1]:].tolist()
            if tokenizer.eos_token_id in tokens:
                tokens = tokens[:tokens.index(tokenizer.eos_token_id)]
            out.append(clean(tokenizer.decode(tokens, skip_special_tokens=True)))
    return out


def bench_generation(method, examples, args) -> dict:
    decoding = DecodingConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                              max_prompt_tokens=args.max_prompt_tokens, share_prefix=False)
    prompts = [method.prompt_ids(e, decoding) for e in examples]
    model, tokenizer = method.model, method.tokenizer
    model.eval()
    start = time.perf_counter()
    batched, generated = generate_causal_lm(model, tokenizer, prompts, decoding)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    shared, _ = generate_causal_lm(model, tokenizer, prompts, dataclasses.replace(decoding, share_prefix=True))
    shared_s = time.perf_counter() - start
    start = time.perf_counter()
    single = one_at_a_time(model, tokenizer, prompts, decoding)
    single_s = time.perf_counter() - start
    return {"prompts": len(prompts), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
            "generated_tokens": generated, "batched_s": round(batched_s, 2), "shared_prefix_s": round(shared_s, 2),
            "one_at_a_time_s": round(single_s, 2), "speedup": round(single_s / batched_s, 2),
            "shared_prefix_speedup": round(single_s / shared_s, 2),
            "batched_tokens_per_s": round(generated / batched_s, 1),
            "identical_outputs": sum(a == b for a, b in zip(batched, single)),
            "shared_prefix_identical_outputs": sum(a == b for a, b in zip(shared, single))}


def bench_history_states(method, examples, args) -> dict:
    import torch

    from pdg_eval.models.runtime import length_sorted_batches
    from pdg_eval_methods.common.generation import last_prompt_states, padded
    from pdg_eval_methods.morpheus.model import last_states

    prompts = [method.prompt_ids(e, DecodingConfig(max_prompt_tokens=args.max_prompt_tokens)) for e in examples]
    base, pad = method.model.base_model.eval(), method.tokenizer.pad_token_id
    device = next(base.parameters()).device
    start = time.perf_counter()
    plain: list = [None] * len(prompts)
    with torch.inference_mode():
        for batch in length_sorted_batches([len(p) for p in prompts], args.batch_size):
            for index, state in zip(batch, last_states(base, *padded([prompts[i] for i in batch], pad, device,
                                                                    left=False))):
                plain[index] = state
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    shared = last_prompt_states(base, prompts, pad, args.batch_size)
    shared_s = time.perf_counter() - start
    return {"prompts": len(prompts), "batch_size": args.batch_size, "tokens": sum(map(len, prompts)),
            "per_batch_forward_s": round(plain_s, 2), "shared_prefix_s": round(shared_s, 2),
            "speedup": round(plain_s / shared_s, 2),
            "max_abs_difference": float((torch.stack(plain) - shared).abs().max())}


def bench_training(method, examples, args) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    initial = copy.deepcopy(method.model.state_dict())
    features = build_features(method, examples)[:args.steps * args.train_batch]
    with tempfile.TemporaryDirectory() as tmp:
        # the harness
        method.config.training.max_steps = args.steps
        method.config.training.save_steps = 10 ** 9
        harness = train(method, examples[:len(features)], Path(tmp) / "harness")
        # plain transformers.Trainer on the same model, features and batches
        method.model.load_state_dict(initial)
        plain_args = TrainingArguments(output_dir=str(Path(tmp) / "plain"), per_device_train_batch_size=args.train_batch,
                                       learning_rate=method.config.training.learning_rate, max_steps=args.steps,
                                       optim="adamw_torch", save_strategy="steps", save_steps=10 ** 9,
                                       report_to=[], logging_steps=args.steps,
                                       seed=method.config.seed, remove_unused_columns=False, disable_tqdm=True,
                                       use_cpu=not torch.cuda.is_available(),
                                       include_num_input_tokens_seen="non_padding")
        collator = DataCollatorForSeq2Seq(method.tokenizer, padding=True, label_pad_token_id=-100)
        trainer = Trainer(model=method.model, args=plain_args, train_dataset=FeatureDataset(features),
                          data_collator=lambda b: collator([{"input_ids": f["input_ids"], "labels": f["labels"]}
                                                            for f in b]))
        start = time.perf_counter()
        trainer.train()
        plain_s = time.perf_counter() - start
        plain_tokens = int(trainer.state.num_input_tokens_seen)
    plain_rate = plain_tokens / plain_s
    return {"steps": args.steps, "batch_size": args.train_batch, "harness_s": round(harness.wall_s, 2),
            "harness_tokens": harness.tokens_seen, "harness_tokens_per_s": round(harness.tokens_per_s, 1),
            "plain_trainer_s": round(plain_s, 2), "plain_tokens": plain_tokens,
            "plain_tokens_per_s": round(plain_rate, 1), "ratio": round(harness.tokens_per_s / plain_rate, 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--max-prompt-tokens", type=int, default=384)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--skip", choices=("generation", "training", "history"), action="append", default=[])
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)
    root = shared_dir()
    if root is None:
        raise SystemExit("the shared data folder is needed (PDG_EVAL_SHARED)")
    examples = load_convai2(root / "data" / "convai2" / "valid_self_original.txt")
    config = load_run_config(None, "causal_lm_ft", [f"backbone={args.backbone}", f"training.batch_size={args.train_batch}",
                                                    "training.learning_rate=1e-5", "training.max_length=256"])
    method = get_method("causal_lm_ft")(config)
    method.build()
    result = {"backbone": args.backbone, "parameters": sum(p.numel() for p in method.model.parameters())}
    if "generation" not in args.skip:
        result["generation"] = bench_generation(method, examples[:args.prompts], args)
        print("generation:", json.dumps(result["generation"]))
    if "training" not in args.skip:
        result["training"] = bench_training(method, examples[1000:1000 + args.steps * args.train_batch], args)
        print("training:", json.dumps(result["training"]))
    if "history" not in args.skip:
        result["history_states"] = bench_history_states(method, examples[:args.prompts], args)
        print("history states:", json.dumps(result["history_states"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
