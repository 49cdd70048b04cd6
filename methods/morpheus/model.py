"""MORPHEUS' model (Tang et al., EMNLP 2024, §3): one causal LM that is its own persona encoder, a persona codebook,
a prefix network that turns M persona vectors into per-layer keys/values, and a code predictor over the history.

* **Persona encoding** (Eq. 3–4): each of the M persona segments (text + end of sequence) through the LM's base
  model; p = the last layer's state at the segment's last token (the released code's encoder is the same LM).
* **Prefix** (PersonaPKT-style, the released code's "decoder" MLP): d → 2d → 4d → L · width (tanh, dropout 0.1); slot i
  becomes one virtual token per layer, the same tensor as key and value (:mod:`pdg_eval_methods.common.prefix`).
* **Stage ``role_awareness``** (Eq. 2): L_G = the response NLL after the prefix of the encoded persona.
* **Stage ``joint``** (Eq. 8–14): nearest codes k, L_V, the prefix from the straight-through value
  (:func:`.codebook.straight_through`), L_G; the predictor reads c = the last state of a history-only forward (Eq.
  12, as at inference) and gives per-slot logits MLP(c + PosEmb(j)) (d → 2d → 4d → 2d → N, ReLU, dropout 0.1), L_D; L_C
  over the codebook. L = w_G·L_G + w_V·L_V + w_D·L_D + w_C·L_C.
* **Inference** reads no persona: predicted codes → prefix from the code vectors → decoding after the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pdg_eval.models.causal_lm import cache_field

from pdg_eval_methods.common.prefix import PrefixShape, mask_positions, prefix_cache, prefix_shape, with_prefix_mask

from . import codebook as cb

STAGES = ("role_awareness", "joint")
CONTRASTIVE = ("paper", "released")
CODE_LOSSES = ("ce", "focal")


@dataclass
class MorpheusSettings:
    codebook_size: int = 100
    slots: int = 5  # M persona segments (cycled when fewer, cut when more)
    dropout: float = 0.1
    beta: float = cb.BETA
    tau: float = cb.TAU
    contrastive: str = "paper"  # paper: all N codes, τ 0.5 | released: assigned + 20 unused codes, τ 0.07
    code_loss: str = "ce"  # ce (Eq. 13) | focal (the released code, γ 2)
    ste: str = "none"
    weights: dict[str, float] = field(default_factory=lambda: {"G": 1.0, "V": 1.0, "D": 1.0, "C": 1.0})


class PrefixNet(nn.Module):
    """M vectors of size d → a [B, M, L, width] prefix."""

    def __init__(self, hidden: int, shape: PrefixShape, dropout: float):
        super().__init__()
        self.shape = shape
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.Tanh(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, 4 * hidden), nn.Tanh(), nn.Dropout(dropout),
                                 nn.Linear(4 * hidden, shape.layers * shape.width))

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        batch, m, _ = slots.shape
        return self.mlp(slots).reshape(batch, m, self.shape.layers, self.shape.width)


class CodePredictor(nn.Module):
    """c [B, d] → per-slot code logits [B, M, N]: MLP(c + PosEmb(j))."""

    def __init__(self, hidden: int, slots: int, codes: int, dropout: float):
        super().__init__()
        self.position = nn.Embedding(slots, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, 4 * hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(4 * hidden, 2 * hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, codes))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.mlp(state[:, None, :] + self.position.weight[None])


def last_states(base: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The last layer's state at each right-padded row's last real token: [B, d]."""
    states = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    last = attention_mask.long().sum(1) - 1
    return states[torch.arange(len(states), device=states.device), last]


class Morpheus(nn.Module):
    #: the losses are means over each micro-batch, so the Trainer divides by the gradient accumulation steps (with
    #: ``**kwargs`` in ``forward`` it would otherwise assume the model normalised by ``num_items_in_batch``)
    accepts_loss_kwargs = False

    def __init__(self, lm: nn.Module, settings: MorpheusSettings, stage: str = "role_awareness"):
        super().__init__()
        self.lm, self.settings, self.stage = lm, settings, stage
        hidden = lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.n_embd
        self.shape = prefix_shape(lm.config)
        self.codebook = nn.Parameter(torch.zeros(settings.codebook_size, hidden))
        self.prefix_net = PrefixNet(hidden, self.shape, settings.dropout)
        self.predictor = CodePredictor(hidden, settings.slots, settings.codebook_size, settings.dropout)
        self._field = cache_field(lm)
        self._draws = torch.Generator().manual_seed(0)  # the released contrastive form's negatives

    # -- pieces ---------------------------------------------------------------------------------------------------
    def encode_segments(self, segment_ids: torch.Tensor, segment_mask: torch.Tensor) -> torch.Tensor:
        """[B, M, T] segment tokens → p [B, M, d]."""
        batch, m, width = segment_ids.shape
        flat = last_states(self.lm.base_model, segment_ids.reshape(-1, width), segment_mask.reshape(-1, width))
        return flat.reshape(batch, m, -1)

    def history_state(self, history_ids: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """c of Eq. 12: the last state of a forward over the history alone."""
        return last_states(self.lm.base_model, history_ids, history_mask)

    def lm_loss(self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """L_G: the mean response-token NLL after the prefix (right-padded sequences)."""
        mask = with_prefix_mask(attention_mask, prefix.shape[1])
        out = self.lm(input_ids=input_ids, attention_mask=mask, position_ids=mask_positions(mask, input_ids.shape[1]),
                      labels=labels, use_cache=True, **{self._field: prefix_cache(prefix, self.shape)})
        return out.loss

    def code_loss(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        flat, target = logits.reshape(-1, logits.shape[-1]), codes.reshape(-1)
        if self.settings.code_loss == "focal":
            return cb.focal_loss(flat, target)
        return nn.functional.cross_entropy(flat, target)

    # -- training -------------------------------------------------------------------------------------------------
    def forward(self, input_ids, attention_mask, labels, segment_ids, segment_mask, history_ids=None,
                history_mask=None, **_: Any) -> dict[str, torch.Tensor]:
        p = self.encode_segments(segment_ids, segment_mask)
        if self.stage == "role_awareness":
            loss = self.lm_loss(self.prefix_net(p), input_ids, attention_mask, labels)
            return {"loss": loss, "L_G": loss.detach()}
        s = self.settings
        codes = cb.nearest_codes(p.detach(), self.codebook.detach())
        chosen = self.codebook[codes]
        parts = {"V": cb.vq_loss(p, chosen, s.beta),
                 "G": self.lm_loss(self.prefix_net(cb.straight_through(p, chosen, s.ste)), input_ids, attention_mask,
                                   labels),
                 "D": self.code_loss(self.predictor(self.history_state(history_ids, history_mask)), codes)}
        if s.contrastive == "paper":
            parts["C"] = cb.contrastive_loss(p, self.codebook, codes, s.tau)
        else:
            parts["C"] = cb.contrastive_loss(p, self.codebook, codes, cb.RELEASED_TAU, cb.RELEASED_NEGATIVES,
                                             self._draws)
        loss = sum(s.weights.get(name, 1.0) * value for name, value in parts.items())
        return {"loss": loss, **{f"L_{name}": value.detach() for name, value in parts.items()}}

    # -- inference ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, history_ids: torch.Tensor, history_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Persona-free: the predicted code per slot [B, M] and the prefix built from those code vectors."""
        codes = self.predict_codes(self.history_state(history_ids, history_mask))
        return codes, self.code_prefix(codes)

    @torch.no_grad()
    def predict_codes(self, states: torch.Tensor) -> torch.Tensor:
        """The predicted code per slot [B, M] from the histories' last states c [B, d] (Eq. 12)."""
        return self.predictor(states).argmax(-1)

    @torch.no_grad()
    def code_prefix(self, codes: torch.Tensor) -> torch.Tensor:
        """The prefix built from the vectors of ``codes`` [B, M]."""
        return self.prefix_net(self.codebook[codes])
