"""Training: every method trains through ``transformers.Trainer`` (so one CPU, one GPU, or many GPUs under
``accelerate launch`` / DeepSpeed / FSDP work unchanged — see the README), with optional LoRA through ``peft``,
checkpoints every ``save_steps`` and exact resumption (``resume=True`` continues from the last checkpoint with the
optimizer, scheduler and data order restored)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pdg_eval.errors import ConfigError

from .config import TrainingConfig
from .data import Example

CHECKPOINTS = "checkpoints"


def pad_batch(batch: Sequence[dict[str, Any]], pad_id: int, keys: Sequence[str] = ("input_ids", "labels")
              ) -> dict[str, Any]:
    """Right-pad token lists to the longest in the batch: ``input_ids`` with ``pad_id``, ``labels`` with −100;
    adds ``attention_mask``. Other keys with lists of ints are padded with 0; tensors and scalars are stacked."""
    import torch

    out: dict[str, Any] = {}
    width = max(len(item["input_ids"]) for item in batch)
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], list):
            fill = pad_id if key == "input_ids" else (-100 if key == "labels" else 0)
            longest = width if key in keys else max(len(v) for v in values)
            out[key] = torch.tensor([v + [fill] * (longest - len(v)) for v in values], dtype=torch.long)
        elif isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        else:
            out[key] = torch.tensor(values)
    out["attention_mask"] = torch.tensor([[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"]))
                                          for item in batch], dtype=torch.long)
    return out


class FeatureDataset:
    """A list of feature dicts as a map-style dataset."""

    def __init__(self, features: list[dict[str, Any]]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.features[index]


def build_features(method, examples: Sequence[Example], progress: bool = False) -> list[dict[str, Any]]:
    iterator = list(method.training_examples(examples))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="features", unit=" ex", mininterval=1.0)
    return [feature for example in iterator for feature in method.features(example)]


def count_tokens(features: Sequence[dict[str, Any]]) -> int:
    """Tokens of the training sequences (a preference feature holds one sequence per completion)."""
    return sum(sum(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)
               for ids in (f["input_ids"] for f in features))


@dataclass
class TrainSummary:
    steps: int
    epochs: float
    examples: int
    features: int
    tokens_per_epoch: int
    tokens_seen: int
    wall_s: float
    tokens_per_s: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss) as logged
    resumed_from: str | None = None
    device: str = "cpu"
    objective: str = "lm"
    #: preference objective: the logged reward metrics, one dict per logging step (step, rewards/…, logps/…)
    rewards: list[dict[str, float]] = field(default_factory=list)
    #: the logged parts of a summed loss (a model's ``L_<part>`` outputs), one dict per logging step
    loss_parts: list[dict[str, float]] = field(default_factory=list)
    #: evaluation during training: (step, dev perplexity) per evaluation, the step whose checkpoint was kept
    #: (``select_best``; None: the last step) and whether early stopping ended the run
    dev_curve: list[tuple[int, float]] = field(default_factory=list)
    selected_step: int | None = None
    stopped_early: bool = False

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None


def harness_trainer_class():
    """``transformers.Trainer`` that also checkpoints the harness' own ``nn.Module`` models whose weights are tied
    (the base class' ``safetensors.save_file`` refuses shared tensors; ``save_model`` stores them once) and loads
    them back (resuming, or the best checkpoint of ``select_best``)."""
    import os

    import torch
    from transformers import PreTrainedModel, Trainer

    class HarnessTrainer(Trainer):
        """Also logs the scalar outputs of a model's forward named ``L_<part>`` (the parts of a summed loss, e.g.
        MORPHEUS' L_G, L_V, L_D, L_C), averaged over the steps since the last log."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._loss_parts: dict[str, list[float]] = {}

        def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                                 num_items_in_batch=num_items_in_batch)
            if isinstance(outputs, dict) and model.training:
                for key, value in outputs.items():
                    if key.startswith("L_") and torch.is_tensor(value) and value.dim() == 0:
                        self._loss_parts.setdefault(key, []).append(float(value))
            return (loss, outputs) if return_outputs else loss

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs:
                logs.update({key: sum(values) / len(values) for key, values in self._loss_parts.items() if values})
                self._loss_parts = {}
            super().log(logs, start_time)

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
            """The harness' own models load the ``model.safetensors`` that :meth:`_save` wrote (tied tensors stored
            once; the base class' loader expects a transformers model)."""
            target = model if model is not None else self.model
            if isinstance(target, PreTrainedModel) or hasattr(target, "peft_config"):
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            from safetensors.torch import load_model

            load_model(target, os.path.join(resume_from_checkpoint, "model.safetensors"))

        def _load_best_model(self) -> None:
            model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
            if isinstance(model, PreTrainedModel) or hasattr(model, "peft_config"):
                return super()._load_best_model()
            self._load_from_checkpoint(self.state.best_model_checkpoint, model)

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
            if isinstance(model, PreTrainedModel) or hasattr(model, "peft_config"):
                return super()._save(output_dir, state_dict)
            from safetensors.torch import save_model

            output_dir = output_dir if output_dir is not None else self.args.output_dir
            if self.args.should_save:
                os.makedirs(output_dir, exist_ok=True)
                save_model(model, os.path.join(output_dir, "model.safetensors"), metadata={"format": "pt"})
                torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    return HarnessTrainer


def dev_evaluating(trainer_class: type) -> type:
    """``trainer_class`` whose ``evaluate`` reports ``dev_metric()`` (e.g. :func:`gold_perplexity`) instead of the
    Trainer's batch-mean loss on an evaluation dataset, so that the Trainer's own ``load_best_model_at_end`` and
    ``EarlyStoppingCallback`` select and stop on it."""

    class DevEvaluating(trainer_class):
        def __init__(self, *args: Any, dev_metric, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.dev_metric = dev_metric

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
            was_training = self.model.training
            try:
                metrics = {f"{metric_key_prefix}_{key}": value for key, value in self.dev_metric().items()}
            finally:
                self.model.train(was_training)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return DevEvaluating


def gold_perplexity(method, examples: Sequence[Example], batch_size: int, variant: str = "token_micro",
                    progress: bool = False) -> dict[str, float]:
    """pdg-eval's ``ppl:<variant>`` of the gold responses of ``examples`` under teacher forcing (the tokens the
    training loss covers, :meth:`~pdg_eval_methods.common.method.Method.reference_nll`): ``ppl``, its ``nll`` (the
    log) and the number of ``tokens``. ``token_micro`` is exp of the mean token NLL over all tokens."""
    from pdg_eval.metrics.base import create_metric

    metric = create_metric("ppl", variant)
    stats = []
    for example, values in zip(examples, method.reference_nll(examples, batch_size, progress=progress), strict=True):
        record = example.to_record()
        record.nll = values
        stats.append(metric.item_stats(record))
    tokens = int(sum(s[1] for s in stats))
    if not tokens:
        raise ConfigError("the development data has no response tokens to compute a perplexity on")
    ppl = metric.aggregate(stats)["ppl"]
    return {"ppl": ppl, "nll": math.log(ppl), "tokens": tokens}


def apply_lora(model, lora) -> Any:
    """Wrap a transformers model with a LoRA adapter (``peft``)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def warmup_steps(config: TrainingConfig, total_steps: int) -> int:
    """``warmup_steps`` when given (>= 0), else ``warmup_ratio`` of the optimizer steps."""
    return config.warmup_steps if config.warmup_steps >= 0 else int(config.warmup_ratio * total_steps)


def training_arguments(config: TrainingConfig, output_dir: Path, seed: int, n_features: int, progress: bool):
    import torch
    from transformers import TrainingArguments

    per_step = config.batch_size * config.gradient_accumulation
    total = config.max_steps if config.max_steps > 0 else math.ceil(n_features / per_step * config.epochs)
    keep_best = config.keeps_best
    # the best checkpoint can only be one that was saved: save when evaluating
    saving = {"save_strategy": config.eval_strategy, "save_steps": config.eval_steps or config.save_steps} \
        if keep_best else {"save_steps": config.save_steps}
    evaluation = {"eval_strategy": config.eval_strategy, "eval_steps": config.eval_steps or None,
                  "load_best_model_at_end": keep_best, "metric_for_best_model": "ppl" if keep_best else None,
                  "greater_is_better": False if keep_best else None}
    return TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation, learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, max_steps=config.max_steps, optim=config.optimizer,
        weight_decay=config.weight_decay, warmup_steps=warmup_steps(config, total),
        lr_scheduler_type=config.lr_scheduler, max_grad_norm=config.max_grad_norm, logging_steps=config.logging_steps,
        **saving, **evaluation, save_total_limit=config.save_total_limit, seed=seed, data_seed=seed,
        bf16=config.bf16, report_to=[], dataloader_num_workers=config.dataloader_workers,
        remove_unused_columns=False, disable_tqdm=not progress, use_cpu=not torch.cuda.is_available(),
        include_num_input_tokens_seen="non_padding")


def is_peft_model(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


@dataclass
class Fit:
    """What :func:`fit_model` returns: the trained model (a LoRA adapter it added merged), the trainer state, the
    checkpoint it resumed from, and the wall time of ``trainer.train``."""

    model: Any
    state: Any
    resumed_from: str | None
    wall_s: float


def fit_model(model, features: list[dict[str, Any]], collate, config: TrainingConfig, output_dir: str | Path,
              seed: int, progress: bool = False, resume: bool = False, callbacks: Sequence[Any] = (),
              trainer_class: type | None = None, dev_metric=None, **trainer_kwargs: Any) -> Fit:
    """The one training loop of the harness: LoRA (``config.lora``, over a model that has no adapter yet, merged at
    the end), ``TrainingArguments`` from ``config``, checkpoints in ``output_dir/checkpoints``, ``resume`` from the
    last of them. ``trainer_class`` defaults to the harness' ``Trainer`` (language-model loss from the model's
    forward); :mod:`pdg_eval_methods.common.preference` passes its ``PreferenceTrainer`` and loss options as
    ``trainer_kwargs``. With ``config.eval_strategy``, ``dev_metric()`` (a dict with ``ppl``) is the evaluation,
    ``select_best`` ends with the best checkpoint and ``early_stopping_patience`` adds the Trainer's
    ``EarlyStoppingCallback``. The caller seeds the RNGs first."""
    if not features:
        raise ConfigError("no training features: the training data is empty")
    if config.evaluating and dev_metric is None:
        raise ConfigError("training.eval_strategy needs development data: set data.dev_fraction or data.dev")
    merge = config.lora is not None and not is_peft_model(model)
    if merge:
        model = apply_lora(model, config.lora)
    output_dir = Path(output_dir)
    args = training_arguments(config, output_dir / CHECKPOINTS, seed, len(features), progress)
    trainer_class = trainer_class or harness_trainer_class()
    callbacks = list(callbacks)
    if config.evaluating:
        from transformers import EarlyStoppingCallback

        trainer_class = dev_evaluating(trainer_class)
        trainer_kwargs |= {"dev_metric": dev_metric, "eval_dataset": FeatureDataset([{}])}  # evaluate ignores it
        if config.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = trainer_class(model=model, args=args, train_dataset=FeatureDataset(features), data_collator=collate,
                            callbacks=callbacks, **trainer_kwargs)
    if not progress:  # without progress bars the trainer prints every log dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    last = _last_checkpoint(output_dir / CHECKPOINTS) if resume else None
    if resume and last is None:
        raise ConfigError(f"--resume: no checkpoint in {output_dir / CHECKPOINTS}")
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    wall = time.perf_counter() - start
    final = trainer.model.merge_and_unload() if merge else trainer.model
    return Fit(final, trainer.state, str(last) if last else None, wall)


def train(method, examples: Sequence[Example], output_dir: str | Path, resume: bool = False,
          progress: bool = False, callbacks: Sequence[Any] = (), dev: Sequence[Example] = ()) -> TrainSummary:
    """Train ``method.model`` on ``examples`` with the configured objective: ``lm`` — the method's
    :meth:`~pdg_eval_methods.common.method.Method.features`; ``preference`` — its
    :meth:`~pdg_eval_methods.common.method.Method.preference_features` under the configured preference loss. Checkpoints go
    to ``output_dir/checkpoints``; the trained model stays in ``method.model`` for the caller to save. ``dev``: the
    development examples of the evaluation during training (:func:`gold_perplexity`)."""
    import torch
    from transformers import set_seed

    config = method.config.training
    config.check()
    if not method.trainable:
        raise ConfigError(f"{method.name} is prompt-only: there is nothing to train")
    set_seed(method.config.seed)
    if config.objective == "preference":
        from .preference import preference_setup

        pairs = method.preference_features(examples, Path(output_dir), progress)
        features, collate, trainer_class, options = preference_setup(method.model, method.tokenizer, pairs, config)
    else:
        features, collate, trainer_class, options = build_features(method, examples, progress), method.collate, None, {}
    dev_metric = (lambda: gold_perplexity(method, dev, method.config.decoding.batch_size)) if dev else None
    fit = fit_model(method.model, features, collate, config, output_dir, method.config.seed, progress, resume,
                    callbacks, trainer_class, dev_metric, **options)
    method.model = fit.model
    history = fit.state.log_history
    losses = [(int(entry["step"]), float(entry["loss"])) for entry in history if "loss" in entry]
    rewards = [{"step": int(entry["step"])} | {k: float(v) for k, v in entry.items() if k.startswith(("rewards/", "logps/"))}
               for entry in history if "rewards/margins" in entry]
    parts = [{"step": int(entry["step"])} | {k: float(v) for k, v in entry.items() if k.startswith("L_")}
             for entry in history if any(k.startswith("L_") for k in entry)]
    dev_curve = [(int(entry["step"]), float(entry["eval_ppl"])) for entry in history if "eval_ppl" in entry]
    seen = int(getattr(fit.state, "num_input_tokens_seen", 0) or 0)
    return TrainSummary(steps=int(fit.state.global_step), epochs=float(fit.state.epoch or 0.0), examples=len(examples),
                        features=len(features), tokens_per_epoch=count_tokens(features), tokens_seen=seen,
                        wall_s=fit.wall_s, tokens_per_s=seen / fit.wall_s if fit.wall_s and seen else float("nan"),
                        losses=losses, resumed_from=fit.resumed_from,
                        device=str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
                        objective=config.objective, rewards=rewards, loss_parts=parts, dev_curve=dev_curve,
                        selected_step=fit.state.best_global_step if config.keeps_best else None,
                        stopped_early=bool(config.early_stopping_patience) and fit.state.global_step < fit.state.max_steps)


def _last_checkpoint(folder: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    return Path(get_last_checkpoint(str(folder))) if folder.is_dir() and get_last_checkpoint(str(folder)) else None
