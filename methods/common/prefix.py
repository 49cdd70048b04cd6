"""Per-example key/value prefixes for a causal LM (prefix-tuning, Li & Liang 2021; PersonaPKT; MORPHEUS' persona
codes): M virtual tokens per layer, given as keys and values, that every real token attends to.

A prefix is a tensor ``[B, M, L, 2, n_kv_heads · head_dim]`` (keys, values) or ``[B, M, L, n_kv_heads · head_dim]``
(the same tensor as key and value, as MORPHEUS' code feeds it). :func:`prefix_cache` turns it into a fresh
``DynamicCache`` for one forward or one ``generate`` call (never reused: the model appends to it), shaped
``[B, n_kv_heads, M, head_dim]`` per layer — GPT-2's heads or LLaMA's grouped key/value heads. The attention mask
gets M ones in front (:func:`with_prefix_mask`); positions of the real tokens then start at M (transformers derives
them from the cache length, or from the mask's cumulative sum under left padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pdg_eval.errors import ConfigError


@dataclass(frozen=True)
class PrefixShape:
    layers: int
    kv_heads: int
    head_dim: int

    @property
    def width(self) -> int:
        """Features per virtual token and layer (n_kv_heads · head_dim)."""
        return self.kv_heads * self.head_dim


def prefix_shape(config) -> PrefixShape:
    """The key/value geometry of a transformers causal-LM config (GPT-2: ``n_head``; LLaMA family: grouped heads)."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer")
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head")
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd")
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return PrefixShape(layers, kv_heads, head_dim)


def prefix_cache(prefix: torch.Tensor, shape: PrefixShape):
    """A ``DynamicCache`` holding ``prefix`` (see the module docstring) as each layer's past keys and values."""
    from transformers import DynamicCache

    if prefix.dim() == 4:
        prefix = torch.stack([prefix, prefix], dim=3)
    if prefix.dim() != 5 or prefix.shape[2] != shape.layers or prefix.shape[3] != 2 or prefix.shape[4] != shape.width:
        raise ConfigError(f"a prefix is [B, M, {shape.layers}, (2,) {shape.width}]; got {list(prefix.shape)}")
    batch, m = prefix.shape[:2]
    per_head = prefix.reshape(batch, m, shape.layers, 2, shape.kv_heads, shape.head_dim).permute(2, 3, 0, 4, 1, 5)
    return DynamicCache([(per_head[layer, 0], per_head[layer, 1]) for layer in range(shape.layers)])


def cache_as_prefix(cache, shape: PrefixShape) -> torch.Tensor:
    """The inverse of :func:`prefix_cache`: a cache's keys and values as a ``[B, M, L, 2, width]`` prefix."""
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    stacked = torch.stack([torch.stack(kv) for kv in layers])  # [L, 2, B, H, M, D]
    batch, m = stacked.shape[2], stacked.shape[4]
    return stacked.permute(2, 4, 0, 1, 3, 5).reshape(batch, m, shape.layers, 2, shape.width)


def mask_positions(mask: torch.Tensor, count: int) -> torch.Tensor:
    """The position ids of the last ``count`` columns of an attention mask: each token's position counts only the
    attended tokens before it (left padding and masked gaps take none; a prefix's virtual tokens count)."""
    return (mask.cumsum(-1) - 1).clamp_min(0)[:, mask.shape[1] - count:]


def with_prefix_mask(attention_mask: torch.Tensor, m: int) -> torch.Tensor:
    """``attention_mask`` [B, T] with M ones in front (the virtual tokens are always attended)."""
    ones = torch.ones(attention_mask.shape[0], m, dtype=attention_mask.dtype, device=attention_mask.device)
    return torch.cat([ones, attention_mask], dim=1)
