"""Generation with recorded decoding settings.

* Transformers models (decoder-only or encoder–decoder): ``model.generate`` on length-sorted, left-padded batches
  (key/value cache on), results returned in input order.
* The harness' own models (a GRU decoder, dual cross-attention decoders): :func:`decode_loop`, one loop for all,
  driven by the model's incremental ``step`` function and transformers' logits processors for temperature, top-k,
  top-p and repetition penalty — the same processors ``generate`` uses.

A response ends at the end-of-sequence token or at the first line break (dialogue prompts put one turn per line).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from pdg_eval.models.runtime import length_sorted_batches

from .config import DecodingConfig

STOP = "\n"


def generation_kwargs(decoding: DecodingConfig) -> dict[str, Any]:
    """``model.generate`` keyword arguments for a decoding configuration."""
    kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens, "use_cache": True}
    if decoding.strategy == "sample":
        kwargs |= {"do_sample": True, "temperature": decoding.temperature, "top_k": decoding.top_k or None,
                   "top_p": decoding.top_p}
    elif decoding.strategy == "beam":
        kwargs |= {"do_sample": False, "num_beams": decoding.num_beams, "early_stopping": True}
    else:
        kwargs |= {"do_sample": False, "num_beams": 1}
    if decoding.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = decoding.repetition_penalty
    if decoding.no_repeat_ngram_size:
        kwargs["no_repeat_ngram_size"] = decoding.no_repeat_ngram_size
    return kwargs


def clean(text: str) -> str:
    """The response: text before the first line break, stripped."""
    return text.split(STOP, 1)[0].strip()


def progress_bar(items: list, enabled: bool, desc: str, unit: str = " batch"):
    """``items`` with a tqdm bar when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, total=len(items), mininterval=1.0)


def generate_causal_lm(model, tokenizer, prompts: Sequence[list[int]], decoding: DecodingConfig,
                       progress: bool = False, desc: str = "generate",
                       extra: Callable[[list[int]], dict[str, Any]] | None = None,
                       one_line: bool = True) -> tuple[list[str], int]:
    """Continuations of token-id prompts (already cut to ``decoding.max_prompt_tokens``); returns the texts in
    input order and the number of tokens generated. ``extra(indices)`` adds model inputs for a batch (e.g. the
    encoder inputs of a dual-encoder decoder). ``one_line``: a reply ends at its first line break (dialogue turns);
    otherwise the whole continuation is kept, stripped (e.g. one extracted triple per line)."""
    return _generate(model, tokenizer, prompts, decoding, progress, desc, extra, one_line, decoder_start=None)


def generate_seq2seq(model, tokenizer, sources: Sequence[list[int]], decoding: DecodingConfig,
                     decoder_start: int, progress: bool = False) -> tuple[list[str], int]:
    """``generate`` for a transformers encoder–decoder model (right-padded encoder inputs)."""
    return _generate(model, tokenizer, sources, decoding, progress, "generate", None, True, decoder_start)


def _generate(model, tokenizer, inputs: Sequence[list[int]], decoding: DecodingConfig, progress: bool, desc: str,
              extra: Callable[[list[int]], dict[str, Any]] | None, one_line: bool, decoder_start: int | None
              ) -> tuple[list[str], int]:
    """The one ``model.generate`` loop: length-sorted batches, left padding for a decoder-only model (its output
    follows the prompt), right padding for an encoder–decoder (its output follows ``decoder_start``)."""
    import torch

    torch.manual_seed(decoding.seed)
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    kwargs = generation_kwargs(decoding) | {"pad_token_id": pad, "eos_token_id": eos}
    seq2seq = decoder_start is not None
    if seq2seq:
        kwargs["decoder_start_token_id"] = decoder_start
    out: list[str | None] = [None] * len(inputs)
    generated = 0
    model.eval()
    with torch.inference_mode():
        for batch in progress_bar(length_sorted_batches([len(p) for p in inputs], decoding.batch_size), progress,
                                  desc):
            width = max(len(inputs[i]) for i in batch)
            padding = [[pad] * (width - len(inputs[i])) for i in batch]
            rows = [inputs[i] + fill if seq2seq else fill + inputs[i] for i, fill in zip(batch, padding)]
            masks = [[1] * len(inputs[i]) + [0] * len(fill) if seq2seq else [0] * len(fill) + [1] * len(inputs[i])
                     for i, fill in zip(batch, padding)]
            more = extra(batch) if extra is not None else {}
            result = model.generate(input_ids=torch.tensor(rows, device=device),
                                    attention_mask=torch.tensor(masks, device=device), **more, **kwargs)
            new = result[:, 1:] if seq2seq else result[:, width:]  # after the decoder start / the prompt
            for row, index in enumerate(batch):
                tokens = new[row].tolist()
                if eos in tokens:
                    tokens = tokens[:tokens.index(eos)]
                if seq2seq:
                    tokens = [t for t in tokens if t != pad]
                generated += len(tokens)
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                out[index] = clean(text) if one_line else text.strip()
    return out, generated  # type: ignore[return-value]


def generate_with_prefix(model, tokenizer, prompts: Sequence[list[int]], prefixes: Callable[[list[int]], Any],
                         decoding: DecodingConfig, progress: bool = False, desc: str = "generate",
                         one_line: bool = True) -> tuple[list[str], int]:
    """:func:`generate_causal_lm` with a per-example key/value prefix (:mod:`pdg_eval_methods.common.prefix`):
    ``prefixes(indices)`` returns the batch's ``[B, M, L, (2,) width]`` prefix. Greedy or sampled decoding by
    :func:`decode_loop` (transformers' ``generate`` does not take virtual tokens without input ids); under left
    padding every real token's position counts only the prefix and the tokens before it, so a batch decodes as its
    examples one at a time."""
    import torch

    from pdg_eval.models.causal_lm import cache_field

    from .prefix import prefix_cache, prefix_shape, with_prefix_mask

    torch.manual_seed(decoding.seed)
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    field, shape = cache_field(model), prefix_shape(model.config)
    out: list[str | None] = [None] * len(prompts)
    generated = 0
    model.eval()

    def step(tokens, state):
        cache, mask, started = state
        if started:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)[:, -tokens.shape[1]:]
        result = model(input_ids=tokens, attention_mask=mask, position_ids=positions, use_cache=True,
                       **{field: cache})
        return result.logits[:, -1], (result[field], mask, True)

    with torch.inference_mode():
        for batch in progress_bar(length_sorted_batches([len(p) for p in prompts], decoding.batch_size), progress,
                                  desc):
            width = max(len(prompts[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in batch], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch],
                                device=device)
            prefix = prefixes(batch).to(device)
            state = (prefix_cache(prefix, shape), with_prefix_mask(mask, prefix.shape[1]), False)
            for index, tokens in zip(batch, decode_loop(step, state, ids, decoding, eos)):
                generated += len(tokens)
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                out[index] = clean(text) if one_line else text.strip()
    return out, generated  # type: ignore[return-value]


def logits_processors(decoding: DecodingConfig):
    """transformers' processors for the decoding configuration (as ``generate`` builds them)."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)

    processors = LogitsProcessorList()
    if decoding.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty))
    if decoding.strategy == "sample":
        if decoding.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(decoding.temperature))
        if decoding.top_k:
            processors.append(TopKLogitsWarper(decoding.top_k))
        if decoding.top_p < 1.0:
            processors.append(TopPLogitsWarper(decoding.top_p))
    return processors


def decode_loop(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, first_tokens, decoding: DecodingConfig,
                eos_id: int) -> list[list[int]]:
    """Greedy or sampled decoding for models with an incremental ``step(tokens [B, t], state) -> (logits [B, V],
    state)``; ``first_tokens`` [B, t] (a start token, or a whole prompt) starts every sequence. Returns the
    generated ids (without the first tokens, cut at end-of-sequence)."""
    import torch

    if decoding.strategy == "beam":
        from pdg_eval.errors import ConfigError

        raise ConfigError("beam search is not available for this model; use decoding.strategy greedy or sample")
    processors = logits_processors(decoding)
    tokens = first_tokens
    history = first_tokens
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    steps = []
    for _ in range(decoding.max_new_tokens):
        logits, state = step(tokens, state)
        scores = processors(history, logits.float())
        if decoding.strategy == "sample":
            next_tokens = torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)
        else:
            next_tokens = scores.argmax(dim=-1)
        next_tokens = torch.where(finished, torch.full_like(next_tokens, eos_id), next_tokens)
        steps.append(next_tokens)
        finished |= next_tokens == eos_id
        tokens = next_tokens[:, None]
        history = torch.cat([history, tokens], dim=1)
        if bool(finished.all()):
            break
    out = []
    for row in torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(first_tokens.shape[0])]:
        out.append(row[:row.index(eos_id)] if eos_id in row else row)
    return out
