"""``seq2seq_gru`` — the Seq2Seq + attention baseline of MORPHEUS: a GRU encoder–decoder (Sutskever et al. 2014)
with Luong et al. 2015 attention ("Effective Approaches to Attention-based Neural Machine Translation", §3.1 global
attention: score functions ``dot`` | ``general`` | ``concat``; §3.3 input feeding). The PAA repository only has a plain
GRU/LSTM encoder–decoder without attention (``hqsiswiliam/persona-adaptive-attention@2539c5c``); we choose GRU + Luong attention, as MORPHEUS
describes its baseline.

* Vocabulary: the tokenizer of ``config.backbone`` (:func:`~pdg_eval_methods.common.backbones.tokenizer_for`; the default
  ``random:tiny-gpt2`` gives GPT-2's BPE, 50,257 ids). The backbone's *weights are not used*: every parameter here
  is initialised from ``config.seed``.
* Source: pdg-eval's ``pdg-v1`` prompt text (``Persona: ...`` then one ``Partner:`` / ``You:`` line per context turn,
  ending in ``You:``; :class:`~pdg_eval_methods.common.prompts.Formatter`, ``format: plain``), tokenised and cut from the
  LEFT to ``max_source_tokens`` (``model.with_persona: false`` drops the persona line). It is never empty.
* Target: ``" " + response`` tokens (cut to ``training.max_length - 1``) + end-of-sequence; the decoder starts from
  the tokenizer's bos (else eos) id. Teacher forcing with token-level cross-entropy (labels −100 are ignored).
* Model: bidirectional GRU encoder (packed, so padding never reaches it); its final states, both directions of the
  top layer, are projected (``tanh``) to the decoder's initial states, and its outputs to the decoder's hidden size
  (the attention "memory" h̄_s). Each decoder step: GRU → scores over the memory with the source padding mask →
  a_t = softmax → context c_t → h̃_t = tanh(W_c[c_t; h_t]) → vocabulary logits. With ``input_feeding`` (default)
  h̃_{t−1} is concatenated to the next input embedding.
* Generation: length-sorted batches of ``decoding.batch_size`` (results in input order), the source cut to
  ``min(max_source_tokens, decoding.max_prompt_tokens)``, the encoder run once per batch, then the shared
  :func:`~pdg_eval_methods.common.generation.decode_loop` (greedy or sampling; no beam search) over :meth:`Seq2SeqGRU.step`.
* ``tie_embeddings``: source and target share one embedding table. The decoder *uses* the encoder's table without
  registering it twice, so the state dict never holds shared tensors (safetensors and Trainer checkpoints need that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pdg_eval_methods.common.backbones import saved_tokenizer, tokenizer_for
from pdg_eval_methods.common.config import DecodingConfig
from pdg_eval_methods.common.data import Example
from pdg_eval_methods.common.generation import clean, decode_loop, progress_bar
from pdg_eval.models.runtime import length_sorted_batches
from pdg_eval_methods.common.method import Method, register
from pdg_eval_methods.common.prompts import Formatter
from pdg_eval.errors import ConfigError

SCORES = ("dot", "general", "concat")


@dataclass
class Seq2SeqGRUOptions:
    embedding_size: int = 256
    hidden_size: int = 512
    encoder_layers: int = 1
    bidirectional: bool = True
    decoder_layers: int = 1
    dropout: float = 0.1
    attention: str = "general"  # Luong §3.1 score: dot | general | concat
    input_feeding: bool = True  # Luong §3.3: feed h̃_{t-1} to the next step
    with_persona: bool = True
    max_source_tokens: int = 256
    tie_embeddings: bool = False


class LuongAttention(nn.Module):
    """Global attention scores (Luong et al. 2015, §3.1): ``dot`` h_tᵀh̄_s, ``general`` h_tᵀW_a h̄_s, ``concat``
    v_aᵀ tanh(W_a[h_t; h̄_s]). The query-independent part is computed once per source (:meth:`keys`)."""

    def __init__(self, score: str, hidden: int):
        super().__init__()
        if score not in SCORES:
            raise ConfigError(f"model.attention must be one of {', '.join(SCORES)}; got {score!r}")
        self.score = score
        if score == "general":
            self.w_a = nn.Linear(hidden, hidden, bias=False)
        elif score == "concat":  # W_a[h_t; h̄_s] = W_q h_t + W_k h̄_s
            self.w_q = nn.Linear(hidden, hidden, bias=False)
            self.w_k = nn.Linear(hidden, hidden, bias=False)
            self.v_a = nn.Linear(hidden, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """[B, S, H] memory -> [B, S, H] keys."""
        if self.score == "general":
            return self.w_a(memory)
        if self.score == "concat":
            return self.w_k(memory)
        return memory

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query [B, T, H], keys/memory [B, S, H], mask [B, S] (True = real token) -> (context [B, T, H],
        weights [B, T, S]; exactly 0 on padding)."""
        if self.score == "concat":
            scores = self.v_a(torch.tanh(self.w_q(query)[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)
        else:
            scores = query @ keys.transpose(1, 2)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ memory, weights


class DecoderState(NamedTuple):
    """What a decoding step carries: the GRU states, the previous attentional vector h̃ (input feeding) and the
    encoded source."""

    hidden: Tensor  # [decoder_layers, B, H]
    feed: Tensor  # [B, H]
    memory: Tensor  # [B, S, H]
    keys: Tensor  # [B, S, H]
    mask: Tensor  # [B, S] bool


class Seq2SeqGRU(nn.Module):
    """GRU encoder–decoder with Luong attention; ``forward`` returns ``{"loss", "logits", "attentions"}``."""

    main_input_name = "input_ids"

    def __init__(self, vocab_size: int, options: Seq2SeqGRUOptions, pad_id: int, start_id: int):
        super().__init__()
        o = options
        self.options, self.pad_id, self.start_id = o, pad_id, start_id
        directions = 2 if o.bidirectional else 1
        self.source_embedding = nn.Embedding(vocab_size, o.embedding_size)
        self.target_embedding = None if o.tie_embeddings else nn.Embedding(vocab_size, o.embedding_size)
        self.dropout = nn.Dropout(o.dropout)
        self.encoder = nn.GRU(o.embedding_size, o.hidden_size, o.encoder_layers, batch_first=True,
                              dropout=o.dropout if o.encoder_layers > 1 else 0.0, bidirectional=o.bidirectional)
        self.bridge = nn.Linear(directions * o.hidden_size, o.decoder_layers * o.hidden_size)
        self.memory = nn.Linear(directions * o.hidden_size, o.hidden_size, bias=False)
        feed = o.hidden_size if o.input_feeding else 0
        self.decoder = nn.GRU(o.embedding_size + feed, o.hidden_size, o.decoder_layers, batch_first=True,
                              dropout=o.dropout if o.decoder_layers > 1 else 0.0)
        self.attention = LuongAttention(o.attention, o.hidden_size)
        self.combine = nn.Linear(2 * o.hidden_size, o.hidden_size, bias=False)  # W_c
        self.output = nn.Linear(o.hidden_size, vocab_size)

    def embed_target(self, tokens: Tensor) -> Tensor:
        table = self.target_embedding if self.target_embedding is not None else self.source_embedding
        return self.dropout(table(tokens))

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> DecoderState:
        """Right-padded source [B, S] -> the initial decoder state."""
        o = self.options
        lengths = attention_mask.sum(dim=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(self.source_embedding(input_ids)), lengths.cpu(),
                                                   batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=input_ids.shape[1])
        top = final.view(o.encoder_layers, -1, final.shape[1], o.hidden_size)[-1]  # [directions, B, H]
        top = torch.cat(list(top), dim=-1)  # [B, directions * H]
        hidden = torch.tanh(self.bridge(top)).view(-1, o.decoder_layers, o.hidden_size).transpose(0, 1).contiguous()
        memory = self.memory(outputs)
        feed = memory.new_zeros(input_ids.shape[0], o.hidden_size)
        return DecoderState(hidden, feed, memory, self.attention.keys(memory), attention_mask.bool())

    def decode(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor]:
        """Target tokens [B, T] (teacher forcing, or T = 1 incrementally) -> (logits [B, T, V], the state after the
        last token, attention weights [B, T, S])."""
        embedded = self.embed_target(tokens)
        if self.options.input_feeding:  # h̃_{t-1} enters step t: one GRU call per position
            hidden, feed, attentional, weights = state.hidden, state.feed, [], []
            for t in range(tokens.shape[1]):
                output, hidden = self.decoder(torch.cat([embedded[:, t:t + 1], feed[:, None]], dim=-1), hidden)
                h_tilde, a_t = self._attend(output, state)
                feed = h_tilde[:, 0]
                attentional.append(h_tilde)
                weights.append(a_t)
            h_tilde, a = torch.cat(attentional, dim=1), torch.cat(weights, dim=1)
        else:
            output, hidden = self.decoder(embedded, state.hidden)
            h_tilde, a = self._attend(output, state)
            feed = h_tilde[:, -1]
        logits = self.output(self.dropout(h_tilde))
        return logits, state._replace(hidden=hidden, feed=feed), a

    def _attend(self, output: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        context, weights = self.attention(output, state.keys, state.memory, state.mask)
        return torch.tanh(self.combine(torch.cat([context, output], dim=-1))), weights

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoding step for :func:`~pdg_eval_methods.common.generation.decode_loop`: tokens [B, 1] -> logits [B, V]."""
        logits, state, _ = self.decode(tokens, state)
        return logits[:, -1], state

    def shift_right(self, labels: Tensor) -> Tensor:
        """Decoder inputs: the start token, then the labels but the last (−100 becomes padding)."""
        start = labels.new_full((labels.shape[0], 1), self.start_id)
        return torch.cat([start, labels[:, :-1].masked_fill(labels[:, :-1] == -100, self.pad_id)], dim=1)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor | None = None,
                decoder_input_ids: Tensor | None = None) -> dict[str, Tensor]:
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("forward needs labels or decoder_input_ids")
            decoder_input_ids = self.shift_right(labels)
        logits, _, weights = self.decode(decoder_input_ids, self.encode(input_ids, attention_mask))
        out = {"logits": logits, "attentions": weights}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return out


def _pad(rows: Sequence[list[int]], fill: int) -> Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [fill] * (width - len(row)) for row in rows], dtype=torch.long)


@register("seq2seq_gru")
class Seq2SeqGRUBaseline(Method):
    description = "MORPHEUS' Seq2Seq baseline: GRU encoder-decoder with Luong attention, persona + history -> response"
    Options = Seq2SeqGRUOptions
    shift_labels = False  # the decoder's logits are aligned with its labels

    def build(self, checkpoint: Path | None = None) -> None:
        if checkpoint is None:
            self.tokenizer = tokenizer_for(self.config.backbone)
        else:
            self.tokenizer = saved_tokenizer(checkpoint)
        tok = self.tokenizer
        if tok.eos_token_id is None:
            raise ConfigError(f"the tokenizer of {self.config.backbone} has no end-of-sequence token")
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        torch.manual_seed(self.config.seed)
        self.model = Seq2SeqGRU(len(tok), self.options, tok.pad_token_id, start)
        if checkpoint is not None:
            from safetensors.torch import load_model

            load_model(self.model, str(Path(checkpoint) / "model.safetensors"))
        self.formatter = Formatter(tok, "plain", self.options.with_persona)
        self.backbone_info = {
            "spec": self.config.backbone, "tokenizer": type(tok).__name__, "vocab": len(tok),
            "weights": str(checkpoint) if checkpoint is not None else f"random(seed={self.config.seed})",
            "architecture": "Seq2SeqGRU", "parameters": sum(p.numel() for p in self.model.parameters()),
            "note": "only the backbone's tokenizer is used, not its weights",
        }

    # -- sequences ----------------------------------------------------------------------------------------------
    def source_ids(self, example: Example, limit: int | None = None) -> list[int]:
        """The ``pdg-v1`` prompt of persona + context, cut from the left."""
        limit = min(self.options.max_source_tokens, limit or self.options.max_source_tokens)
        return self.formatter.prompt_ids(example.persona, example.context, limit)

    def target_ids(self, response: str) -> list[int]:
        ids = self.formatter.ids(" " + response.strip())[:self.config.training.max_length - 1]
        return ids + [self.tokenizer.eos_token_id]

    def features(self, example: Example) -> list[dict[str, Any]]:
        return [{"input_ids": self.source_ids(example), "labels": self.target_ids(example.response)}]

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Right-padded source (+ mask) and labels (−100); the model shifts the labels right into decoder inputs."""
        sources = [item["input_ids"] for item in batch]
        return {"input_ids": _pad(sources, self.tokenizer.pad_token_id),
                "attention_mask": _pad([[1] * len(s) for s in sources], 0),
                "labels": _pad([item["labels"] for item in batch], -100)}

    # -- generation ---------------------------------------------------------------------------------------------
    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        """Length-sorted batches; the encoder runs once per batch, then :func:`decode_loop` steps the decoder."""
        torch.manual_seed(decoding.seed)
        model, tok = self.model, self.tokenizer
        device = next(model.parameters()).device
        sources = [self.source_ids(example, decoding.max_prompt_tokens) for example in examples]
        out: list[str] = [""] * len(examples)
        self.generated_tokens = 0
        model.eval()
        with torch.inference_mode():
            for batch in progress_bar(length_sorted_batches([len(s) for s in sources], decoding.batch_size), progress,
                                   "generate"):
                rows = [sources[i] for i in batch]
                state = model.encode(_pad(rows, tok.pad_token_id).to(device),
                                     _pad([[1] * len(r) for r in rows], 0).to(device))
                first = torch.full((len(batch), 1), model.start_id, dtype=torch.long, device=device)
                for index, tokens in zip(batch, decode_loop(model.step, state, first, decoding, tok.eos_token_id)):
                    self.generated_tokens += len(tokens)
                    out[index] = clean(tok.decode(tokens, skip_special_tokens=True))
        return out
