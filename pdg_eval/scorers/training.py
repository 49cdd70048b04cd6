"""The fine-tuning loop, held-out report and manifest shared by pdg-eval's scorers (NLI, Con/Coh-Con).

AdamW without weight decay on biases and LayerNorm weights, linear warm-up then decay, gradient clipping at 1.0,
one seeded shuffle per epoch: the usual BERT fine-tuning recipe (Devlin et al. 2019; transformers' examples).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

NO_DECAY = ("bias", "LayerNorm.weight")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # pdg-eval shows its own progress
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fine_tune(model: Any, examples: Sequence[Any], batch_loss: Callable[[list[Any]], Any], *, epochs: int,
              batch_size: int, lr: float, weight_decay: float, warmup_ratio: float, seed: int, desc: str,
              progress: bool = True) -> None:
    """Train ``model`` in place; ``batch_loss(examples)`` returns the loss tensor of one batch."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [{"params": [p for n, p in model.named_parameters() if not n.endswith(NO_DECAY)],
               "weight_decay": weight_decay},
              {"params": [p for n, p in model.named_parameters() if n.endswith(NO_DECAY)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(params, lr=lr)
    steps = epochs * math.ceil(len(examples) / batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    generator = random.Random(seed)
    model.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=desc, unit=" step")
    for _ in range(epochs):
        order = list(range(len(examples)))
        generator.shuffle(order)
        for start in range(0, len(order), batch_size):
            loss = batch_loss([examples[i] for i in order[start:start + batch_size]])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    model.eval()


def confusion_report(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy and confusion matrix (rows = gold, columns = predicted, in the order of ``labels``)."""
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        confusion[g][p] += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return {"n": len(gold), "accuracy": correct / len(gold) if gold else 0.0,
            "confusion_matrix": {"order": list(labels), "rows_gold_cols_predicted": confusion}}


def write_manifest(out_dir: str | Path, recipe_fields: dict, backbone: str | Path, heldout: dict,
                   started: float) -> dict:
    """``recipe_fields`` followed by the backbone's and the trained weights' sha256, the held-out report, the seconds
    since ``started`` and the torch version, written to ``out_dir/manifest.json``."""
    import torch

    from ..models.runtime import weights_sha256

    manifest = {**recipe_fields, "backbone_sha256": weights_sha256(str(backbone)), "heldout": heldout,
                "weights_sha256": weights_sha256(str(out_dir)), "train_seconds": round(time.time() - started, 1),
                "torch": torch.__version__}
    (Path(out_dir) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
