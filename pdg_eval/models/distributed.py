"""Several processes (GPUs) share the model work of one run: ``accelerate launch pdg-eval score ...``.

Under ``accelerate launch --num_processes N`` every process reads the same input and runs the same metrics;
the items that need a model forward pass (those the score cache lacks, agreed by all processes) are split
between the processes, each computes its share on its own device, and the results are gathered, so every
process ends with the same numbers. Only the main process writes outputs. With one process (the usual
``pdg-eval score``) nothing here does anything, and ``accelerate`` is not imported.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _state():
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # without GPUs: CPU processes over gloo


def agree_on_keys(keys: Sequence[str]) -> list[str]:
    """The union of every process' keys, in one order (all processes must call this together)."""
    if world_size() == 1:
        return list(keys)
    from accelerate.utils import gather_object

    _state()
    return sorted({k for part in gather_object([list(keys)]) for k in part})


def shared_compute(compute: Callable[[list[Any]], Sequence[Any]], items: list[Any]) -> list[Any]:
    """``compute(items)``, with the items split between the processes and the results gathered in order."""
    if world_size() == 1:
        return list(compute(items))
    from accelerate.utils import gather_object

    state = _state()
    with state.split_between_processes(list(range(len(items)))) as mine:
        results = list(compute([items[i] for i in mine])) if mine else []
        pieces = gather_object([(list(mine), results)])
    out: list[Any] = [None] * len(items)
    for indices, values in pieces:
        for i, value in zip(indices, values):
            out[i] = value
    return out


def finish() -> None:
    """Wait for every process, then close the process group (a peer that exits early makes gloo/NCCL abort)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
