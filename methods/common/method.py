"""What every method and baseline implements, and the registry that maps names to them.

A method turns :class:`~pdg_eval_methods.common.data.Example` objects into training features and generates responses; the
harness (:mod:`pdg_eval_methods.common.training`, :mod:`pdg_eval_methods.common.generation`) does the rest, identically for all.
Registration follows lm-evaluation-harness' decorator style: ``@register("causal_lm_ft")``.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

from pdg_eval.errors import ConfigError
from pdg_eval.plugins import load_plugins

from .config import DecodingConfig, RunConfig, from_dict
from .data import Example

METHODS: dict[str, type["Method"]] = {}
RUN_FILE = "run.json"


def register(name: str):
    def wrap(cls: type[Method]) -> type[Method]:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls
    return wrap


def _import_all() -> None:
    """Import the modules declared under the ``pdg_eval.methods`` entry point (this package's in ``pyproject.toml``,
    and any other installed package's): importing them registers their methods (lazily: torch models load slowly)."""
    load_plugins("pdg_eval.methods")


def method_names() -> list[str]:
    _import_all()
    return sorted(METHODS)


def get_method(name: str) -> type["Method"]:
    _import_all()
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


@dataclasses.dataclass
class NoOptions:
    """A method without options of its own."""


class Method(ABC):
    """A trainable (or prompt-only) response generator.

    Subclasses set ``Options`` (a dataclass of the ``model:`` section), implement :meth:`build`, :meth:`features`
    (training) and :meth:`generate`, and may override :meth:`training_examples`, :meth:`collate`, :meth:`save`,
    :meth:`fit` (a method with stages) and :meth:`preference_features` (``training.objective: preference``).
    ``self.model`` is what the trainer optimises: its ``forward(**batch)`` returns an object or dict with ``loss``.
    ``self.notes`` (JSON) goes into the run record as ``method_notes``; ``self.record_meta`` (one dict per example,
    set by :meth:`generate`) into each written record's ``meta.method``.
    """

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    trainable: ClassVar[bool] = True
    description: ClassVar[str] = ""
    #: causal LMs predict labels[t + 1] at position t; encoder–decoders and the GRU decoder align logits with labels
    shift_labels: ClassVar[bool] = True
    #: ``model`` options read only at generation time: ``generate --checkpoint`` takes them from the command, every
    #: other option from the trained run
    generation_options: ClassVar[tuple[str, ...]] = ()
    #: configuration defaults of the method (e.g. its paper's hyper-parameters), under the file and ``--set``
    config_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: RunConfig):
        self.config = config
        self.options = from_dict(self.Options, config.model, "<config>", "model.")
        self.model: Any = None
        self.tokenizer: Any = None
        self.backbone_info: dict[str, Any] = {}
        self.init_from: Path | None = None  # the run folder a training stage starts from (--init-from)
        self.notes: dict[str, Any] = {}
        self.record_meta: list[dict[str, Any]] | None = None

    # -- building and persistence -------------------------------------------------------------------------------
    @abstractmethod
    def build(self, checkpoint: Path | None = None) -> None:
        """Create ``self.model`` and ``self.tokenizer``: from the configured backbone, or from a folder written by
        :meth:`save` (a trained run)."""

    def save(self, folder: str | Path) -> None:
        """Write the weights and tokenizer (``save_pretrained`` for transformers models; safetensors otherwise)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if hasattr(self.model, "save_pretrained"):
            self.model.save_pretrained(folder)
        else:
            from safetensors.torch import save_model

            save_model(self.model, str(folder / "model.safetensors"))
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)

    # -- training -----------------------------------------------------------------------------------------------
    def fit(self, examples: Sequence[Example], out: Path, resume: bool = False, progress: bool = False,
            dev: Sequence[Example] = ()):
        """Train ``self.model`` on ``examples`` (run folder ``out``) and return the
        :class:`~pdg_eval_methods.common.training.TrainSummary`; the default is the harness' :func:`~pdg_eval_methods.common.training.train`
        with the configured objective (``dev``: the development examples of the evaluation during training)."""
        from .training import train

        return train(self, examples, out, resume=resume, progress=progress, dev=dev)

    def preference_features(self, examples: Sequence[Example], out: Path, progress: bool = False
                            ) -> list[dict[str, Any]]:
        """Preference features (:func:`pdg_eval_methods.common.preference.preference_features`: one prompt, K completions,
        chosen first) for ``training.objective: preference``."""
        raise ConfigError(f"{self.name} builds no preference pairs: training.objective preference is not available")

    def training_examples(self, examples: Sequence[Example]) -> Sequence[Example]:
        """The examples that become training sequences (default: all; e.g. one per dialogue for IDL's FT)."""
        return examples

    def features(self, example: Example) -> list[dict[str, Any]]:
        """Training features of one example (token ids; ``labels`` −100 where no loss is taken)."""
        raise ConfigError(f"{self.name} has no training step (it only prompts)")

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Pad ``input_ids``/``labels`` to the longest (right padding) with an attention mask."""
        from .training import pad_batch

        return pad_batch(batch, self.tokenizer.pad_token_id)

    def reference_nll(self, examples: Sequence[Example], batch_size: int = 16, progress: bool = False
                      ) -> list[list[float]]:
        """Per-token negative log-likelihoods (natural log) of each gold response under teacher forcing, on exactly
        the tokens the training loss covers (response + end of sequence): the ``nll`` field of a pdg-eval record,
        from which ``pdg-eval score`` computes perplexity in every convention."""
        import torch

        from .generation import progress_bar

        out: list[list[float]] = []
        self.model.eval()
        starts = list(range(0, len(examples), batch_size))
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for start in progress_bar(starts, progress, "gold NLL"):
                batch = self.collate([self.nll_feature(e) for e in examples[start:start + batch_size]])
                logits = self.model(**{k: v.to(device) for k, v in batch.items()})["logits"].float()
                labels = batch["labels"].to(device)
                if self.shift_labels:
                    logits, labels = logits[:, :-1], labels[:, 1:]
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
                for row, mask in zip(nll, labels != -100):
                    out.append(row[mask].tolist())
        return out

    def nll_feature(self, example: Example) -> dict[str, Any]:
        """The sequence whose labelled tokens :meth:`reference_nll` scores (default: the first training feature)."""
        return self.features(example)[0]

    # -- generation ---------------------------------------------------------------------------------------------
    def prepare(self, examples: Sequence[Example]) -> None:
        """Called once with all evaluation examples before :meth:`generate` (e.g. to index a speaker's sessions)."""

    @abstractmethod
    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        """One response per example, in order (the harness calls it on consecutive chunks of the evaluation data)."""

    def generation_report(self, examples: Sequence[Example], responses: Sequence[str],
                          record_meta: Sequence[dict[str, Any]] | None) -> None:
        """Called once after every chunk is generated, with all examples, responses and per-record meta: put
        summaries of the whole run into ``self.notes`` (e.g. PAL's selection accuracy)."""


def write_run_file(folder: str | Path, payload: dict[str, Any]) -> Path:
    return write_json(Path(folder) / RUN_FILE, payload)


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """``payload`` as indented JSON, written atomically (run records: ``run.json``, ``<out>.run.json``)."""
    from pdg_eval.files import atomic_writer

    with atomic_writer(path, parents=True) as handle:
        json.dump(payload, handle, indent=1, ensure_ascii=False, default=str)
        handle.write("\n")
    return path


def read_run_file(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{folder} is not a trained run folder (no {RUN_FILE}); train one with "
                          "`pdg-eval run METHOD train --out DIR`")
    return json.loads(path.read_text("utf-8"))


def method_config(name: str, path: str | Path | None = None, overrides: Sequence[str] = ()):
    """The run configuration of ``name``: its defaults, then the file, then ``--set`` overrides."""
    from .config import load_run_config

    return load_run_config(path, name, overrides, defaults=get_method(name).config_defaults)
