"""Key/value prefixes: a prefix built from real tokens' keys and values, passed as a fresh cache, gives the logits of
the full sequence (GPT-2 and grouped-head LLaMA); the mask and shape checks."""

from __future__ import annotations

import pytest
import torch

from pdg_eval_methods.common.backbones import load_backbone
from pdg_eval_methods.common.prefix import cache_as_prefix, prefix_cache, prefix_shape, with_prefix_mask
from pdg_eval.errors import ConfigError
from pdg_eval.models.causal_lm import cache_field


@pytest.mark.parametrize("spec", ["random:tiny-gpt2", "random:tiny-llama"])
def test_a_prefix_of_real_keys_and_values_equals_the_full_sequence(spec):
    model = load_backbone(spec).model.eval()
    shape = prefix_shape(model.config)
    generator = torch.Generator().manual_seed(0)
    head = torch.randint(5, 200, (2, 4), generator=generator)
    tail = torch.randint(5, 200, (2, 6), generator=generator)
    with torch.no_grad():
        full = model(input_ids=torch.cat([head, tail], 1)).logits[:, 4:]
        field = cache_field(model)
        cache = model(input_ids=head, use_cache=True)[field]
        prefix = cache_as_prefix(cache, shape)
        assert prefix.shape == (2, 4, shape.layers, 2, shape.width)
        mask = with_prefix_mask(torch.ones(2, 6, dtype=torch.long), 4)
        assert mask.shape == (2, 10) and mask.min() == 1
        again = model(input_ids=tail, attention_mask=mask, **{field: prefix_cache(prefix, shape)}).logits
    assert torch.allclose(full, again, atol=1e-5)


def test_shapes_and_the_shared_key_value_form():
    model = load_backbone("random:tiny-llama").model
    shape = prefix_shape(model.config)
    assert (shape.layers, shape.kv_heads, shape.head_dim) == (2, 2, 16)  # grouped key/value heads
    assert prefix_shape(load_backbone("random:tiny-gpt2").model.config).kv_heads == 4
    same = torch.randn(3, 5, shape.layers, shape.width)
    cache = prefix_cache(same, shape)
    assert cache.get_seq_length() == 5 and torch.equal(cache.layers[1].keys, cache.layers[1].values)
    assert torch.equal(cache_as_prefix(cache, shape)[:, :, :, 0], same)
    with pytest.raises(ConfigError):
        prefix_cache(torch.randn(3, 5, shape.layers, shape.width + 1), shape)


@pytest.mark.parametrize("spec", ["random:tiny-gpt2", "random:tiny-llama"])
def test_generation_with_a_prefix_equals_generation_after_its_tokens(spec):
    from pdg_eval_methods.common.config import DecodingConfig
    from pdg_eval_methods.common.generation import generate_causal_lm, generate_with_prefix

    backbone = load_backbone(spec)
    model, tokenizer = backbone.model.eval(), backbone.tokenizer
    shape, field = prefix_shape(model.config), cache_field(model)
    generator = torch.Generator().manual_seed(1)
    heads = [torch.randint(5, 200, (4,), generator=generator).tolist() for _ in range(5)]
    prompts = [torch.randint(5, 200, (n,), generator=generator).tolist() for n in (3, 7, 5, 9, 2)]
    with torch.no_grad():
        rows = [cache_as_prefix(model(input_ids=torch.tensor([h]), use_cache=True)[field], shape) for h in heads]
    prefixes = lambda batch: torch.cat([rows[i] for i in batch])  # noqa: E731
    greedy = DecodingConfig(strategy="greedy", max_new_tokens=8, batch_size=4)
    plain, _ = generate_causal_lm(model, tokenizer, [h + p for h, p in zip(heads, prompts)], greedy, one_line=False)
    prefixed, count = generate_with_prefix(model, tokenizer, prompts, prefixes, greedy, one_line=False)
    assert prefixed == plain and count > 0  # left padding included: positions continue after the prefix
    one = DecodingConfig(strategy="greedy", max_new_tokens=8, batch_size=1)
    assert generate_with_prefix(model, tokenizer, prompts, prefixes, one, one_line=False)[0] == prefixed


def test_cached_generation_after_a_prefix_equals_teacher_forcing(monkeypatch):
    from pdg_eval_methods.common.config import DecodingConfig
    from pdg_eval_methods.common.generation import generate_with_prefix

    backbone = load_backbone("random:tiny-llama")
    model, tokenizer = backbone.model.eval(), backbone.tokenizer
    shape, field = prefix_shape(model.config), cache_field(model)
    prefix = torch.randn(1, 3, shape.layers, shape.width, generator=torch.Generator().manual_seed(4))
    prompt = [17, 42, 99, 7]
    greedy = DecodingConfig(strategy="greedy", max_new_tokens=6, batch_size=1)
    decoded, decode = [], tokenizer.decode
    monkeypatch.setattr(tokenizer, "decode", lambda ids, **options: decoded.append(list(ids)) or decode(ids, **options))
    _, count = generate_with_prefix(model, tokenizer, [prompt], lambda batch: prefix, greedy, one_line=False)
    tokens = decoded[0]
    assert len(tokens) == count == 6
    sequence = torch.tensor([prompt + tokens])
    mask = with_prefix_mask(torch.ones_like(sequence), 3)
    with torch.no_grad():
        logits = model(input_ids=sequence, attention_mask=mask, position_ids=torch.arange(3, 3 + sequence.shape[1])[None],
                       **{field: prefix_cache(prefix, shape)}).logits
    assert logits[0, len(prompt) - 1:-1].argmax(-1).tolist() == tokens  # each step's argmax, in one pass
