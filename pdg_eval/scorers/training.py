"""The fine-tuning loop, held-out report and manifest shared by pdg-eval's scorers (NLI, Con/Coh-Con).

AdamW without weight decay on biases and LayerNorm weights, linear warm-up then decay, gradient clipping at 1.0,
one seeded shuffle per epoch: the usual BERT fine-tuning recipe (Devlin et al. 2019; transformers' examples).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

NO_DECAY = ("bias", "LayerNorm.weight")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # pdg-eval shows its own progress
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on every linear layer of the encoder (and the pooler of a sequence classifier) (Hu et al. 2022); rank 8
    keeps a MiniLM-L6 adapter under 1 MB in fp16."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: str = r".*\.(query|key|value|dense)$"


def with_lora(model: Any, settings: LoraSettings, head: str | None = "classifier") -> Any:
    """``model`` wrapped by peft: only the adapter and ``head`` (a sequence classifier's head, trained in full)
    train; ``head=None`` for an encoder without one (its pooler is left out)."""
    from peft import LoraConfig, get_peft_model

    target = settings.target_modules if head else settings.target_modules.replace(".*", ".*encoder.*", 1)
    return get_peft_model(model, LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=target,
        modules_to_save=[head] if head else None, task_type="SEQ_CLS" if head else "FEATURE_EXTRACTION"))


CHECKPOINT = "training-checkpoint.pt"


def prepare_checkpoint(out_dir: Path, resume: bool) -> Path:
    """The checkpoint file of a training run into ``out_dir``; refuses to start over a run that was interrupted
    unless ``resume`` (and refuses ``resume`` when there is nothing to resume)."""
    from ..errors import ConfigError

    checkpoint = out_dir / CHECKPOINT
    if checkpoint.is_file() and not resume:
        raise ConfigError(f"{out_dir} holds an interrupted training run ({CHECKPOINT}): pass --resume to continue it, "
                          "or choose another --out")
    if resume and not checkpoint.is_file():
        raise ConfigError(f"nothing to resume: {out_dir} has no {CHECKPOINT}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return checkpoint


def fine_tune(model: Any, examples: Sequence[Any], batch_loss: Callable[[list[Any], Any], Any], *, epochs: int,
              batch_size: int, lr: float, weight_decay: float, warmup_ratio: float, seed: int, desc: str,
              progress: bool = True, checkpoint: str | Path | None = None, checkpoint_every: int = 200,
              group_of: Callable[[Any], Hashable] | None = None, device: Any = "cpu") -> float | None:
    """Train the parameters of ``model`` that require gradients, in place, and return the training seconds (summed
    over the resumed segments; None when a checkpoint that did not record them was resumed); ``batch_loss(examples,
    device)`` returns the loss tensor of one batch, its inputs put on ``device`` (a torch device), where the
    model trains (under bf16 autocast on a CUDA GPU that supports it) and from which it returns to the CPU. With
    ``group_of``, the groups are shuffled and each group's examples stay together (batches then share texts, e.g. a
    dialogue's persona, which a model may encode once per batch). With ``checkpoint`` (a file), the trainable
    weights, optimizer, scheduler and position are saved every ``checkpoint_every`` steps and at the end, and a run finding that file continues from it: the
    epoch order is a function of (seed, epoch), so a resumed run sees the same batches as an uninterrupted one."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from ..errors import ConfigError

    if not examples:
        raise ConfigError(f"{desc}: no training examples (none left after removing the held-out data's texts?)")
    device = torch.device(device)
    model.to(device)
    autocast = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [{"params": [p for n, p in named if not n.endswith(NO_DECAY)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if n.endswith(NO_DECAY)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(params, lr=lr)
    per_epoch = math.ceil(len(examples) / batch_size)
    steps = epochs * per_epoch
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    done, earlier = 0, 0.0
    if checkpoint and Path(checkpoint).is_file():
        state = torch.load(checkpoint, weights_only=True, map_location="cpu")
        if state["steps"] != steps:
            raise ConfigError(f"--resume: {checkpoint} is from a run of {state['steps']} steps, this one has {steps} "
                              "(other data, epochs or batch size): resume with the interrupted run's options, or "
                              "choose another --out")
        model.load_state_dict(state["trainable"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        done, earlier = state["done"], state.get("seconds")
    started = time.perf_counter()

    def seconds() -> float | None:
        return None if earlier is None else earlier + time.perf_counter() - started

    def save() -> None:
        trainable = {n: p.detach().clone() for n, p in named}
        temporary = Path(f"{checkpoint}.partial")
        torch.save({"steps": steps, "done": done, "trainable": trainable, "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "seconds": seconds()},
                   temporary)
        temporary.replace(checkpoint)

    model.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=done, desc=desc, unit=" step")
    groups: dict[Hashable, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(group_of(example) if group_of else i, []).append(i)
    for epoch in range(done // per_epoch, epochs):
        shuffled = list(groups.values())
        random.Random(seed * 1000 + epoch).shuffle(shuffled)
        order = [i for group in shuffled for i in group]
        for batch_index in range(done - epoch * per_epoch, per_epoch):
            start = batch_index * batch_size
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                loss = batch_loss([examples[i] for i in order[start:start + batch_size]], device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            done += 1
            if checkpoint and (done % checkpoint_every == 0 or done == steps):
                save()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    model.to("cpu").eval()
    return seconds()


def confusion_report(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, recall per class and confusion matrix (rows = gold, columns = predicted, in the order of
    ``labels``)."""
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        confusion[g][p] += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))
    recall = {name: confusion[i][i] / sum(confusion[i]) if sum(confusion[i]) else None for i, name in enumerate(labels)}
    return {"n": len(gold), "accuracy": correct / len(gold) if gold else 0.0, "recall": recall,
            "confusion_matrix": {"order": list(labels), "rows_gold_cols_predicted": confusion}}


def device_description(device: Any) -> str:
    """The device training ran on, in words (recorded in manifests)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def write_manifest(out_dir: str | Path, recipe_fields: dict, backbone: str | Path, heldout: dict,
                   train_seconds: float | None, device: Any = "cpu") -> dict:
    """``recipe_fields`` followed by the backbone (portable id and weights sha256), the held-out reports (one per
    evaluation set), the trained weights' sha256 and file sizes, the training device, training seconds and library
    versions, written to ``out_dir/manifest.json``."""
    import peft
    import torch
    import transformers

    from ..models.adapters import backbone_reference
    from ..models.runtime import WEIGHT_SUFFIXES, weights_sha256

    out = Path(out_dir)
    manifest = {**recipe_fields, "backbone_id": backbone_reference(backbone),
                "backbone_sha256": weights_sha256(str(backbone)), "heldout": heldout,
                "weights_sha256": weights_sha256(str(out)),
                "weight_files": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.suffix in WEIGHT_SUFFIXES},
                "device": device_description(device),
                "train_seconds": None if train_seconds is None else round(train_seconds, 1),
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "peft": peft.__version__}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
