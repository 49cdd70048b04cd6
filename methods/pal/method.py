"""PAL on the shared harness: ``pdg-eval run pal train|generate``.

* ``model.stage: persona`` (stage 1, persona-aware learning): every training turn gives two sequences, *select*
  (target: the turn's persona label line) and *generate* (the gold reply after the prompt that highlights that line),
  shuffled together; cross-entropy on the target tokens + end of sequence.
* ``model.stage: align`` (stage 2, persona alignment; ``--init-from`` a stage-1 run): sigmoid DPO on the dialogues
  that stage 1 held out (``dpo_fraction``, ``dpo_seed``); prompt = the generate prompt with the label line, chosen =
  gold, rejected = the stage-1 model's reply to the history-only prompt (beam 3, 40 new tokens; cached in the run
  folder as ``negatives.jsonl`` with its provenance); reference = the frozen stage-1 model, dropout off. The
  ``align_training`` mapping is applied over ``training`` for this stage (the release's DPO settings by default).
* ``generate``: ``strategy`` ``select_then_generate`` (pass 1 selects, pass 2 generates with the *parsed selection*
  highlighted), ``direct`` (no persona highlighted) or ``gold`` (the label line highlighted: an oracle). Each
  record's ``meta.method`` holds the selection text, the parsed index and the highlighted line.

Hyper-parameters default to the release's GPT-2 path (kylokano/PAL@cc8b8b5: full fine-tuning, Adam lr 2e-5, 10
epochs, batch 32 × 4, 100 warm-up steps then constant, clip 10, seed 42; DPO lr 1e-6, 3 epochs, β 0.1; beam 3,
40 new tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.backbones import load_causal_lm
from pdg_eval_methods.common.config import DecodingConfig, check_choices, training_over
from pdg_eval_methods.common.data import Example, fingerprint, split_by_dialogue
from pdg_eval_methods.common.generation import generate_causal_lm
from pdg_eval_methods.common.method import Method, read_run_file, register, write_json
from pdg_eval_methods.common.preference import preference_features
from pdg_eval_methods.common.prompts import Formatter, fit_history, loss_on_target
from pdg_eval_methods.common.provenance import decoding_signature

from . import labels as pal_labels
from .prompts import Instruction, generate_prompt, history_only_prompt, persona_line, select_prompt

Build = Callable[[Sequence[str]], Instruction]  # history -> the prompt over it
STAGES = ("persona", "align")
STRATEGIES = ("select_then_generate", "direct", "gold")
NEGATIVES = "negatives.jsonl"
NEGATIVES_PROVENANCE = "negatives.json"
#: the release's DPO settings (GPT-2 path), applied over ``training`` when ``model.stage`` is ``align``
ALIGN_TRAINING = {"objective": "preference", "learning_rate": 1e-6, "epochs": 3, "batch_size": 32,
                  "gradient_accumulation": 4, "warmup_steps": 100, "lr_scheduler": "constant_with_warmup",
                  "preference": {"loss": "dpo", "beta": 0.1}}


@dataclass
class PALOptions:
    format: str = "chat"  # chat (one user message, the assistant turn opened with the speaker tag) | plain (GPT-2)
    stage: str = "persona"  # persona (stage 1) | align (stage 2: DPO; needs --init-from a stage-1 run)
    label_method: str = "nli"  # nli | cosine | overlap (Chinese: overlap)
    label_model: str | None = None  # nli: the shipped NLI scorer; cosine: all-MiniLM-L6-v2
    label_threshold: float | None = None  # None: labels.THRESHOLDS[label_method]
    dpo_fraction: float = 0.2  # training dialogues held out of stage 1 for stage 2
    dpo_seed: int = 13
    negative_beams: int = 3
    negative_max_new_tokens: int = 40
    strategy: str = "select_then_generate"  # select_then_generate | direct | gold
    align_training: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(ALIGN_TRAINING)))

    def check(self) -> None:
        check_choices("model", (("stage", self.stage, STAGES), ("strategy", self.strategy, STRATEGIES),
                                ("label_method", self.label_method, pal_labels.LABEL_METHODS)))
        if not 0.0 < self.dpo_fraction < 1.0:
            raise ConfigError(f"model.dpo_fraction must be in (0, 1); got {self.dpo_fraction}")


@register("pal")
class PAL(Method):
    description = "PAL (TACL 2025): persona selection + generation (stage 1), DPO persona alignment (stage 2)"
    Options = PALOptions
    generation_options = ("strategy",)
    config_defaults = {
        "training": {"learning_rate": 2e-5, "epochs": 10, "batch_size": 32, "gradient_accumulation": 4,
                     "warmup_steps": 100, "lr_scheduler": "constant_with_warmup", "max_grad_norm": 10.0,
                     "weight_decay": 0.0, "max_length": 512},
        "decoding": {"strategy": "beam", "num_beams": 3, "max_new_tokens": 40, "max_prompt_tokens": 512},
        "model": {"align_training": ALIGN_TRAINING},  # here, so that --set model.align_training.KEY=V merges into it
        "seed": 42,
    }

    def __init__(self, config) -> None:
        super().__init__(config)
        self.options.check()
        if self.options.stage == "align":
            config.training = training_over(config.training, self.options.align_training, "model.align_training")
            if config.training.objective != "preference":
                raise ConfigError("model.stage align trains with training.objective preference (DPO)")
        self.labels: dict[str, int] = {}  # example id -> persona label (−1: none)
        self.highlighted: dict[str, str] = {}  # example id -> the line generation highlighted

    # -- model --------------------------------------------------------------------------------------------------
    def build(self, checkpoint: Path | None = None) -> None:
        self.model, self.tokenizer, self.backbone_info = load_causal_lm(
            self.config.backbone, checkpoint, self.config.seed, self.config.backbone_overrides)
        self.formatter = Formatter(self.tokenizer, self.options.format)

    def fitted(self, build: Build, context: Sequence[str], targets: Sequence[str], max_tokens: int
               ) -> tuple[list[int], list[list[int]]]:
        """The prompt's ids and each target's (after the prompt), the history cut so that the prompt and the longest
        target fit ``max_tokens``: the oldest turns go two at a time (the speaker tags keep their parity), the persona
        and the instruction stay; with two turns left the caller cuts what is still too long."""
        def parts(history: list[str]) -> tuple[list[int], list[list[int]]]:
            instruction = build(history)
            if not targets:
                return self.formatter.ids(self.formatter.instruction(instruction.text, instruction.assistant_prefix)), []
            pieces = [self.formatter.instruction_parts(instruction.text, instruction.assistant_prefix, target)
                      for target in targets]
            return pieces[0][0], [target_ids for _, target_ids in pieces]

        return fit_history(parts, context, lambda built: len(built[0]) + max(map(len, built[1]), default=0)
                           <= max_tokens)

    def prompt_ids(self, build: Build, context: Sequence[str], max_tokens: int) -> list[int]:
        return self.fitted(build, context, (), max_tokens)[0][-max_tokens:]

    def sequence(self, build: Build, context: Sequence[str], target: str, max_length: int) -> dict[str, list[int]]:
        """Prompt + target, loss on the target (a training sequence)."""
        prompt, (target_ids,) = self.fitted(build, context, (target,), max_length)
        return loss_on_target(prompt, target_ids, max_length)

    # -- labels -------------------------------------------------------------------------------------------------
    def label(self, examples: Sequence[Example], progress: bool = False) -> dict[str, Any]:
        """Persona labels of ``examples`` into ``self.labels``; returns their statistics (for the run record)."""
        method = self.options.label_method
        todo = [e for e in examples if e.id not in self.labels]
        if method == "nli" and any(e.language != "en" for e in todo):
            raise ConfigError("model.label_method nli: the shipped NLI scorer is English; use overlap for Chinese")
        threshold = pal_labels.THRESHOLDS[method] if self.options.label_threshold is None else self.options.label_threshold
        if method == "overlap" or not todo:
            rows = [pal_labels.overlap_scores(e.persona, e.response, e.language) for e in todo]
        else:
            pairs = [(sentence, e.response) for e in todo for sentence in e.persona]
            if method == "nli":
                from pdg_eval.models.adapters import SHIPPED_NLI

                flat = pal_labels.nli_scores(pairs, self.options.label_model or SHIPPED_NLI, progress)
            else:
                from pdg_eval.models.runtime import default_sentence_encoder

                flat = pal_labels.cosine_scores(pairs, self.options.label_model or default_sentence_encoder())
            rows, start = [], 0
            for e in todo:
                rows.append(flat[start:start + len(e.persona)])
                start += len(e.persona)
        self.labels.update(zip((e.id for e in todo), pal_labels.persona_labels(rows, threshold)))
        statistics = pal_labels.label_statistics([self.labels[e.id] for e in examples], [len(e.persona) for e in examples])
        return {"method": method, "model": self.options.label_model, "threshold": threshold} | statistics

    def label_line(self, example: Example) -> str:
        return persona_line(example.persona, self.labels[example.id], example.language)

    # -- stage 1 ------------------------------------------------------------------------------------------------
    def features(self, example: Example) -> list[dict[str, Any]]:
        """The generate sequence (gold label line highlighted) and the select sequence of one turn."""
        max_length, e = self.config.training.max_length, example
        line = self.label_line(e)
        return [self.sequence(lambda h: generate_prompt(e.persona, h, line, e.language), e.context, e.response,
                              max_length),
                self.sequence(lambda h: select_prompt(e.persona, h, e.language), e.context, line, max_length)]

    def nll_feature(self, example: Example) -> dict[str, Any]:
        """The gold reply after the generate prompt that generation used (the selected line; else the label's)."""
        line = self.highlighted.get(example.id)
        if line is None:
            self.label([example])
            line = self.label_line(example)
        e = example
        return self.sequence(lambda h: generate_prompt(e.persona, h, line, e.language), e.context, e.response,
                             self.config.training.max_length)

    def fit(self, examples: Sequence[Example], out: Path, resume: bool = False, progress: bool = False,
            dev: Sequence[Example] = ()):
        """Stage 1 on the dialogues outside the DPO split, or stage 2 (DPO) on the DPO split; ``dev``: the gold
        perplexity during training is that of the generate sequences (label line highlighted)."""
        split = split_by_dialogue(examples, self.options.dpo_fraction, self.options.dpo_seed)
        self.notes["dpo_split"] = split.describe() | {"dialogues": list(split.dev_dialogues),
                                                      "stage1_examples": len(split.train),
                                                      "dpo_examples": len(split.dev)}
        if self.options.stage == "persona":
            chosen = split.train
        else:
            self._check_stage1(split.dev_dialogues)
            chosen = split.dev
        self.notes["labels"] = self.label(chosen, progress)
        if dev:
            self.label(dev, progress)
        return super().fit(chosen, out, resume=resume, progress=progress, dev=dev)

    def _check_stage1(self, dpo_dialogues: Sequence[str]) -> None:
        if self.init_from is None:
            raise ConfigError("model.stage align starts from the stage-1 model: give --init-from STAGE1_RUN")
        stage1 = read_run_file(self.init_from)
        notes = stage1.get("method_notes", {})
        if notes.get("dpo_split", {}).get("dialogues") is None or stage1["config"]["model"].get("stage", "persona") != "persona":
            raise ConfigError(f"--init-from {self.init_from} is not a PAL stage-1 run")
        if list(notes["dpo_split"]["dialogues"]) != list(dpo_dialogues):
            raise ConfigError(f"the DPO dialogues differ from those {self.init_from} held out of stage 1: train both "
                              "stages on the same data.train with the same model.dpo_fraction and model.dpo_seed")

    # -- stage 2 ------------------------------------------------------------------------------------------------
    def negative_decoding(self) -> DecodingConfig:
        return DecodingConfig(strategy="beam", num_beams=self.options.negative_beams,
                              max_new_tokens=self.options.negative_max_new_tokens,
                              batch_size=self.config.decoding.batch_size,
                              max_prompt_tokens=self.config.decoding.max_prompt_tokens, seed=self.config.seed)

    def negatives(self, examples: Sequence[Example], out: Path, progress: bool = False) -> list[str]:
        """The stage-1 model's replies to the history-only prompts, cached in ``out`` with their provenance (reused
        only when model, decoding and data are the same)."""
        decoding = self.negative_decoding()
        stage1 = read_run_file(self.init_from) if self.init_from is not None else {}
        provenance = {"stage1": {"folder": str(self.init_from), "git": stage1.get("git"),
                                 "finished": stage1.get("finished")},
                      "weights": self.backbone_info.get("weights"), "decoding": decoding_signature(decoding),
                      "format": self.options.format, "data": fingerprint(examples), "count": len(examples)}
        cache, stamp = Path(out) / NEGATIVES, Path(out) / NEGATIVES_PROVENANCE
        if cache.is_file() and stamp.is_file() and json.loads(stamp.read_text("utf-8")).get("provenance") == provenance:
            rows = [json.loads(line) for line in cache.read_text("utf-8").splitlines()]
            if [row["id"] for row in rows] == [e.id for e in examples]:
                return [row["rejected"] for row in rows]
        prompts = [self.prompt_ids(lambda h: history_only_prompt(h, e.language), e.context, decoding.max_prompt_tokens)
                   for e in examples]
        texts, _ = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress, desc="negatives")
        from pdg_eval.files import atomic_writer

        with atomic_writer(cache, parents=True) as handle:
            for example, text in zip(examples, texts):
                handle.write(json.dumps({"id": example.id, "rejected": text}, ensure_ascii=False) + "\n")
        write_json(stamp, {"provenance": provenance})
        return texts

    def preference_features(self, examples: Sequence[Example], out: Path, progress: bool = False
                            ) -> list[dict[str, Any]]:
        """One (prompt, chosen = gold, rejected = negative) pair per turn; a negative equal to the gold is dropped."""
        rejected = self.negatives(examples, out, progress)
        features, same = [], 0
        for example, negative in zip(examples, rejected):
            if negative.strip() == example.response.strip():
                same += 1
                continue
            e, line, max_length = example, self.label_line(example), self.config.training.max_length
            prompt_ids, completions = self.fitted(lambda h: generate_prompt(e.persona, h, line, e.language), e.context,
                                                  (e.response, negative), max_length)
            features.append(preference_features(prompt_ids, completions, max_length))
        self.notes["preference_pairs"] = {"pairs": len(features), "negative_equals_gold": same,
                                          "empty_negatives": sum(not t.strip() for t in rejected)}
        return features

    # -- inference ----------------------------------------------------------------------------------------------
    def select(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False
               ) -> tuple[list[str], list[int], int]:
        """Pass 1: the select prompts' generations, their parsed indices and the tokens generated."""
        prompts = [self.prompt_ids(lambda h: select_prompt(e.persona, h, e.language), e.context,
                                   decoding.max_prompt_tokens) for e in examples]
        texts, generated = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress, desc="select")
        return texts, [pal_labels.parse_selection(t, e.persona, e.language) for t, e in zip(texts, examples)], generated

    def selection_scores(self, examples: Sequence[Example], progress: bool = False) -> list[dict[str, list[float]]]:
        """How the select pass ranks every possible target of each example, whatever decoding then picks: the
        sequence log-probability (``logps``) and the probability of the first token (``first_token_p``) of "No
        personal description." (index 0) and of each persona line (index k + 1), after the select prompt."""
        import torch

        from pdg_eval_methods.common.generation import progress_bar
        from pdg_eval_methods.common.preference import collate_preference, sequence_logps

        rows, max_length = [], self.config.training.max_length
        device = next(self.model.parameters()).device
        self.model.eval()
        with torch.inference_mode():
            for e in progress_bar(list(examples), progress, "selection scores", unit=" turn"):
                targets = [persona_line(e.persona, k, e.language) for k in range(pal_labels.NO_LABEL, len(e.persona))]
                prompt, target_ids = self.fitted(lambda h: select_prompt(e.persona, h, e.language), e.context,
                                                 targets, max_length)
                batch = collate_preference([preference_features(prompt, target_ids, max_length)],
                                           self.tokenizer.pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    use_cache=False).logits
                logps, _ = sequence_logps(logits, batch["labels"])  # one row per target (one prompt)
                after_prompt = int((batch["labels"][0] != -100).nonzero()[0]) - 1  # the prompt's last position
                first = logits[0, after_prompt].float().softmax(-1)
                rows.append({"logps": logps.tolist(), "first_token_p": [float(first[t[0]]) for t in target_ids]})
        return rows

    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        strategy = self.options.strategy
        selections: list[str | None] = [None] * len(examples)
        generated = 0
        if strategy == "select_then_generate":
            selections, indices, generated = self.select(examples, decoding, progress)
        elif strategy == "gold":
            self.label(examples, progress)
            indices = [self.labels[e.id] for e in examples]
        else:
            indices = [pal_labels.NO_LABEL] * len(examples)
        lines = [persona_line(e.persona, k, e.language) for e, k in zip(examples, indices)]
        prompts = [self.prompt_ids(lambda h: generate_prompt(e.persona, h, line, e.language), e.context,
                                   decoding.max_prompt_tokens) for e, line in zip(examples, lines)]
        texts, more = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress, desc="generate")
        self.generated_tokens = generated + more
        self.highlighted.update((e.id, line) for e, line in zip(examples, lines))
        self.record_meta = [{"strategy": strategy, "selection": text, "persona_index": k, "highlighted": line}
                            for text, k, line in zip(selections, indices, lines)]
        return texts

    def generation_report(self, examples: Sequence[Example], responses: Sequence[str],
                          record_meta: Sequence[dict[str, Any]] | None) -> None:
        strategy = self.options.strategy
        if strategy == "gold":
            self.notes["labels"] = self.label(examples)
        indices = [meta["persona_index"] for meta in record_meta or ()]
        self.notes["selection"] = self.selection_report(examples, strategy, indices)

    def selection_report(self, examples: Sequence[Example], strategy: str, indices: Sequence[int],
                         progress: bool = False) -> dict[str, Any]:
        """The share of turns generated without a persona line and, for ``select_then_generate``, the agreement of
        the selections with the persona labels of the evaluation turns."""
        report: dict[str, Any] = {"strategy": strategy, "examples": len(indices),
                                  "none_share": list(indices).count(pal_labels.NO_LABEL) / len(indices) if indices else 0.0}
        if strategy == "select_then_generate" and examples:
            report["labels"] = self.label(examples, progress)
            gold = [self.labels[e.id] for e in examples]
            report["accuracy"] = sum(a == b for a, b in zip(indices, gold)) / len(gold)
            labelled = [(a, b) for a, b in zip(indices, gold) if b != pal_labels.NO_LABEL]
            report["accuracy_on_labelled"] = sum(a == b for a, b in labelled) / len(labelled) if labelled else None
        return report
