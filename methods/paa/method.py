"""Training and generation for the dual-encoder decoders of :mod:`pdg_eval_methods.paa.model` (PAA and Attention-Routing).

Inputs as in PAA's code (``hqsiswiliam/persona-adaptive-attention@2539c5c:dataset/dataset.py``): the persona encoder reads
``P: <persona sentences>``; the context encoder reads the last ``max_context_turns`` (9) turns with role markers
``Q:`` (partner) and ``R:`` (self); the decoder reads persona tokens + [BOS] + response + [EOS]
(``add_persona_to_decoder``; Listing 1 line 9) with the loss on the response and [EOS] only (Listing 1 line 29).
GPT-2's end-of-text token serves as [BOS], [EOS] and the encoders' first token.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pdg_eval.errors import ConfigError
from pdg_eval.records import PARTNER, speaker_roles

from pdg_eval_methods.common.backbones import load_backbone, saved_tokenizer
from pdg_eval_methods.common.config import DecodingConfig, merge
from pdg_eval_methods.common.data import Example, sample_distractors
from pdg_eval_methods.common.generation import generate_causal_lm
from pdg_eval_methods.common.method import Method, register
from pdg_eval_methods.common.training import pad_batch

from .model import DualAttentionConfig, DualAttentionLM, MaskCounter

DUAL_CONFIG = "dual_attention.json"
LM_FOLDER = "lm"


@dataclass
class DualAttentionOptions:
    fusion: str = "paa"
    alpha: float = 0.2
    tau_numerator: str = "context"
    encoder_layers: int = 4
    encoder_heads: int = 4
    shared_cross_attention: bool = False
    dropout: float = 0.1
    persona_in_decoder: bool = True
    objective: str = "lm"  # lm | candidates (PAA's Hits@1 fine-tuning: gold vs sampled distractors, Eq. 9)
    distractors: int = 2  # candidates objective: distractors sampled per turn (PAA's paa_double_heads.yml)
    max_context_turns: int = 9
    max_persona_tokens: int = 128
    max_context_tokens: int = 256
    punctuation_spacing: bool = False  # True: the authors' code's " . " " , " " ? " in every text (see spaced())
    mask_rates: bool = True  # fusion paa: count the open masks in training and (teacher-forced) on the generations

    def model_config(self) -> DualAttentionConfig:
        return DualAttentionConfig(fusion=self.fusion, encoder_layers=self.encoder_layers,
                                   encoder_heads=self.encoder_heads, shared_cross_attention=self.shared_cross_attention,
                                   tau_numerator=self.tau_numerator, alpha=self.alpha, dropout=self.dropout)


def spaced(text: str) -> str:
    """The authors' ``preprocess_text`` (dataset/dataset_helper.py@2539c5c): ``.``, ``,`` and ``?`` set apart by
    spaces, runs of spaces collapsed."""
    for mark in ".,?":
        text = text.replace(mark, f" {mark} ")
    return re.sub(" +", " ", text).strip()


class DualAttentionMethod(Method):
    """A causal-LM backbone wrapped by :class:`DualAttentionLM` with the configured fusion."""

    Options = DualAttentionOptions
    generation_options = ("mask_rates",)
    #: the paper's Implementation Details: Adam (no weight decay), lr 8e-6, batch 32, grad clip 0.1, 30 epochs;
    #: greedy decoding, at most 64 new tokens, as the authors' code (run_test_decoding.py)
    config_defaults = {"training": {"learning_rate": 8e-6, "batch_size": 32, "epochs": 30, "optimizer": "adamw_torch",
                                    "weight_decay": 0.0, "max_grad_norm": 0.1, "lr_scheduler": "constant"},
                       "decoding": {"strategy": "greedy", "max_new_tokens": 64}}

    def build(self, checkpoint: Path | None = None) -> None:
        import torch
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoModelForCausalLM

        config = self.options.model_config()
        if checkpoint is None:
            backbone = load_backbone(self.config.backbone, seed=self.config.seed,
                                     overrides=self.config.backbone_overrides)
            lm, self.tokenizer, self.backbone_info = backbone.model, backbone.tokenizer, backbone.describe()
        else:
            saved = json.loads((Path(checkpoint) / DUAL_CONFIG).read_text("utf-8"))
            if saved != dataclasses.asdict(config):
                raise ConfigError(f"{checkpoint} was trained with {saved}, not {dataclasses.asdict(config)}")
            lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(Path(checkpoint) / LM_FOLDER))
            self.tokenizer = saved_tokenizer(checkpoint)
        torch.manual_seed(self.config.seed)
        self.model = DualAttentionLM(lm, config, len(self.tokenizer), self.tokenizer.pad_token_id,
                                     max_positions=max(512, self.options.max_persona_tokens,
                                                       self.options.max_context_tokens))
        if checkpoint is not None:
            load_model(self.model, str(Path(checkpoint) / "model.safetensors"))

    def save(self, folder: str | Path) -> None:
        """The harness' save (safetensors weights, tokenizer) plus the wrapped LM's config and the fusion's."""
        super().save(folder)
        self.model.lm.config.save_pretrained(Path(folder) / LM_FOLDER)
        (Path(folder) / DUAL_CONFIG).write_text(json.dumps(dataclasses.asdict(self.model.config), indent=1), "utf-8")

    # -- how often PAA's masks open ------------------------------------------------------------------------------
    @property
    def counts_masks(self) -> bool:
        return self.options.fusion == "paa" and self.options.mask_rates

    def fit(self, examples: Sequence[Example], out: Path, resume: bool = False, progress: bool = False,
            dev: Sequence[Example] = ()):
        """The harness' training; with ``mask_rates`` the open-mask shares of its forward passes go into the run
        record (``method_notes.mask_rates.training``; after ``--resume``, of the resumed part only)."""
        counter = MaskCounter(len(self.model.fusions), training=True) if self.counts_masks else None
        self.model.mask_counter = counter
        try:
            summary = super().fit(examples, out, resume=resume, progress=progress, dev=dev)
        finally:
            self.model.mask_counter = None
        if counter is not None:
            self.notes["mask_rates"] = {"training": counter.report() | {"resumed": resume}}
        return summary

    def mask_rates(self, examples: Sequence[Example], responses: Sequence[str], progress: bool = False
                   ) -> dict[str, Any]:
        """The open-mask shares of a teacher-forced pass over the generated responses: the masks of cached greedy
        generation are those of teacher forcing on its output (tested), so this counts what generation used."""
        import torch

        from pdg_eval_methods.common.generation import progress_bar

        counter = MaskCounter(len(self.model.fusions), training=False)
        device, size = next(self.model.parameters()).device, self.config.decoding.batch_size
        self.model.eval()
        self.model.mask_counter = counter
        try:
            with torch.inference_mode():
                for start in progress_bar(list(range(0, len(examples), size)), progress, "mask rates"):
                    rows = [self.sequences(e, [r], [False])[0]
                            for e, r in zip(examples[start:start + size], responses[start:start + size])]
                    self.model(**{k: v.to(device) for k, v in self.collate(rows).items()})
        finally:
            self.model.mask_counter = None
        return counter.report()

    def generation_report(self, examples: Sequence[Example], responses: Sequence[str],
                          record_meta: Sequence[dict[str, Any]] | None) -> None:
        if self.counts_masks:
            self.notes["mask_rates"] = {"generation": self.mask_rates(examples, responses)}

    # -- inputs -------------------------------------------------------------------------------------------------
    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def text(self, text: str) -> str:
        return spaced(text) if self.options.punctuation_spacing else text

    def persona_ids(self, example: Example) -> list[int]:
        ids = self.ids(self.text("P: " + " ".join(s.strip() for s in example.persona))) if example.persona else []
        return [self.tokenizer.eos_token_id] + ids[:self.options.max_persona_tokens - 1]

    def context_ids(self, example: Example) -> list[int]:
        turns = example.context[-self.options.max_context_turns:]
        lines = [f"{'Q' if role == PARTNER else 'R'}: {self.text(turn)}"
                 for role, turn in zip(speaker_roles(len(turns)), turns)]
        ids = self.ids("\n".join(lines))
        return [self.tokenizer.eos_token_id] + ids[-(self.options.max_context_tokens - 1):]

    def decoder_prompt(self, example: Example, persona_ids: list[int] | None = None) -> list[int]:
        """Persona tokens (PAA's ``add_persona_to_decoder``) then [BOS]; ``persona_ids`` if already tokenised."""
        if not self.options.persona_in_decoder:
            return [self.tokenizer.eos_token_id]
        persona = self.persona_ids(example) if persona_ids is None else persona_ids
        return persona[1:] + [self.tokenizer.eos_token_id]

    def sequences(self, example: Example, responses: Sequence[str], train_lm: Sequence[bool]) -> list[dict[str, Any]]:
        """Decoder inputs persona + [BOS] + response + [EOS] (LM labels on the response where ``train_lm``) with the
        encoders' inputs, which are tokenised once for all the responses of ``example``."""
        persona, context = self.persona_ids(example), self.context_ids(example)
        prompt = self.decoder_prompt(example, persona)
        rows = []
        for response, lm in zip(responses, train_lm, strict=True):
            target = self.ids(" " + self.text(response.strip()))[:self.config.training.max_length - len(prompt) - 1]
            target = target + [self.tokenizer.eos_token_id]
            labels = [-100] * len(prompt) + (target if lm else [-100] * len(target))
            rows.append({"input_ids": prompt + target, "labels": labels, "persona_ids": persona, "context_ids": context})
        return rows

    def training_examples(self, examples: Sequence[Example]) -> Sequence[Example]:
        """For the candidates objective without ranking candidates in the data (e.g. the RCDG train sample), the
        distractors are drawn from the other training responses, as ConvAI2's candidates are (other dialogues'
        utterances)."""
        self.response_pool = sorted({e.response for e in examples})
        return examples

    def features(self, example: Example) -> list[dict[str, Any]]:
        if self.options.objective == "lm":
            return self.sequences(example, [example.response], [True])
        if self.options.objective != "candidates":
            raise ConfigError(f"model.objective must be lm or candidates; got {self.options.objective!r}")
        chosen = sample_distractors(example, getattr(self, "response_pool", ()), self.options.distractors,
                                    self.config.seed)
        rows = self.sequences(example, [example.response, *chosen], [True] + [False] * len(chosen))
        return [row | {"candidate_labels": int(k == 0)} for k, row in enumerate(rows)]

    def score_candidates(self, examples: Sequence[Example], progress: bool = False) -> list[list[float]]:
        """The Hits@1 head's logit for every ranking candidate of every example (``candidate_scores``): one forward
        pass per example, whose candidates share one encoding of its persona and context."""
        import torch

        from pdg_eval_methods.common.generation import progress_bar

        device = next(self.model.parameters()).device
        scores: list[list[float]] = []
        self.model.eval()
        with torch.inference_mode():
            for example in progress_bar(list(examples), progress, "candidates", unit=" turn"):
                if not example.candidates:
                    scores.append([])
                    continue
                rows = self.sequences(example, example.candidates, [False] * len(example.candidates))  # no LM loss
                batch = (pad_batch([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows],
                                   self.tokenizer.pad_token_id)
                         | self._encoder_batch([rows[0]["persona_ids"]], "persona")
                         | self._encoder_batch([rows[0]["context_ids"]], "context"))
                batch["candidate_labels"] = torch.zeros(len(rows))
                out = self.model(**{k: v.to(device) for k, v in batch.items()})
                scores.append(out["candidate_logits"].tolist())
        return scores

    def _encoder_batch(self, rows: Sequence[list[int]], name: str) -> dict[str, Any]:
        padded = pad_batch([{"input_ids": r} for r in rows], self.tokenizer.pad_token_id)
        return {f"{name}_ids": padded["input_ids"], f"{name}_mask": padded["attention_mask"]}

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        decoder = pad_batch([{"input_ids": b["input_ids"], "labels": b["labels"]} for b in batch],
                            self.tokenizer.pad_token_id)
        out = (decoder | self._encoder_batch([b["persona_ids"] for b in batch], "persona")
               | self._encoder_batch([b["context_ids"] for b in batch], "context"))
        if "candidate_labels" in batch[0]:
            out["candidate_labels"] = torch.tensor([b["candidate_labels"] for b in batch])
        return out

    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        device = next(self.model.parameters()).device
        personas = [self.persona_ids(e) for e in examples]
        contexts = [self.context_ids(e) for e in examples]

        def encoder_inputs(batch: list[int]) -> dict[str, Any]:
            inputs = (self._encoder_batch([personas[i] for i in batch], "persona")
                      | self._encoder_batch([contexts[i] for i in batch], "context"))
            return {key: value.to(device) for key, value in inputs.items()}

        prompts = [self.decoder_prompt(e, persona) for e, persona in zip(examples, personas)]
        texts, self.generated_tokens = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress,
                                                          extra=encoder_inputs)
        return texts


@register("paa")
class PAA(DualAttentionMethod):
    """PAA with the paper's defaults: fusion ``paa`` (Eq. 4–7), τ with the context numerator (Eq. 6), persona
    prompt in the decoder; ``model.fusion`` selects the appendix variants (dual, skipped, context, direct_sum, param)
    or ``routing``."""

    description = "PAA (AAAI 2023): persona/context encoders, dual cross-attention, persona-adaptive fusion + variants"
    #: + the checkpoint selection of the paper and the authors' code: the epoch with the best validation perplexity,
    #: here on 5 % of the training dialogues held out (the authors select on ConvAI2 valid, which they also report on)
    config_defaults = merge(DualAttentionMethod.config_defaults,
                            {"training": {"eval_strategy": "epoch", "select_best": True}, "data": {"dev_fraction": 0.05}})
