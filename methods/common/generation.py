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
    otherwise the whole continuation is kept, stripped (e.g. one extracted triple per line). Greedy decoding without
    ``extra`` inputs goes through :func:`generate_shared_prefix` (``decoding.share_prefix``)."""
    if (decoding.share_prefix and decoding.strategy == "greedy" and extra is None and not decoding.no_repeat_ngram_size
            and all(prompts)):  # an empty prompt has no last token to feed again
        return generate_shared_prefix(model, tokenizer, prompts, decoding, progress, desc, one_line)
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
            ids, mask = padded([inputs[i] for i in batch], pad, device, left=not seq2seq)
            more = extra(batch) if extra is not None else {}
            result = model.generate(input_ids=ids, attention_mask=mask, **more, **kwargs)
            new = result[:, 1:] if seq2seq else result[:, ids.shape[1]:]  # after the decoder start / the prompt
            sequences = []
            for tokens in new.tolist():
                if eos in tokens:
                    tokens = tokens[:tokens.index(eos)]
                sequences.append([t for t in tokens if t != pad] if seq2seq else tokens)
            generated += collect(out, batch, sequences, tokenizer, one_line)
    return out, generated  # type: ignore[return-value]


def padded(rows: Sequence[Sequence[int]], pad: int, device, left: bool = True):
    """Token lists as one tensor padded to the longest (on the left, as a decoder-only model's prompts, or on the
    right) and its attention mask."""
    import torch

    width = max(map(len, rows))
    fills = [[pad] * (width - len(row)) for row in rows]
    ids = [fill + list(row) if left else list(row) + fill for row, fill in zip(rows, fills)]
    mask = [[0] * len(fill) + [1] * len(row) if left else [1] * len(row) + [0] * len(fill)
            for row, fill in zip(rows, fills)]
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def masked_step(model) -> Callable[[Any, Any], tuple[Any, Any]]:
    """The incremental ``step`` of :func:`decode_loop` for a transformers causal LM whose state is (key/value cache,
    attention mask, started): positions follow the mask (left padding and masked gaps count no position), and every
    step after the first appends one attended token; only the last position's logits are computed
    (:func:`~pdg_eval.models.causal_lm.last_logits_only`)."""
    import torch

    from pdg_eval.models.causal_lm import cache_field, last_logits_only

    from .prefix import mask_positions

    field, last_only = cache_field(model), last_logits_only(model)

    def step(tokens, state):
        cache, mask, started = state
        if started:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = mask_positions(mask, tokens.shape[1])
        result = model(input_ids=tokens, attention_mask=mask, position_ids=positions, use_cache=True,
                       **{field: cache}, **last_only)
        return result.logits[:, -1], (result[field], mask, True)

    return step


def collect(out: list, batch: Sequence[int], sequences: Sequence[list[int]], tokenizer, one_line: bool) -> int:
    """Decoded replies of a batch into ``out`` at their indices; returns the number of tokens generated."""
    generated = 0
    for index, tokens in zip(batch, sequences):
        generated += len(tokens)
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        out[index] = clean(text) if one_line else text.strip()
    return generated


def generate_with_prefix(model, tokenizer, prompts: Sequence[list[int]], prefixes: Callable[[list[int]], Any],
                         decoding: DecodingConfig, progress: bool = False, desc: str = "generate",
                         one_line: bool = True) -> tuple[list[str], int]:
    """:func:`generate_causal_lm` with a per-example key/value prefix (:mod:`pdg_eval_methods.common.prefix`):
    ``prefixes(indices)`` returns the batch's ``[B, M, L, (2,) width]`` prefix. Greedy or sampled decoding by
    :func:`decode_loop` (transformers' ``generate`` does not take virtual tokens without input ids); under left
    padding every real token's position counts only the prefix and the tokens before it, so a batch decodes as its
    examples one at a time."""
    import torch

    from .prefix import prefix_cache, prefix_shape, with_prefix_mask

    torch.manual_seed(decoding.seed)
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    shape, step = prefix_shape(model.config), masked_step(model)
    out: list[str | None] = [None] * len(prompts)
    generated = 0
    model.eval()

    with torch.inference_mode():
        for batch in progress_bar(length_sorted_batches([len(p) for p in prompts], decoding.batch_size), progress,
                                  desc):
            ids, mask = padded([prompts[i] for i in batch], pad, device)
            prefix = prefixes(batch).to(device)
            state = (prefix_cache(prefix, shape), with_prefix_mask(mask, prefix.shape[1]), False)
            generated += collect(out, batch, decode_loop(step, state, ids, decoding, eos), tokenizer, one_line)
    return out, generated  # type: ignore[return-value]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def plan_prefixes(prompts: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """For each prompt of a batch, (the prompt whose prefilled keys and values it reuses, how many of its first tokens
    they cover): longest first, a prompt reuses the earlier prompt it shares the longest prefix with when that saves
    at least half of its tokens, else it is prefilled itself (an anchor). At least the last token of every prompt is
    fed again, to give the logits of the first new token."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    anchors: list[int] = []
    plan: list[tuple[int, int]] = [(0, 0)] * len(prompts)
    for i in order:
        shared, best = max(((common_prefix(prompts[i], prompts[a]), a) for a in anchors), key=lambda pair: pair[0],
                           default=(0, None))
        if best is None or 2 * shared < len(prompts[i]):
            anchors.append(i)
            best, shared = i, len(prompts[i])
        plan[i] = (best, min(shared, len(prompts[i]) - 1))
    return plan


def prefix_sorted_batches(prompts: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices in the lexicographic order of their token lists (prompts with a common prefix, such as the turns of
    one dialogue, become neighbours), in batches of ``batch_size``."""
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def prefill_shared_prefixes(model, rows: Sequence[Sequence[int]], pad: int, device):
    """One batch of prompts prefilled by sharing prefixes: the anchors of :func:`plan_prefixes` go through ``model``
    (a causal LM or its base model) in one right-padded forward pass; returns (a cache in which each row holds its
    anchor's keys and values for the tokens it shares with it, then masked padding; the attention mask over that
    cache and the remaining tokens; the remaining tokens, left-padded). Fed the remaining tokens with positions that
    follow the mask, every row continues as it would alone."""
    import torch
    from transformers import DynamicCache

    from pdg_eval.models.causal_lm import cache_field, last_logits_only

    plan = plan_prefixes(rows)
    anchors = sorted({a for a, _ in plan})
    ids, mask = padded([rows[a] for a in anchors], pad, device, left=False)
    prefilled = model(input_ids=ids, attention_mask=mask, use_cache=True, **last_logits_only(model))[cache_field(model)]
    slot = {a: k for k, a in enumerate(anchors)}
    shared = max(c for _, c in plan)
    keep = torch.tensor([[1] * c + [0] * (shared - c) for _, c in plan], device=device)
    take = torch.tensor([slot[a] for a, _ in plan], device=device)
    cache = DynamicCache([(layer.keys[take, :, :shared], layer.values[take, :, :shared])
                          for layer in prefilled.layers])
    rest, rest_mask = padded([row[c:] for row, (_, c) in zip(rows, plan)], pad, device)
    return cache, torch.cat([keep, rest_mask], dim=1), rest


def last_prompt_states(base_model, prompts: Sequence[list[int]], pad: int, batch_size: int,
                       progress: bool = False, desc: str = "encode") -> Any:
    """The last layer's state at each prompt's last token, [N, d] in input order, from a transformers base model
    (no output layer); prompts with a common prefix (the turns of a dialogue) share its forward pass
    (:func:`prefill_shared_prefixes`)."""
    import torch

    from pdg_eval.models.causal_lm import cache_field

    from .prefix import mask_positions

    device = next(base_model.parameters()).device
    field = cache_field(base_model)
    states: list[Any] = [None] * len(prompts)
    with torch.inference_mode():
        for batch in progress_bar(prefix_sorted_batches(prompts, batch_size), progress, desc):
            cache, mask, rest = prefill_shared_prefixes(base_model, [prompts[i] for i in batch], pad, device)
            hidden = base_model(input_ids=rest, attention_mask=mask, position_ids=mask_positions(mask, rest.shape[1]),
                                use_cache=True, **{field: cache}).last_hidden_state[:, -1]
            for index, state in zip(batch, hidden):
                states[index] = state
    return torch.stack(states)


def generate_shared_prefix(model, tokenizer, prompts: Sequence[list[int]], decoding: DecodingConfig,
                           progress: bool = False, desc: str = "generate", one_line: bool = True
                           ) -> tuple[list[str], int]:
    """Greedy generation for a decoder-only transformers model that prefills a prompt's common prefix with another
    prompt of its batch once (the turns of a dialogue share persona and history): batches of lexicographically
    sorted prompts, prefilled by :func:`prefill_shared_prefixes`, so every row decodes as it would alone. The logits
    processors see each row's whole prompt."""
    import torch

    if decoding.strategy != "greedy":
        raise ValueError("generate_shared_prefix decodes greedily")
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    step = masked_step(model)
    out: list[str | None] = [None] * len(prompts)
    generated = 0
    model.eval()

    with torch.inference_mode():
        for batch in progress_bar(prefix_sorted_batches(prompts, decoding.batch_size), progress, desc):
            rows = [prompts[i] for i in batch]
            cache, mask, first = prefill_shared_prefixes(model, rows, pad, device)
            history, _ = padded(rows, pad, device)
            generated += collect(out, batch, decode_loop(step, (cache, mask, False), first, decoding, eos,
                                                         history=history), tokenizer, one_line)
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
                eos_id: int, history=None) -> list[list[int]]:
    """Greedy or sampled decoding for models with an incremental ``step(tokens [B, t], state) -> (logits [B, V],
    state)``; ``first_tokens`` [B, t] (a start token, or a whole prompt) starts every sequence; the logits
    processors (repetition penalty, …) see ``history`` (default: ``first_tokens``) and what is generated. Returns
    the generated ids (without the first tokens, cut at end-of-sequence)."""
    import torch

    if decoding.strategy == "beam":
        from pdg_eval.errors import ConfigError

        raise ConfigError("beam search is not available for this model; use decoding.strategy greedy or sample")
    processors = logits_processors(decoding)
    tokens = first_tokens
    history = first_tokens if history is None else history
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
