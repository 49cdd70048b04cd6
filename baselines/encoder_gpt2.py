"""``encoder_gpt2`` — PAA's Encoder-GPT2 baseline (PAA §4.2, Table 1: 182M parameters; PAA repo
``transformer-bert2gpt.yml``): a randomly initialised BERT-style encoder (4 layers, 4 heads) over persona + context,
and a GPT-2 decoder that attends to it through cross-attention in every block.

Built as a transformers ``EncoderDecoderModel`` (``BertModel`` encoder + ``GPT2LMHeadModel`` with
``add_cross_attention``), so training, saving and cached generation are transformers' own. The decoder starts from the
backbone (hub ``gpt2`` online, ``random:gpt2`` offline); its cross-attention layers are new. Both sides share GPT-2's
vocabulary (the encoder has its own embedding table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.backbones import load_backbone, saved_tokenizer
from pdg_eval_methods.common.config import DecodingConfig
from pdg_eval_methods.common.data import Example
from pdg_eval_methods.common.generation import generate_seq2seq
from pdg_eval_methods.common.method import Method, register
from pdg_eval_methods.common.prompts import Formatter
from pdg_eval_methods.common.training import pad_batch


@dataclass
class EncoderGPT2Options:
    encoder_layers: int = 4
    encoder_heads: int = 4
    encoder_hidden: int | None = None  # None: the decoder's width (GPT-2 small: 768)
    with_persona: bool = True
    max_source_tokens: int = 512


@register("encoder_gpt2")
class EncoderGPT2(Method):
    description = "PAA's Encoder-GPT2: random 4-layer BERT encoder over persona+context, GPT-2 decoder with cross-attention"
    Options = EncoderGPT2Options
    shift_labels = False  # EncoderDecoderModel's logits are aligned with its labels

    def build(self, checkpoint: Path | None = None) -> None:
        import torch
        from transformers import BertConfig, BertModel, EncoderDecoderModel, GPT2LMHeadModel

        if checkpoint is not None:
            self.model = EncoderDecoderModel.from_pretrained(checkpoint)
            self.tokenizer = saved_tokenizer(checkpoint)
        else:
            backbone = load_backbone(self.config.backbone, seed=self.config.seed,
                                     overrides=self.config.backbone_overrides)
            if backbone.model.config.model_type != "gpt2":
                raise ConfigError(f"encoder_gpt2 needs a GPT-2 backbone (gpt2, random:gpt2, random:tiny-gpt2); "
                                  f"{self.config.backbone} is {backbone.model.config.model_type}")
            self.tokenizer = backbone.tokenizer
            config = backbone.model.config
            config.add_cross_attention, config.is_decoder = True, True
            torch.manual_seed(self.config.seed)
            decoder = GPT2LMHeadModel(config)
            missing = decoder.load_state_dict(backbone.model.state_dict(), strict=False).missing_keys
            if any("crossattention" not in key and "ln_cross_attn" not in key for key in missing):
                raise ConfigError(f"decoder weights missing: {missing[:3]}")
            width = self.options.encoder_hidden or config.n_embd
            encoder = BertModel(BertConfig(vocab_size=len(self.tokenizer), hidden_size=width,
                                           num_hidden_layers=self.options.encoder_layers,
                                           num_attention_heads=self.options.encoder_heads,
                                           intermediate_size=4 * width,
                                           max_position_embeddings=max(512, self.options.max_source_tokens),
                                           pad_token_id=self.tokenizer.pad_token_id))
            self.model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
            self.backbone_info = backbone.describe() | {"encoder": f"random BERT {self.options.encoder_layers}L/"
                                                                   f"{self.options.encoder_heads}H/{width}"}
        eos = self.tokenizer.eos_token_id
        self.model.config.decoder_start_token_id = eos
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.config.eos_token_id = eos
        self.formatter = Formatter(self.tokenizer, "plain", self.options.with_persona)

    def source_ids(self, example: Example) -> list[int]:
        return self.formatter.prompt_ids(example.persona, example.context, self.options.max_source_tokens)

    def features(self, example: Example) -> list[dict[str, Any]]:
        target = self.formatter.ids(" " + example.response.strip())[:self.config.training.max_length - 1]
        return [{"input_ids": self.source_ids(example), "labels": target + [self.tokenizer.eos_token_id]}]

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Encoder ids right-padded with a mask; labels padded with −100 (the model shifts them into decoder
        inputs after the start token)."""
        sources = pad_batch([{"input_ids": b["input_ids"]} for b in batch], self.tokenizer.pad_token_id)
        labels = pad_batch([{"input_ids": b["labels"], "labels": b["labels"]} for b in batch], -100)["labels"]
        return {"input_ids": sources["input_ids"], "attention_mask": sources["attention_mask"], "labels": labels}

    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        sources = [self.source_ids(example) for example in examples]
        texts, self.generated_tokens = generate_seq2seq(self.model, self.tokenizer, sources, decoding,
                                                        self.tokenizer.eos_token_id, progress)
        return texts
