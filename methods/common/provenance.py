"""Provenance of a run and the pdg-eval records it writes: method, backbone (spec + weights hash), data (files,
subset, split seed, fingerprint), seed, decoding settings, git commit, versions. Every generated record carries the
compact form in ``meta.run``; the full form goes into the run folder's ``run.json``."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from pdg_eval import __version__
from pdg_eval.records import Record, write_jsonl

from .config import DecodingConfig
from .data import Example

REPO = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """``<sha>`` of the checkout, ``<sha>+dirty`` with uncommitted changes, ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def decoding_signature(decoding: DecodingConfig) -> str:
    """``strategy|max_new:N|...`` — the settings that change the output (batch size does not)."""
    parts = [decoding.strategy, f"max_new:{decoding.max_new_tokens}", f"prompt_max:{decoding.max_prompt_tokens}"]
    if decoding.strategy == "sample":
        parts += [f"temp:{decoding.temperature}", f"top_k:{decoding.top_k}", f"top_p:{decoding.top_p}"]
    if decoding.strategy == "beam":
        parts.append(f"beams:{decoding.num_beams}")
    if decoding.repetition_penalty != 1.0:
        parts.append(f"rep:{decoding.repetition_penalty}")
    if decoding.no_repeat_ngram_size:
        parts.append(f"no_repeat:{decoding.no_repeat_ngram_size}")
    parts.append(f"seed:{decoding.seed}")
    return "|".join(parts)


def environment() -> dict[str, Any]:
    import torch
    import transformers

    device = "cpu"
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return {"pdg_eval": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "device": device, "machine": platform.machine()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def compact(provenance: dict[str, Any]) -> dict[str, Any]:
    """What every record carries (``meta.run``)."""
    backbone = provenance.get("backbone", {})
    return {"method": provenance["method"], "backbone": backbone.get("spec"),
            "weights": str(backbone.get("weights", ""))[:16], "checkpoint": provenance.get("checkpoint"),
            "seed": provenance.get("seed"), "decoding": provenance.get("decoding"), "git": provenance.get("git"),
            "data": provenance.get("data", {}).get("fingerprint", "")[:16]}


def write_predictions(examples: Sequence[Example], responses: Sequence[str], path: str | Path, system: str,
                      provenance: dict[str, Any], nll: Sequence[list[float]] | None = None,
                      candidate_scores: Sequence[list[float]] | None = None,
                      method_meta: Sequence[dict[str, Any]] | None = None) -> int:
    """pdg-eval records (gold as the reference; candidates kept; the gold's ``nll``, the candidates' scores and the
    method's per-example notes — ``meta.method``, e.g. PAL's selected persona — when given), written atomically."""
    run = compact(provenance)
    per_example = [None] * len(examples) if method_meta is None else method_meta
    records: list[Record] = [
        example.to_record(response=response, system=system,
                          meta={"run": run} if extra is None else {"run": run, "method": extra})
        for example, response, extra in zip(examples, responses, per_example, strict=True)]
    if nll is not None:
        for record, values in zip(records, nll, strict=True):
            record.nll = values
    if candidate_scores is not None:
        for record, values in zip(records, candidate_scores, strict=True):
            record.candidate_scores = values
    return write_jsonl(records, path, parents=True)
