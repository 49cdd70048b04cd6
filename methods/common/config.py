"""Run configuration: one YAML/JSON file per run, sections ``data``, ``backbone``, ``model``, ``training``,
``decoding``; ``--set section.key=value`` overrides any field. Unknown keys are errors (``file: key: problem``), so a
typo never silently falls back to a default. The resolved configuration is stored with every run's outputs."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from pdg_eval.errors import ConfigError, InputError

T = TypeVar("T")


@dataclass
class DataConfig:
    train: Any = None  # a loader spec (pdg_eval_methods.common.data.load_dataset): path, {format, path, ...} or "hub:ID"
    eval: Any = None
    dev_fraction: float = 0.0  # held-out dialogues of the training data (deterministic, split_seed)
    dev: Any = None  # a loader spec of the development data (instead of dev_fraction)
    split_seed: int = 13
    train_dialogues: int | None = None  # the first N dialogues only (a fixed, documented subset)
    eval_dialogues: int | None = None
    #: where a person's other dialogues are looked up (IDL's references, the ICL demonstrations): a loader spec;
    #: None = the evaluation data as loaded (after eval_dialogues)
    reference_pool: Any = None


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 8
    dropout: float = 0.0
    target_modules: list[str] | None = None  # None: peft's default for the architecture (gpt2: c_attn; llama: q,v)


@dataclass
class PreferenceConfig:
    """The preference objective (``training.objective: preference``; :mod:`pdg_eval_methods.common.preference`)."""

    loss: str = "dpo"  # dpo | dpoc_paper | dpoc_code
    beta: float = 0.1
    penalty: float | None = None  # DPOC's ordering penalty (None: the loss' default); dpo takes none
    label_smoothing: float = 0.0  # conservative DPO (dpo only)
    sft_weight: float = 0.0  # + γ · mean-token NLL of the chosen completion (IDL's dpo_ftx)
    precompute_reference: bool = False  # reference log-probs computed once before training (no second model)


OBJECTIVES = ("lm", "preference")
EVAL_STRATEGIES = ("no", "steps", "epoch")


@dataclass
class TrainingConfig:
    learning_rate: float = 5e-5
    batch_size: int = 8
    gradient_accumulation: int = 1
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    optimizer: str = "adamw_torch"  # any transformers TrainingArguments.optim
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    warmup_steps: int = -1  # >= 0 overrides warmup_ratio (papers that give a step count, e.g. PAL's 100)
    lr_scheduler: str = "linear"
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int = 2
    max_length: int = 512  # tokens per training sequence (prompts are cut from the left)
    bf16: bool = False
    lora: LoraConfig | None = None
    dataloader_workers: int = 0
    objective: str = "lm"  # lm (the method's training features) | preference (its chosen/rejected pairs)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    #: evaluation during training: the token-level perplexity of the gold responses of the development data
    #: (data.dev_fraction or data.dev) every eval_steps optimizer steps or every epoch
    eval_strategy: str = "no"  # no | steps | epoch
    eval_steps: int = 0
    select_best: bool = False  # end with the checkpoint of the lowest dev perplexity (not the last one)
    early_stopping_patience: int = 0  # > 0: stop after that many evaluations without improvement (keeps the best)

    @property
    def evaluating(self) -> bool:
        return self.eval_strategy != "no"

    @property
    def keeps_best(self) -> bool:
        """Whether the run ends with its best checkpoint (``select_best``, which early stopping implies)."""
        return self.select_best or self.early_stopping_patience > 0

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"training.objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}")
        check_choices("training", (("eval_strategy", self.eval_strategy, EVAL_STRATEGIES),))
        if self.eval_strategy == "steps" and self.eval_steps < 1:
            raise ConfigError("training.eval_strategy steps needs training.eval_steps >= 1")
        if (self.select_best or self.early_stopping_patience) and not self.evaluating:
            raise ConfigError("training.select_best and training.early_stopping_patience need evaluation during "
                              "training: set training.eval_strategy to steps or epoch (and data.dev_fraction or "
                              "data.dev)")
        if self.early_stopping_patience < 0:
            raise ConfigError("training.early_stopping_patience must be >= 0")


@dataclass
class DecodingConfig:
    strategy: str = "greedy"  # greedy | sample | beam
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_beams: int = 1
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    batch_size: int = 16
    max_prompt_tokens: int = 512
    seed: int = 0
    #: greedy decoding with a decoder-only transformers model: prompts that share a prefix (the turns of a dialogue)
    #: prefill it once (generation.generate_shared_prefix); like the batch size, it does not change the output
    share_prefix: bool = True

    def check(self) -> None:
        if self.strategy not in ("greedy", "sample", "beam"):
            raise ConfigError(f"decoding.strategy must be greedy, sample or beam; got {self.strategy!r}")
        if self.strategy == "beam" and self.num_beams < 2:
            raise ConfigError("decoding.strategy beam needs decoding.num_beams >= 2")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("decoding.max_new_tokens and decoding.batch_size must be >= 1")


@dataclass
class RunConfig:
    method: str
    backbone: str = "random:tiny-gpt2"
    backbone_overrides: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # method-specific options (validated by the method)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    seed: int = 13

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_choices(section: str, choices: Sequence[tuple[str, Any, Sequence[Any]]]) -> None:
    """Refuse the first ``(key, value, allowed)`` whose value is not allowed: ``section.key must be one of …``."""
    for key, value, allowed in choices:
        if value not in allowed:
            raise ConfigError(f"{section}.{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str, prefix: str = "") -> T:
    """Build a (nested) dataclass from a mapping, rejecting unknown keys."""
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(where, None, prefix + unknown[0],
                         f"unknown key; expected one of {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        kind = _dataclass_type(names[name].type)
        if kind is not None and isinstance(value, Mapping):
            value = from_dict(kind, value, where, f"{prefix}{name}.")
        else:
            value = _coerce(value, names[name].type, where, prefix + name)
        values[name] = value
    return cls(**values)


_SCALARS = {"float": float, "int": int, "bool": bool, "str": str}


def _coerce(value: Any, annotation: Any, where: str, key: str) -> Any:
    """Check a scalar against its field type; numbers written as strings (YAML reads ``1e-5`` as one) are
    converted."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    options = [t.strip() for t in text.split("|")]
    kind = _SCALARS.get(options[0])
    if value is None:
        if "None" in options or kind is None:
            return None
        raise InputError(where, None, key, "must not be null")
    if kind is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool and isinstance(value, str) and value.lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[value.lower()]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (float, int) and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise InputError(where, None, key, f"expected a number; got {value!r}") from None
        if kind is int and not number.is_integer():
            raise InputError(where, None, key, f"expected an integer; got {value!r}")
        return kind(number)
    raise InputError(where, None, key, f"expected {options[0]}; got {value!r}")


_NESTED = {"DataConfig": DataConfig, "TrainingConfig": TrainingConfig, "DecodingConfig": DecodingConfig,
           "LoraConfig": LoraConfig, "PreferenceConfig": PreferenceConfig}


def _dataclass_type(annotation: Any) -> type | None:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    for name, kind in _NESTED.items():
        if text.split("|")[0].strip() == name:
            return kind
    return None


class ConfigLoader(yaml.SafeLoader):
    """YAML with only ``true``/``false`` as booleans: YAML 1.1 also reads ``yes``/``no``/``on``/``off`` as booleans,
    which would turn ``eval_strategy: no`` into ``False``; a bool field still accepts those words (:func:`_coerce`)."""


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))

_BOOLEAN_WORDS = {"yes": True, "on": True, "no": False, "off": False}


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalars (numbers, booleans, null, lists) or a plain string."""
    try:
        return yaml.load(text, Loader=ConfigLoader)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``section.key=value`` assignments into a raw config mapping (before validation)."""
    data = json.loads(json.dumps(data))  # deep copy
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (e.g. training.learning_rate=1e-5); got {item!r}")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = parse_value(value)
    return data


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, section by section."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def training_over(training: TrainingConfig, update: Mapping[str, Any], key: str) -> TrainingConfig:
    """``update`` (the mapping of option ``key``, e.g. a second stage's settings) applied over ``training``."""
    return from_dict(TrainingConfig, merge(dataclasses.asdict(training), update), "<config>", f"{key}.")


def load_run_config(path: str | Path | None, method: str, overrides: Sequence[str] = (),
                    defaults: Mapping[str, Any] | None = None) -> RunConfig:
    """Read a run configuration (YAML or JSON) for ``method`` and apply ``--set`` overrides. ``defaults`` (the
    method's own, e.g. a paper's hyper-parameters) sit under the file, which sits under ``--set``."""
    data: dict[str, Any] = {}
    where = "<--set>"
    if path is not None:
        where = str(path)
        text = Path(path).read_text("utf-8")
        try:
            loaded = json.loads(text) if str(path).endswith(".json") else yaml.load(text, Loader=ConfigLoader)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
            raise InputError(where, line, None, f"not valid YAML/JSON: {getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(loaded, dict):
            raise InputError(where, None, None, "a run configuration is a mapping of sections")
        data = loaded
    data = apply_overrides(merge(defaults or {}, data), overrides)
    given = data.pop("method", method)
    if given != method:
        raise InputError(where, None, "method", f"the file configures {given!r}, not {method!r}")
    config = from_dict(RunConfig, {"method": method, **data}, where)
    config.decoding.check()
    config.training.check()
    return config
