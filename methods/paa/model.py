"""The dual-encoder, dual-cross-attention decoder of PAA (Huang et al., AAAI 2023, §Method and Listing 1) and of the
fusion rules it is compared with (Attention-Routing, Zheng et al. 2020, PAA appendix Eq. 10).

Two randomly initialised bidirectional encoders (4 layers, 4 heads, the decoder's width) read the persona and the
dialogue context. In every decoder block, after self-attention (``h = self_attn(d) + d``, Listing 1 line 14), the
hidden state attends to both encodings (``o_p``, ``o_c``) and a *fusion* rule adds them back before the block's
feed-forward network (``d = mlp(h') + h'``):

* ``paa`` — w = σ(FC([h; o_p])) (Eq. 4), masks M_p = 1[w > τ], M_c = 1[1 − w > τ] (Eq. 6), h' = h + w⊙M_p⊙o_p +
  (1 − w)⊙M_c⊙o_c (Eq. 5, 7 and Listing 1 line 26–27). The masks are hard: gradients flow through w, not through them.
  ⚠ Listing 1 writes the inverted masks (``where(w1 > tau, 0, 1)``); Eq. 6 and the authors' code agree with each
  other, and we follow them.
* ``routing`` — Attention-Routing: h' = h + α·o_p + (1 − α)·o_c + o_c with one shared cross-attention (PAA appendix
  Eq. 10 and code; α = 0.2 in the paper's grid search, 0.1 in the code).
* the ablation variants of PAA's appendix (Fig. 4, Table 4): ``dual`` (a weight and mask per source), ``skipped``
  (weight and mask on the persona side only), ``context`` (the weight computed from the context side), ``direct_sum``
  (h + o_p + o_c) and ``param`` (h + W[o_p; o_c]).

τ is per example: |I_U| / (|I_U| + |I_P|) with the paper's context numerator (Eq. 6; Listing 1 line 13) or the
persona numerator of the authors' README command (``tau_numerator: persona``), counted in non-padding encoder tokens
as in the code (``auto_tau=accurate``).

The decoder is any transformers causal LM of the GPT-2 or LLaMA family, used unchanged: the cross-attention and the
fusion run inside forward hooks on each block's self-attention (the block input is captured by a hook on its first
layer norm), so the LM's own caching, masks, positions and ``generate`` are untouched. The encodings, and their
projected keys/values, are computed once per batch and reused at every generation step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

FUSIONS = ("paa", "dual", "skipped", "context", "direct_sum", "param", "routing")
TAU_NUMERATORS = ("context", "persona")


@dataclass
class DualAttentionConfig:
    fusion: str = "paa"
    encoder_layers: int = 4
    encoder_heads: int = 4
    cross_attention_heads: int | None = None  # None: the decoder's number of heads
    shared_cross_attention: bool = False  # routing always shares
    tau_numerator: str = "context"  # paper: context; authors' README command: persona
    alpha: float = 0.2  # routing: the persona weight (paper appendix; code 0.1)
    dropout: float = 0.1


# -- the fusion rules, as pure functions ------------------------------------------------------------------------------

def example_tau(persona_mask: torch.Tensor, context_mask: torch.Tensor, numerator: str = "context") -> torch.Tensor:
    """τ per example, [B, 1, 1]: |I_U| / (|I_U| + |I_P|) (``context``) or |I_P| / (|I_U| + |I_P|) (``persona``)."""
    n_persona = persona_mask.sum(dim=1).float()
    n_context = context_mask.sum(dim=1).float()
    top = n_context if numerator == "context" else n_persona
    return (top / (n_persona + n_context).clamp(min=1.0))[:, None, None]


def paa_masks(w: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PAA Eq. 6: M_p = 1[w > τ], M_c = 1[1 − w > τ] (float 0/1, no gradient)."""
    with torch.no_grad():
        return (w > tau).to(w.dtype), (1 - w > tau).to(w.dtype)


def paa_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, gate: nn.Linear, tau: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """PAA Eq. 4–7 with the residual of Listing 1: returns (h', w)."""
    w = torch.sigmoid(gate(torch.cat([h, o_p], dim=-1)))
    m_p, m_c = paa_masks(w, tau)
    return h + w * m_p * o_p + (1 - w) * m_c * o_c, w


def routing_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, alpha: float) -> torch.Tensor:
    """Attention-Routing (PAA appendix Eq. 10): h + α·o_p + (1 − α)·o_c + o_c."""
    return h + alpha * o_p + (1 - alpha) * o_c + o_c


def dual_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, gate_p: nn.Linear, gate_c: nn.Linear,
                tau: torch.Tensor) -> torch.Tensor:
    """Dual Weights (PAA appendix, Fig. 4a): each source gets its own weight, w_p = σ(FC_p([h; o_p])) and
    w_c = σ(FC_c([h; o_c])), and its own mask 1[w > τ]: h + w_p⊙M_p⊙o_p + w_c⊙M_c⊙o_c. (The appendix does not give
    the context mask's threshold; τ for both is our reading.)"""
    w_p = torch.sigmoid(gate_p(torch.cat([h, o_p], dim=-1)))
    w_c = torch.sigmoid(gate_c(torch.cat([h, o_c], dim=-1)))
    m_p, _ = paa_masks(w_p, tau)
    m_c, _ = paa_masks(w_c, tau)
    return h + w_p * m_p * o_p + w_c * m_c * o_c


def skipped_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, gate: nn.Linear, tau: torch.Tensor
                   ) -> torch.Tensor:
    """Skipped Weight (Fig. 4b): weight and mask on the persona side only: h + w⊙M_p⊙o_p + o_c."""
    w = torch.sigmoid(gate(torch.cat([h, o_p], dim=-1)))
    m_p, _ = paa_masks(w, tau)
    return h + w * m_p * o_p + o_c


def context_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, gate: nn.Linear, tau: torch.Tensor
                   ) -> torch.Tensor:
    """Context-Adaptive (Fig. 4c): PAA with the roles swapped, the weight from the context cross-attention:
    w = σ(FC([h; o_c])), h + w⊙1[w > τ]⊙o_c + (1 − w)⊙1[1 − w > τ]⊙o_p."""
    w = torch.sigmoid(gate(torch.cat([h, o_c], dim=-1)))
    m_c, m_p = paa_masks(w, tau)
    return h + w * m_c * o_c + (1 - w) * m_p * o_p


def direct_sum_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor) -> torch.Tensor:
    """DirectSUM (Fig. 4d): h + o_p + o_c."""
    return h + o_p + o_c


def param_fusion(h: torch.Tensor, o_p: torch.Tensor, o_c: torch.Tensor, mix: nn.Linear) -> torch.Tensor:
    """Parametric (Fig. 4e): one linear layer over the concatenated results: h + W[o_p; o_c] + b."""
    return h + mix(torch.cat([o_p, o_c], dim=-1))


class MaskCounter:
    """How often PAA's masks (Eq. 6) are open, per decoder layer, over the (token, dimension) elements of real
    decoder tokens: persona only (M_p = 1, M_c = 0), context only, both, neither. Counts the forward passes of one
    phase: training (``training=True``, the model in train mode) or teacher-forced inference."""

    KINDS = ("persona_only", "context_only", "both", "neither")

    def __init__(self, layers: int, training: bool):
        self.training = training
        self.counts = torch.zeros(layers, 4, dtype=torch.float64)
        self.tau: list[float] = []
        self.tokens = 0

    def add(self, layer: int, w: torch.Tensor, tau: torch.Tensor, decoder_mask: torch.Tensor | None) -> None:
        with torch.no_grad():
            m_p, m_c = (mask.bool() for mask in paa_masks(w, tau))
            real = torch.ones(w.shape[:2], dtype=torch.bool, device=w.device)
            if decoder_mask is not None and decoder_mask.shape[1] == w.shape[1]:  # else one cached step: all real
                real = decoder_mask.bool()
            kinds = torch.stack((m_p & ~m_c, ~m_p & m_c, m_p & m_c, ~m_p & ~m_c)) & real[None, ..., None]
            self.counts[layer] += kinds.flatten(1).sum(1).to(torch.float64).cpu()
            if layer == 0:
                self.tokens += int(real.sum())
                self.tau.extend(tau.flatten().tolist())

    def report(self) -> dict[str, Any]:
        """Shares per layer and over all layers, the decoder tokens counted and τ's mean and median (per row)."""
        def shares(row: torch.Tensor) -> dict[str, float]:
            total = float(row.sum())
            return {kind: float(value) / total if total else None for kind, value in zip(self.KINDS, row.tolist())}

        ordered = sorted(self.tau)
        return {"tokens": self.tokens, "rows": len(self.tau),
                "tau_mean": sum(ordered) / len(ordered) if ordered else None,
                "tau_median": ordered[len(ordered) // 2] if ordered else None,
                "all_layers": shares(self.counts.sum(0)), "per_layer": [shares(row) for row in self.counts]}


# -- modules --------------------------------------------------------------------------------------------------------

class CrossAttention(nn.Module):
    """Pre-norm multi-head attention from decoder states to an encoding (scaled dot-product, key padding masked),
    with dropout on the attention weights and on the output as the GPT-2 cross-attention of the authors' code
    (``GPT2Attention``: ``attn_dropout``, ``resid_dropout``). The keys and values of an encoding are projected once
    per batch and reused at every generation step."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def memory(self, encoding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [B, heads, S, width / heads] of an encoding."""
        batch, length, width = encoding.shape
        kv = self.key_value(encoding).view(batch, length, 2, self.heads, width // self.heads)
        return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)

    def forward(self, h: torch.Tensor, memory: tuple[torch.Tensor, torch.Tensor], memory_mask: torch.Tensor
                ) -> torch.Tensor:
        batch, length, width = h.shape
        q = self.query(self.norm(h)).view(batch, length, self.heads, width // self.heads).transpose(1, 2)
        keep = memory_mask[:, None, None, :].bool()
        o = nn.functional.scaled_dot_product_attention(q, *memory, attn_mask=keep,
                                                       dropout_p=self.dropout if self.training else 0.0)
        out = self.out(o.transpose(1, 2).reshape(batch, length, width))
        return nn.functional.dropout(out, self.dropout, self.training)  # GPT2Attention's resid_dropout


class Fusion(nn.Module):
    """The cross-attentions and the fusion rule of one decoder block."""

    def __init__(self, width: int, heads: int, config: DualAttentionConfig):
        super().__init__()
        self.config = config
        self.cross_persona = CrossAttention(width, heads, config.dropout)
        shared = config.shared_cross_attention or config.fusion == "routing"
        self.cross_context = None if shared else CrossAttention(width, heads, config.dropout)
        gated = config.fusion in ("paa", "dual", "skipped", "context")
        self.gate = nn.Linear(2 * width, width) if gated else None  # PAA Eq. 4's FC (context's in "context")
        self.context_gate = nn.Linear(2 * width, width) if config.fusion == "dual" else None
        self.mix = nn.Linear(2 * width, width) if config.fusion == "param" else None

    def forward(self, h: torch.Tensor, state: "EncoderState", layer: int = 0) -> torch.Tensor:
        persona_xa = self.cross_persona
        context_xa = self.cross_context or self.cross_persona
        batch = h.shape[0]
        o_p = persona_xa(h, state.memory(persona_xa, "persona", batch), state.mask("persona", batch))
        o_c = context_xa(h, state.memory(context_xa, "context", batch), state.mask("context", batch))
        fusion = self.config.fusion
        if fusion == "paa":
            tau = state.tau_for(batch)
            fused, w = paa_fusion(h, o_p, o_c, self.gate, tau)
            if state.counter is not None:
                state.counter.add(layer, w, tau, state.decoder_mask)
            return fused
        if fusion == "dual":
            return dual_fusion(h, o_p, o_c, self.gate, self.context_gate, state.tau_for(batch))
        if fusion == "skipped":
            return skipped_fusion(h, o_p, o_c, self.gate, state.tau_for(batch))
        if fusion == "context":
            return context_fusion(h, o_p, o_c, self.gate, state.tau_for(batch))
        if fusion == "direct_sum":
            return direct_sum_fusion(h, o_p, o_c)
        if fusion == "param":
            return param_fusion(h, o_p, o_c, self.mix)
        return routing_fusion(h, o_p, o_c, self.config.alpha)


@dataclass
class EncoderState:
    """The encodings of one batch, their masks, τ, and the keys/values projected from them (per module)."""

    persona: torch.Tensor
    persona_mask: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor
    tau: torch.Tensor
    cache: dict = field(default_factory=dict)
    counter: MaskCounter | None = None  # PAA's open masks are counted while set
    decoder_mask: torch.Tensor | None = None  # the decoder's attention mask (real tokens) of a full forward pass

    def _repeat(self, tensor: torch.Tensor, batch: int) -> torch.Tensor:
        """Rows repeated for a decoder batch that holds several sequences per example (beams, samples)."""
        k = batch // tensor.shape[0]
        return tensor.repeat_interleave(k, dim=0) if k > 1 else tensor

    def mask(self, source: str, batch: int) -> torch.Tensor:
        return self._repeat(self.persona_mask if source == "persona" else self.context_mask, batch)

    def memory(self, module: "CrossAttention", source: str, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (id(module), source, batch)
        if key not in self.cache:
            encoding = self.persona if source == "persona" else self.context
            self.cache[key] = module.memory(self._repeat(encoding, batch))
        return self.cache[key]

    def tau_for(self, batch: int) -> torch.Tensor:
        return self._repeat(self.tau, batch)


def decoder_layers(lm) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    """(block, its first layer norm, its self-attention) for GPT-2 and LLaMA-family causal LMs."""
    base = lm.base_model
    if hasattr(base, "h"):  # GPT-2
        return [(block, block.ln_1, block.attn) for block in base.h]
    if hasattr(base, "layers"):  # LLaMA, Mistral, Qwen2, SmolLM2
        return [(block, block.input_layernorm, block.self_attn) for block in base.layers]
    raise ValueError(f"unsupported decoder {type(lm).__name__}: expected a GPT-2 or LLaMA-family causal LM")


def decoder_shape(lm) -> tuple[int, int]:
    config = lm.config
    width = getattr(config, "n_embd", None) or config.hidden_size
    heads = getattr(config, "n_head", None) or config.num_attention_heads
    return width, heads


class DualAttentionLM(nn.Module):
    """Persona encoder + context encoder + a causal LM whose blocks fuse cross-attention to both."""

    #: the candidate head's loss is a mean over the micro-batch: the Trainer divides by the gradient accumulation
    #: steps and passes no ``num_items_in_batch`` (which ``**kwargs`` in ``forward`` would otherwise announce)
    accepts_loss_kwargs = False

    def __init__(self, lm, config: DualAttentionConfig, vocab_size: int, pad_id: int, max_positions: int = 512):
        from transformers import BertConfig, BertModel

        super().__init__()
        if config.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}")
        if config.tau_numerator not in TAU_NUMERATORS:
            raise ValueError(f"tau_numerator must be one of {', '.join(TAU_NUMERATORS)}")
        self.config = config
        self.lm = lm
        width, heads = decoder_shape(lm)
        encoder_config = BertConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=config.encoder_layers,
                                    num_attention_heads=config.encoder_heads, intermediate_size=4 * width,
                                    max_position_embeddings=max_positions, pad_token_id=pad_id)
        self.persona_encoder = BertModel(encoder_config, add_pooling_layer=False)
        self.context_encoder = BertModel(encoder_config, add_pooling_layer=False)
        self.fusions = nn.ModuleList(Fusion(width, config.cross_attention_heads or heads, config)
                                     for _ in decoder_layers(lm))
        #: PAA's Hits@1 head (§Experiments, Eq. 9): a binary classifier on the decoder's last token
        self.candidate_head = nn.Linear(width, 1)
        self.initialise_new_modules(getattr(lm.config, "initializer_range", 0.02), len(self.fusions))
        self._state: EncoderState | None = None
        self._residual: dict[int, torch.Tensor] = {}
        #: set to a :class:`MaskCounter` to count PAA's open masks in the forward passes of its phase
        self.mask_counter: MaskCounter | None = None
        for index, (_, norm, attention) in enumerate(decoder_layers(lm)):
            norm.register_forward_pre_hook(self._capture(index))
            attention.register_forward_hook(self._fuse(index))

    @torch.no_grad()
    def initialise_new_modules(self, std: float, layers: int) -> None:
        """The cross-attentions, gates and the candidate head as transformers initialises the cross-attention that
        the authors' code adds to GPT-2 (``add_cross_attention=True``; ``GPT2PreTrainedModel._init_weights``): weights
        N(0, std) with the backbone's ``initializer_range``, biases 0, and the output projections N(0, std/√(2·layers))
        so the residual stream of the pretrained decoder is barely disturbed at the start. Measured on 32 ConvAI2
        train turns with SmolLM2-135M: step-0 loss 5.28 with this init, 5.87 with PyTorch's default ``nn.Linear``
        init, 5.27 for the plain LM on the same decoder input. The BERT encoders are initialised by transformers
        (N(0, 0.02))."""
        for module in [*self.fusions.modules(), self.candidate_head]:
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                module.bias.zero_()
        for fusion in self.fusions:
            for attention in (fusion.cross_persona, fusion.cross_context):
                if attention is not None:
                    attention.out.weight.normal_(0.0, std / (2 * layers) ** 0.5)

    # hooks: the block input (the residual) is captured at its first norm; the fused delta joins the attention output
    def _capture(self, index: int):
        def hook(module, args):
            if self._state is not None:
                self._residual[index] = args[0]
        return hook

    def _fuse(self, index: int):
        def hook(module, args, output):
            if self._state is None:
                return output
            attention_output = output[0] if isinstance(output, tuple) else output
            h = attention_output + self._residual.pop(index)
            delta = self.fusions[index](h, self._state, index) - h
            fused = attention_output + delta
            return (fused, *output[1:]) if isinstance(output, tuple) else fused
        return hook

    def encode(self, persona_ids, persona_mask, context_ids, context_mask) -> EncoderState:
        persona = self.persona_encoder(input_ids=persona_ids, attention_mask=persona_mask).last_hidden_state
        context = self.context_encoder(input_ids=context_ids, attention_mask=context_mask).last_hidden_state
        tau = example_tau(persona_mask, context_mask, self.config.tau_numerator)
        return EncoderState(persona, persona_mask, context, context_mask, tau)

    def candidate_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The Hits@1 head's logit at each sequence's last real token (right padding) [B]."""
        last = attention_mask.sum(dim=1) - 1
        return self.candidate_head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last]).squeeze(-1)

    def forward(self, input_ids, attention_mask, persona_ids, persona_mask, context_ids, context_mask,
                labels=None, candidate_labels=None, **kwargs: Any):
        """The LM's output (loss on ``labels``). With ``candidate_labels`` (1 gold, 0 distractor; PAA's Hits@1
        fine-tuning) the loss is binary cross-entropy of the candidate head plus the LM loss of the rows that have
        labels (the gold ones), and the output is a dict with ``candidate_logits``."""
        self._state = self.encode(persona_ids, persona_mask, context_ids, context_mask)
        if self.mask_counter is not None and self.mask_counter.training == self.training:
            self._state.counter, self._state.decoder_mask = self.mask_counter, attention_mask
        try:
            if candidate_labels is None:
                return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
            out = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
            scores = self.candidate_logits(out.hidden_states[-1], attention_mask)
            loss = nn.functional.binary_cross_entropy_with_logits(scores, candidate_labels.float())
            if labels is not None and bool((labels[:, 1:] != -100).any()):
                loss = loss + nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(),
                                                          labels[:, 1:].flatten(), ignore_index=-100)
            return {"loss": loss, "logits": out.logits, "candidate_logits": scores}
        finally:
            self._state, self._residual = None, {}

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, persona_ids, persona_mask, context_ids, context_mask,
                 **kwargs: Any):
        self._state = self.encode(persona_ids, persona_mask, context_ids, context_mask)
        try:
            return self.lm.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            self._state, self._residual = None, {}
