"""MORPHEUS on the shared harness: ``pdg-eval run morpheus train|generate``.

* ``model.stage: role_awareness`` (stage 1, Eq. 2): the response NLL after the prefix of the encoded persona segments.
* ``model.stage: joint`` (stages 2 and 3; ``--init-from`` a stage-1 run): before the first step the codebook is
  initialised from every distinct training segment encoded by the stage-1 model (``model.init``: ``em`` — Eq. 5–7 —,
  ``sequential``, ``mean`` or ``random``), then L_G + L_V + L_D + L_C (:mod:`.model`).
* ``generate`` never reads the persona: codes predicted from the history, the prefix from their code vectors, nucleus
  sampling after it; each record's ``meta.method.codes`` holds the predicted codes.

The input is the profile-free ``plain`` dialogue text (pdg-eval's ``Partner:`` / ``You:`` lines; the released code's
``<P1>``/``<P2>`` tags play the same part); the persona reaches the LM only through the prefix, and through the text
for the ``role_text_ratio`` share of training turns (the released code's role awareness, 0.1; the paper: 0).
``model.peft``: the LM is frozen and only codebook, prefix network and predictor train (§5.3). Persona segments:
the persona's sentences split at "." / "。", cycled or cut to ``slots`` (M = 5, as the code).
Defaults are the paper's (batch 16, lr 1e-4, AdamW with a 5 % linear warm-up, N = 100, τ 0.5, β 0.05, CE code loss,
no straight-through); the released code's settings are options (``contrastive: released``, ``code_loss: focal``,
``ste: released``, ``beta: 0``, ``role_text_ratio: 0.1``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.backbones import load_causal_lm, saved_tokenizer
from pdg_eval_methods.common.config import DecodingConfig, check_choices
from pdg_eval_methods.common.data import Example, split_persona
from pdg_eval_methods.common.generation import generate_with_prefix, last_prompt_states
from pdg_eval_methods.common.method import Method, read_run_file, register
from pdg_eval_methods.common.prompts import Formatter
from pdg_eval_methods.common.training import pad_batch

from . import codebook as cb
from .model import CODE_LOSSES, CONTRASTIVE, STAGES, Morpheus, MorpheusSettings

WEIGHTS = "model.safetensors"


@dataclass
class MorpheusOptions:
    stage: str = "role_awareness"  # role_awareness (stage 1) | joint (needs --init-from a stage-1 run)
    codebook_size: int = 100
    slots: int = 5
    init: str = "em"  # em | sequential | mean | random
    beta: float = cb.BETA
    tau: float = cb.TAU
    contrastive: str = "paper"
    code_loss: str = "ce"
    ste: str = "none"
    loss_weights: dict[str, float] = field(default_factory=lambda: {"G": 1.0, "V": 1.0, "D": 1.0, "C": 1.0})
    role_text_ratio: float = 0.0  # share of training turns with the persona text before the history (code: 0.1)
    peft: bool = False  # freeze the LM (§5.3)
    role_awareness: bool = True  # false: the joint stage starts from the backbone (the "w/o RA" ablation)
    segment_tokens: int = 48

    def check(self) -> None:
        check_choices("model", (("stage", self.stage, STAGES), ("init", self.init, cb.INITS),
                                ("contrastive", self.contrastive, CONTRASTIVE), ("code_loss", self.code_loss, CODE_LOSSES),
                                ("ste", self.ste, cb.STE_MODES)))
        if not 0.0 <= self.role_text_ratio <= 1.0:
            raise ConfigError(f"model.role_text_ratio must be in [0, 1]; got {self.role_text_ratio}")

    def settings(self) -> MorpheusSettings:
        return MorpheusSettings(self.codebook_size, self.slots, 0.1, self.beta, self.tau, self.contrastive,
                                self.code_loss, self.ste, dict(self.loss_weights))


def persona_segments(persona: Sequence[str], language: str, slots: int) -> list[str]:
    """M segments: the persona's sentences split at "." / "。", cycled when fewer, cut when more."""
    pieces = [p for sentence in persona for p in split_persona(sentence, language)] or [""]
    return [pieces[i % len(pieces)] for i in range(slots)]


@register("morpheus")
class MORPHEUS(Method):
    description = "MORPHEUS (EMNLP 2024): persona codebook, role awareness then joint training, persona-free generation"
    Options = MorpheusOptions
    config_defaults = {
        "training": {"learning_rate": 1e-4, "batch_size": 16, "gradient_accumulation": 1, "optimizer": "adamw_torch",
                     "warmup_ratio": 0.05, "lr_scheduler": "linear", "weight_decay": 0.0, "max_length": 512},
        "decoding": {"strategy": "sample", "top_p": 0.95, "top_k": 50, "max_new_tokens": 128, "max_prompt_tokens": 512},
    }

    def __init__(self, config) -> None:
        super().__init__(config)
        self.options.check()

    # -- model --------------------------------------------------------------------------------------------------
    def build(self, checkpoint: Path | None = None) -> None:
        lm, tokenizer, info = load_causal_lm(self.config.backbone, None, self.config.seed, self.config.backbone_overrides)
        import torch

        torch.manual_seed(self.config.seed)
        self.model = Morpheus(lm, self.options.settings(), self.options.stage)
        if checkpoint is not None:
            self._load(Path(checkpoint))
            tokenizer = saved_tokenizer(checkpoint)
            info = info | {"source": str(checkpoint)}
        if self.options.peft:
            for parameter in self.model.lm.parameters():
                parameter.requires_grad_(False)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        self.notes["parameters"] = {"trainable": trainable, "total": total, "trainable_share": trainable / total}
        self.tokenizer, self.backbone_info = tokenizer, info
        self.formatter = Formatter(tokenizer, "plain", with_persona=False)

    def _load(self, checkpoint: Path) -> None:
        """The weights of a trained run's model folder; a stage-1 run's codebook and predictor (never trained there)
        are left out when this run has another codebook size (Fig. 3's N sweep starts every size from one stage-1
        run)."""
        from safetensors.torch import load_file

        state = load_file(str(checkpoint / WEIGHTS))
        current = self.model.state_dict()
        resized = [k for k, v in state.items() if k in current and tuple(v.shape) != tuple(current[k].shape)]
        if resized:
            run = checkpoint.parent / "run.json"
            stage1 = run.is_file() and read_run_file(checkpoint.parent)["config"]["model"].get(
                "stage", "role_awareness") == "role_awareness"
            untrained = all(k == "codebook" or k.startswith("predictor.") for k in resized)
            if not (stage1 and untrained):
                raise ConfigError(f"{checkpoint} holds a codebook of {state['codebook'].shape[0]} codes, not "
                                  f"{self.model.codebook.shape[0]}: generate with its model.codebook_size")
            for key in resized:  # stage 1 trains neither the codebook nor the predictor
                state[key] = current[key].clone()
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        names: dict[int, set[str]] = {}  # tied weights (embedding = output layer) are saved under one name
        for name, parameter in self.model.named_parameters(remove_duplicate=False):
            names.setdefault(id(parameter), set()).add(name)
        tied = {name for group in names.values() if group & state.keys() for name in group}
        if unexpected or set(missing) - tied:
            raise ConfigError(f"{checkpoint}: not a MORPHEUS model folder (missing {sorted(set(missing) - tied)[:3]}, "
                              f"unexpected {sorted(unexpected)[:3]})")

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_model

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.model, str(folder / WEIGHTS))
        self.tokenizer.save_pretrained(folder)

    # -- training -----------------------------------------------------------------------------------------------
    def segment_ids(self, example: Example) -> list[list[int]]:
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        return [self.formatter.ids(s)[:self.options.segment_tokens - len(eos)] + eos
                for s in persona_segments(example.persona, example.language, self.options.slots)]

    def features(self, example: Example) -> list[dict[str, Any]]:
        max_length = self.config.training.max_length
        with_text = random.Random(f"{self.config.seed}:{example.id}").random() < self.options.role_text_ratio
        formatter = Formatter(self.tokenizer, "plain", with_persona=with_text)
        sequence = formatter.single_turn(example.persona, example.context, example.response, max_length)
        return [sequence | {"segments": self.segment_ids(example),
                            "history_ids": self.formatter.prompt_ids((), example.context, max_length)}]

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        pad = self.tokenizer.pad_token_id
        out = pad_batch([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in batch], pad)
        history = pad_batch([{"input_ids": f["history_ids"]} for f in batch], pad, keys=("input_ids",))
        width = max(len(s) for f in batch for s in f["segments"])
        segments = [[s + [pad] * (width - len(s)) for s in f["segments"]] for f in batch]
        masks = [[[1] * len(s) + [0] * (width - len(s)) for s in f["segments"]] for f in batch]
        return out | {"history_ids": history["input_ids"], "history_mask": history["attention_mask"],
                      "segment_ids": torch.tensor(segments), "segment_mask": torch.tensor(masks)}

    def fit(self, examples: Sequence[Example], out: Path, resume: bool = False, progress: bool = False,
            dev: Sequence[Example] = ()):
        if self.options.stage == "joint":
            if self.options.role_awareness:
                self._check_stage1()
            elif self.init_from is not None:
                raise ConfigError("model.role_awareness false trains the joint stage from the backbone: no --init-from")
            if not resume:  # a resumed run restores the trained codebook from its checkpoint
                self.initialise_codebook(examples)
        return super().fit(examples, out, resume=resume, progress=progress, dev=dev)

    def _check_stage1(self) -> None:
        if self.init_from is None:
            raise ConfigError("model.stage joint starts from the role-awareness model: give --init-from STAGE1_RUN")
        if read_run_file(self.init_from)["config"]["model"].get("stage", "role_awareness") != "role_awareness":
            raise ConfigError(f"--init-from {self.init_from} is not a MORPHEUS role-awareness run")

    def encode_training_segments(self, examples: Sequence[Example]):
        """p for every distinct training segment, encoded by the current model: [S, d]."""
        import torch

        segments = list(dict.fromkeys(tuple(ids) for e in examples for ids in self.segment_ids(e)))
        pad = self.tokenizer.pad_token_id
        vectors = []
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(segments), 64):
                chunk = [list(s) for s in segments[start:start + 64]]
                batch = pad_batch([{"input_ids": s} for s in chunk], pad, keys=("input_ids",))
                vectors.append(self.model.encode_segments(batch["input_ids"][:, None], batch["attention_mask"][:, None])[:, 0])
        return torch.cat(vectors)

    def starting_codebook(self, points) -> tuple[Any, dict[str, Any]]:
        """The codebook the joint stage starts from (``model.init`` over ``points``) and a note on how it was built."""
        note: dict[str, Any] = {"method": self.options.init, "segments": len(points), "codes": self.options.codebook_size}
        if self.options.init == "em":
            mixture = cb.em_mixture(points, self.options.codebook_size, self.config.seed)
            return mixture.means, note | {"iterations": mixture.iterations, "converged": mixture.converged}
        return cb.initial_codebook(points, self.options.codebook_size, self.options.init, self.config.seed), note

    def initialise_codebook(self, examples: Sequence[Example]) -> None:
        """The codebook from every distinct training segment encoded by the current (stage-1) model."""
        import torch

        codes, note = self.starting_codebook(self.encode_training_segments(examples))
        with torch.no_grad():
            self.model.codebook.copy_(codes.to(self.model.codebook.dtype))
        self.model.train()
        self.notes["codebook_init"] = note

    def code_usage(self, examples: Sequence[Example]) -> dict[str, Any]:
        """Eq. 8 on every distinct training segment: how many codes they use, the most used ones, and how far the
        segments lie from their nearest code. A role-awareness model is measured against the codebook its joint
        stage would start from."""
        from collections import Counter

        points = self.encode_training_segments(examples)
        codebook = self.model.codebook.detach()
        if self.options.stage == "role_awareness":
            codebook = self.starting_codebook(points)[0].to(points.dtype)
        nearest = cb.nearest_codes(points, codebook)
        used = Counter(nearest.tolist())
        return {"stage": self.options.stage, "segments": len(points), "codes": len(codebook),
                "codes_used": len(used), "most_used": used.most_common(3),
                "mean_distance_to_nearest": float((points - codebook[nearest]).norm(dim=-1).mean()),
                "mean_encoding_norm": float(points.norm(dim=-1).mean()),
                "mean_code_norm": float(codebook.norm(dim=-1).mean())}

    # -- inference ----------------------------------------------------------------------------------------------
    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        """Persona-free: only the context is read. The codes are predicted from every history's last state first
        (the turns of a dialogue share their history's forward pass), then each reply is sampled after its prefix."""
        prompts = [self.formatter.prompt_ids((), e.context, decoding.max_prompt_tokens) for e in examples]
        self.model.eval()
        states = last_prompt_states(self.model.lm.base_model, prompts, self.tokenizer.pad_token_id,
                                    decoding.batch_size, progress, desc="predict codes")
        codes = self.model.predict_codes(states)
        texts, self.generated_tokens = generate_with_prefix(self.model.lm, self.tokenizer, prompts,
                                                            lambda indices: self.model.code_prefix(codes[indices]),
                                                            decoding, progress)
        self.record_meta = [{"codes": row} for row in codes.tolist()]
        return texts

    def nll_feature(self, example: Example) -> dict[str, Any]:
        raise ConfigError("morpheus: --with-nll is not available (the gold's NLL depends on the predicted prefix)")

    def reference_nll(self, examples, batch_size: int = 16, progress: bool = False):
        raise ConfigError("morpheus: --with-nll is not available (the gold's NLL depends on the predicted prefix)")

