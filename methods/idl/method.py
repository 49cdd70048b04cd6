"""IDL on the shared harness: ``pdg-eval run idl train|generate``, three training stages.

* ``model.stage: extractor`` — the persona extractor Ext (§3.2.1, A.2) as an instruction task on stacked PersonaExt
  samples (``model.personaext``; :mod:`.extractor`); the held-out whole-sample accuracy goes into the run record.
  The ``extractor_training`` mapping is applied over ``training`` (full fine-tuning by default).
* ``model.stage: msl`` — Mutual Supervised Learning (§3.2): for every person (``Example.speaker``) with at least two
  dialogues, SPI groups and references and the DPI order (:mod:`.planning`), then SFT on references + target
  (:mod:`.sequences`; chat with an *empty* system message: no profile). ``model.extractor`` names an extractor run
  whose objects pick the persona-intensive utterances; they are extracted only for persons whose SPI texts decide
  something (clustering from 2c dialogues, or more than k references to choose from) — otherwise every reference is
  used whatever the texts say.
* ``model.stage: dpoc`` — Deep Personalized Alignment (§3.3; ``--init-from`` an MSL run, ``model.extractor`` needed
  for the criteria): a new LoRA adapter trained with DPOC over the MSL model, which is the reference; triples from
  :mod:`.dpoc_pairs` (``dpoc_pairs`` seeded turns). The ``dpoc_training`` mapping is applied over ``training``.
* ``generate`` — the person's other dialogues of ``data.reference_pool`` (default: the evaluation data) in file
  order, as the released ``get_dpo`` and evaluation build the history (``max_references`` keeps the first N: the
  sessions curve), then the current dialogue; whole oldest turns are dropped to fit ``decoding.max_prompt_tokens``.
  Each record's ``meta.method`` lists the reference dialogues.

Defaults are the paper's (LLaMA-2-Chat; MSL LoRA r 8 α 8, AdamW, lr 5e-5 cosine, batch 4, 2 epochs; DPOC new LoRA r 8
α 8, lr 1e-5 cosine, batch 1, 1 epoch, penalty 2, β 0.1; c 3, k 5, λ 5; greedy). Paper ≠ released code
(Cheng et al.'s release with its LLaMA-Factory fork), each an option: LoRA α 16, 3 MSL epochs, λ 1, SPI target =
the last dialogue and references = all members (``references: all``), greedy DPI walk (``ordering: greedy``), DPOC
penalty 0.5 inside the sigmoid (``dpoc_training.preference.loss: dpoc_code``), the 100th neighbour as Fabrication
(``fabrication_pick: nth``). Choices where neither says: the extractor's instruction wording and its training
recipe; warm-up 10 % of the steps; one criterion per turn, the next kind when the drawn one cannot be built; the
persona objects of a text are found sentence by sentence; Ext(𝔻^u) = the objects of the person's own turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pdg_eval.errors import ConfigError
from pdg_eval.readers.personaext import personaext_files
from pdg_eval.records import PARTNER, SELF

from pdg_eval_methods.common.backbones import load_causal_lm
from pdg_eval_methods.common.config import DecodingConfig, check_choices, training_over
from pdg_eval_methods.common.data import Example, Session, load_dataset, resolve_path, sessions
from pdg_eval_methods.common.generation import generate_causal_lm
from pdg_eval_methods.common.method import Method, read_run_file, register
from pdg_eval_methods.common.preference import preference_features
from pdg_eval_methods.common.prompts import Formatter, Turn

from . import conved, criteria, extractor, spi
from .dpoc_pairs import build_triples
from .planning import PlanOptions, own_turns, plan_person
from .sequences import LOSS_TURNS, msl_turns, prompt_turns

STAGES = ("extractor", "msl", "dpoc")
OBJECTS_CACHE = "objects.jsonl"
#: IDL's system prompt: empty (no profile), rendered as an empty system message (LLaMA-2-Chat's ``<<SYS>>\n\n<</SYS>>``)
SYSTEM = ""
#: the extractor's recipe (not given by the paper): full fine-tuning, one epoch
EXTRACTOR_TRAINING = {"lora": None, "learning_rate": 5e-5, "epochs": 1, "batch_size": 8, "gradient_accumulation": 1,
                      "warmup_ratio": 0.1, "lr_scheduler": "cosine", "max_length": 512}
#: IDL A.2: a new LoRA adapter (r 8, α 8) over the MSL model, lr 1e-5 cosine, batch 1, 1 epoch, DPOC penalty 2
DPOC_TRAINING = {"objective": "preference", "learning_rate": 1e-5, "epochs": 1, "batch_size": 1,
                 "gradient_accumulation": 1, "warmup_ratio": 0.1, "lr_scheduler": "cosine",
                 "lora": {"r": 8, "alpha": 8, "dropout": 0.0, "target_modules": None},
                 "preference": {"loss": "dpoc_paper", "beta": 0.1, "penalty": 2.0}}


@dataclass
class IDLOptions:
    format: str = "chat"
    stage: str = "msl"  # extractor | msl | dpoc (dpoc needs --init-from an msl run)
    # -- extractor stage
    personaext: str = "shared:data/personaext/splits"  # folder of PersonaExt split files (*/*.jsonl)
    extractor_samples: int | None = None  # the first N stacked training samples (None: all)
    extractor_eval_samples: int | None = None  # the first N held-out samples scored after training (None: all)
    extractor_training: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(EXTRACTOR_TRAINING)))
    # -- MSL / DPOC
    extractor: str | None = None  # a trained extractor run folder (stage extractor)
    encoder: str | None = None  # sentence encoder of SPI, DPI and the criteria (None: all-MiniLM-L6-v2; paper: MPNet)
    clusters: int = spi.CLUSTERS
    top_k: int = spi.TOP_K
    targets: str = "random"  # random (paper) | all
    references: str = "top_k"  # top_k (paper) | all (code)
    scale: float = conved.LAMBDA
    ordering: str = "exact"  # exact (Held–Karp) | greedy (code) | none (the "w/o DPI" ablation)
    loss_turns: str = "last"  # last (paper) | all (LLaMA-Factory's multi-turn masking)
    dpoc_pairs: int | None = None  # seeded turns made into DPOC triples (None: every eligible turn)
    dpoc_prompt_tokens: int = 2048  # the released trainer's prompt limit (oldest whole turns dropped)
    dpoc_completion_tokens: int = 64  # ... and each completion's, end of turn included
    top_m: int = criteria.TOP_M
    fabrication_pick: str = "random"  # random (paper) | nth (code)
    dpoc_training: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(DPOC_TRAINING)))
    # -- generation
    max_references: int | None = None  # at most N of the person's other dialogues (None: all)

    def check(self) -> None:
        check_choices("model", (("stage", self.stage, STAGES), ("targets", self.targets, spi.TARGETS),
                                ("references", self.references, spi.REFERENCES),
                                ("ordering", self.ordering, conved.ORDERINGS),
                                ("loss_turns", self.loss_turns, LOSS_TURNS),
                                ("fabrication_pick", self.fabrication_pick, criteria.PICKS)))
        if self.max_references is not None and self.max_references < 0:
            raise ConfigError(f"model.max_references must be >= 0; got {self.max_references}")

    def plan_options(self, seed: int) -> PlanOptions:
        return PlanOptions(self.clusters, self.top_k, self.targets, self.references, self.scale, self.ordering, seed)


@dataclass(frozen=True)
class MSLSequence:
    """One MSL training sequence: the references in DPI order, then the target dialogue."""

    references: tuple[Session, ...]
    target: Session


def by_person(found: dict[str, Session]) -> dict[str, list[Session]]:
    """speaker -> their dialogues, first-seen order."""
    out: dict[str, list[Session]] = {}
    for session in found.values():
        out.setdefault(session.speaker, []).append(session)
    return out


@register("idl")
class IDL(Method):
    description = "IDL (EMNLP 2024): persona extractor, MSL (SPI + DPI + SFT), DPOC alignment; no profile"
    Options = IDLOptions
    generation_options = ("max_references",)
    config_defaults = {
        "training": {"learning_rate": 5e-5, "epochs": 2, "batch_size": 4, "gradient_accumulation": 1,
                     "warmup_ratio": 0.1, "lr_scheduler": "cosine", "optimizer": "adamw_torch", "max_length": 1024,
                     "lora": {"r": 8, "alpha": 8, "dropout": 0.0, "target_modules": None}},
        "decoding": {"strategy": "greedy", "max_new_tokens": 64, "max_prompt_tokens": 2048},
        "model": {"extractor_training": EXTRACTOR_TRAINING, "dpoc_training": DPOC_TRAINING},
        "seed": 13,
    }

    def __init__(self, config) -> None:
        super().__init__(config)
        self.options.check()
        stage_training = {"extractor": self.options.extractor_training, "dpoc": self.options.dpoc_training}
        if self.options.stage in stage_training:
            config.training = training_over(config.training, stage_training[self.options.stage],
                                            f"model.{self.options.stage}_training")
        if self.options.stage == "dpoc" and config.training.objective != "preference":
            raise ConfigError("model.stage dpoc trains with training.objective preference")
        self._encoder = None
        self.references_of: dict[str, tuple[Session, ...]] = {}  # example id -> the reference dialogues shown

    # -- model --------------------------------------------------------------------------------------------------
    def build(self, checkpoint: Path | None = None) -> None:
        self.model, self.tokenizer, self.backbone_info = load_causal_lm(
            self.config.backbone, checkpoint, self.config.seed, self.config.backbone_overrides)
        self.formatter = Formatter(self.tokenizer, self.options.format)

    def encode(self, texts: Sequence[str]):
        import numpy as np

        if self._encoder is None:
            from pdg_eval.models.runtime import default_sentence_encoder, load_sentence_encoder

            self._encoder = load_sentence_encoder(self.options.encoder or default_sentence_encoder())
        return np.asarray(self._encoder.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def persona_objects(self, out: Path, progress: bool = False) -> extractor.PersonaObjects:
        """The objects of ``model.extractor`` (a trained extractor run), cached in ``out``."""
        if self.options.extractor is None:
            raise ConfigError("model.stage dpoc builds its criteria from extracted persona objects: set "
                              "model.extractor to a run of `pdg-eval run idl train --set model.stage=extractor`")
        folder = Path(self.options.extractor)
        record = read_run_file(folder)
        if record["method"] != "idl" or record["config"]["model"].get("stage") != "extractor":
            raise ConfigError(f"model.extractor {folder} is not an IDL extractor run")
        state: dict[str, Any] = {}

        def find(inputs: list[list[str]]) -> list[list[extractor.Triple]]:
            if "model" not in state:
                from pdg_eval_methods.common.runner import MODEL_DIR

                model, tokenizer, _ = load_causal_lm(record["config"]["backbone"], folder / MODEL_DIR)
                state["model"], state["tokenizer"] = model, tokenizer
                state["formatter"] = Formatter(tokenizer, record["config"]["model"].get("format", "chat"))
            return extractor.extract(state["model"], state["tokenizer"], state["formatter"], inputs,
                                     self.extractor_decoding(), progress and len(inputs) > 1)

        stamp = {"extractor": str(folder), "finished": record["finished"], "git": record["git"]}
        return extractor.PersonaObjects(find, Path(out) / OBJECTS_CACHE, stamp)

    def extractor_decoding(self) -> DecodingConfig:
        return DecodingConfig(strategy="greedy", max_new_tokens=extractor.TOKENS_PER_SENTENCE,
                              batch_size=self.config.decoding.batch_size, max_prompt_tokens=512)

    # -- stages -------------------------------------------------------------------------------------------------
    def fit(self, examples: Sequence[Example], out: Path, resume: bool = False, progress: bool = False,
            dev: Sequence[Example] = ()):
        if dev:
            raise ConfigError("idl: evaluation during training is not available (its training samples are built "
                              "from each person's other dialogues, not from single turns); set "
                              "training.eval_strategy no")
        stage = self.options.stage
        if stage == "extractor":
            self.extractor_data()
            summary = super().fit(self.samples, out, resume=resume, progress=progress)
            self.notes["extractor"] |= self.extractor_accuracy(progress)
            return summary
        if stage == "msl":
            self.msl_plans(examples, out, progress)
        else:
            self._check_msl()
        return super().fit(examples, out, resume=resume, progress=progress)

    def training_examples(self, examples: Sequence[Example]) -> Sequence[Any]:
        """Stacked PersonaExt samples (extractor) or MSL sequences (msl), not the dialogue turns."""
        return self.samples if self.options.stage == "extractor" else self.sequences

    def features(self, item: Any) -> list[dict[str, Any]]:
        max_length = self.config.training.max_length
        if isinstance(item, extractor.Sample):
            return [extractor.training_feature(self.formatter, item, max_length)]
        turns = msl_turns(item.references, item.target, self.options.loss_turns)
        return [self.formatter.conversation(turns, max_length, SYSTEM)]

    # extractor
    def extractor_data(self) -> None:
        root = Path(resolve_path(self.options.personaext))
        files = personaext_files(root)
        if not files:
            raise ConfigError(f"model.personaext {root}: no PersonaExt split files (*.jsonl)")
        sentences = extractor.read_personaext(files)
        train, valid = extractor.split_sentences(sentences, seed=self.config.seed)
        samples = extractor.stack(train, seed=self.config.seed)
        self.valid_samples = extractor.stack(valid, seed=self.config.seed)[:self.options.extractor_eval_samples]
        self.samples = samples[:self.options.extractor_samples]
        self.notes["extractor"] = {"files": len(files), "sentences": len(sentences), "train_sentences": len(train),
                                   "valid_sentences": len(valid), "train_samples": len(self.samples),
                                   "train_samples_available": len(samples), "eval_samples": len(self.valid_samples)}

    def extractor_accuracy(self, progress: bool = False) -> dict[str, Any]:
        """Whole-sample accuracy on the held-out stacked samples (IDL A.2), and the share of right triples."""
        predicted = extractor.extract(self.model, self.tokenizer, self.formatter,
                                      [[s.text for s in sample.sentences] for sample in self.valid_samples],
                                      self.extractor_decoding(), progress)
        right = sum(p.key() == s.triple.key() for triples, sample in zip(predicted, self.valid_samples)
                    for p, s in zip(triples, sample.sentences))
        total = sum(len(sample.sentences) for sample in self.valid_samples)
        examples = [{"input": sample.source, "target": sample.target, "output": [t.text() for t in triples]}
                    for triples, sample in list(zip(predicted, self.valid_samples))[:5]]
        return {"sample_accuracy": extractor.accuracy(predicted, self.valid_samples),
                "triple_accuracy": right / total, "triples": total, "first_outputs": examples}

    # MSL
    def msl_plans(self, examples: Sequence[Example], out: Path, progress: bool = False) -> None:
        """The MSL sequences of every person with at least two dialogues."""
        found = sessions(examples)
        persons = {p: s for p, s in by_person(found).items() if len(s) >= 2}
        options = self.options.plan_options(self.config.seed)
        objects_needed = [p for p, s in persons.items()
                          if len(s) >= 2 * options.clusters or len(s) - 1 > options.top_k]
        objects = None
        if objects_needed and self.options.extractor is not None:
            objects = self.persona_objects(out, progress)
            objects.ensure(t for p in objects_needed for s in persons[p] for t in own_turns(s))
        self.sequences = []
        for person, mine in persons.items():
            found_objects = [set().union(*(objects(t) for t in own_turns(s)))
                             if objects is not None and person in objects_needed else set() for s in mine]
            by_id = {s.dialogue_id: s for s in mine}
            for plan in plan_person(mine, found_objects, self.encode, options):
                self.sequences.append(MSLSequence(tuple(by_id[d] for d in plan.references), by_id[plan.target]))
        if not self.sequences:
            raise ConfigError("MSL needs persons with at least two dialogues in data.train; there are none")
        self.notes["msl"] = {"persons": len(persons), "dialogues": sum(map(len, persons.values())),
                             "sequences": len(self.sequences),
                             "references_per_sequence": sum(len(s.references) for s in self.sequences)
                             / len(self.sequences),
                             "persons_whose_spi_texts_decide": len(objects_needed),
                             "extractor": self.options.extractor if objects is not None else None}

    # DPOC
    def _check_msl(self) -> None:
        if self.init_from is None:
            raise ConfigError("model.stage dpoc starts from the MSL model: give --init-from MSL_RUN")
        record = read_run_file(self.init_from)
        if record["config"]["model"].get("stage", "msl") != "msl":
            raise ConfigError(f"--init-from {self.init_from} is not an IDL MSL run")

    def preference_features(self, examples: Sequence[Example], out: Path, progress: bool = False
                            ) -> list[dict[str, Any]]:
        """DPOC triples: prompt = the person's other dialogues (file order) + the current dialogue so far; chosen =
        gold, rejected = another dialogue's reply, criterion per :mod:`.criteria` (left out under the ``dpo`` loss:
        IDL's "w/o criterion" ablation)."""
        found = sessions(examples)
        persons = by_person(found)
        objects = self.persona_objects(out, progress)
        count = self.options.dpoc_pairs
        eligible = [e for e in examples if len(persons.get(e.speaker, ())) >= 2]
        # the golds and Ext(𝔻^u) are the persons' own turns: one batched extraction (Fabrication asks lazily)
        objects.ensure(t for p in dict.fromkeys(e.speaker for e in eligible) for s in persons[p] for t in own_turns(s))
        corpus = [e.response for e in examples]
        triples, mix = build_triples(examples, persons, objects, self.encode, corpus,
                                     len(eligible) if count is None else count, self.config.seed,
                                     self.options.top_m, self.options.fabrication_pick)
        from pdg_eval_methods.common.preference import get_loss

        k = get_loss(self.config.training.preference.loss).k  # 2 for dpo: the "w/o criterion" ablation
        features = []
        for triple in triples:
            references = [found[d] for d in triple.references]
            prompt = self.prompt(references, triple.example.context, self.options.dpoc_prompt_tokens)
            completions = [self.completion(text)[:self.options.dpoc_completion_tokens]
                           for text in (triple.chosen, triple.rejected, triple.criterion.text)[:k]]
            features.append(preference_features(prompt, completions, len(prompt) + max(map(len, completions))))
        self.notes["dpoc"] = mix | {"pairs": len(features), "examples": [
            {"id": t.example.id, "chosen": t.chosen, "rejected": t.rejected, "criterion": t.criterion.text,
             "kind": t.criterion.kind} for t in triples[:5]]}
        return features

    # -- sequences ----------------------------------------------------------------------------------------------
    def prompt(self, references: Sequence[Session], context: Sequence[str], max_tokens: int) -> list[int]:
        """References then the current dialogue, the person's reply opened; oldest whole turns dropped to fit."""
        return self.formatter.conversation(prompt_turns(references, context), max_tokens, SYSTEM,
                                           generation=True)["input_ids"]

    def completion(self, reply: str) -> list[int]:
        """The tokens of ``reply`` as the person's next turn (text + end of turn / sequence)."""
        feature = self.formatter.conversation([Turn("hello", PARTNER), Turn(reply, SELF, True)], 1 << 30, SYSTEM)
        return [t for t, label in zip(feature["input_ids"], feature["labels"]) if label != -100]

    def nll_feature(self, example: Example) -> dict[str, Any]:
        """The gold reply after the prompt generation used."""
        references = self.references_for(example)
        prompt = self.prompt(references, example.context, self.config.decoding.max_prompt_tokens)
        reply = self.completion(example.response)
        return {"input_ids": prompt + reply, "labels": [-100] * len(prompt) + reply}

    # -- inference ----------------------------------------------------------------------------------------------
    def prepare(self, examples: Sequence[Example]) -> None:
        spec = self.config.data.reference_pool
        pool = list(examples) if spec is None else load_dataset(spec)
        self.pool = by_person(sessions(pool))

    def references_for(self, example: Example) -> tuple[Session, ...]:
        if example.id not in self.references_of:
            others = [s for s in getattr(self, "pool", {}).get(example.speaker, [])
                      if s.dialogue_id != example.dialogue_id]
            self.references_of[example.id] = tuple(others[:self.options.max_references])
        return self.references_of[example.id]

    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        prompts = [self.prompt(self.references_for(e), e.context, decoding.max_prompt_tokens) for e in examples]
        texts, self.generated_tokens = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress)
        self.record_meta = [{"references": [s.dialogue_id for s in self.references_for(e)]} for e in examples]
        return texts

    def generation_report(self, examples: Sequence[Example], responses: Sequence[str],
                          record_meta: Sequence[dict[str, Any]] | None) -> None:
        shown = [len(meta["references"]) for meta in record_meta or ()]
        self.notes["references"] = {"examples": len(examples), "with_references": sum(n > 0 for n in shown),
                                    "mean_references": sum(shown) / len(shown) if shown else 0.0,
                                    "max_references": self.options.max_references,
                                    "pool": self.config.data.reference_pool}
