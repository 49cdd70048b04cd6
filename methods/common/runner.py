"""One shape for every method: ``train`` writes a run folder (weights, tokenizer, ``run.json``), ``generate`` writes
pdg-eval records (``pdg-eval score`` reads them) and a ``.run.json`` next to them with the cost of the run."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from pdg_eval.errors import ConfigError

from .config import RunConfig, from_dict
from .data import Example, fingerprint, load_dataset, split_by_dialogue, take_dialogues
from .method import Method, get_method, read_run_file, write_json, write_run_file
from .provenance import decoding_signature, environment, git_commit, now, write_predictions

MODEL_DIR = "model"


def _describe_spec(spec: Any) -> Any:
    return spec if isinstance(spec, (str, dict)) else str(spec)


def load_examples(spec: Any, dialogues_limit: int | None, role: str) -> tuple[list[Example], dict[str, Any]]:
    """The examples of a data spec (optionally the first N dialogues) and their description for provenance."""
    if spec is None:
        raise ConfigError(f"no {role} data: set data.{role} in the config (or --set data.{role}=PATH)")
    examples = load_dataset(spec)
    if dialogues_limit:
        examples = take_dialogues(examples, dialogues_limit)
    if not examples:
        raise ConfigError(f"the {role} data is empty")
    info = {"spec": _describe_spec(spec), "examples": len(examples), "dialogues": len({e.dialogue_id for e in examples}),
            "first_dialogues": dialogues_limit, "fingerprint": fingerprint(examples)}
    return examples, info


def train_run(name: str, config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True,
              init_from: str | Path | None = None, examples: list[Example] | None = None,
              data_note: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``name`` as configured (starting from the weights of the run folder ``init_from`` when given: a second
    training stage); returns the run record written to ``out/run.json``. ``examples`` replaces ``data.train`` (e.g.
    a subset), described by ``data_note``."""
    out = Path(out)
    git = git_commit()  # the code that trains (recorded before the run: the tree may change while it runs)
    method: Method = get_method(name)(config)
    if examples is None:
        examples, data_info = load_examples(config.data.train, config.data.train_dialogues, "train")
    else:
        data_info = {"spec": data_note, "examples": len(examples), "dialogues": len({e.dialogue_id for e in examples}),
                     "fingerprint": fingerprint(examples)}
    split_info, dev = None, []
    if config.data.dev_fraction:
        split = split_by_dialogue(examples, config.data.dev_fraction, config.data.split_seed)
        examples, dev, split_info = split.train, split.dev, split.describe()
    initial = None
    if init_from is not None:
        initial = read_run_file(init_from)
        if initial["method"] != name:
            raise ConfigError(f"--init-from {init_from} holds a {initial['method']} run, not {name}")
        method.build(Path(init_from) / MODEL_DIR)
        method.backbone_info = initial["backbone"]
        method.init_from = Path(init_from)
    else:
        method.build()
    summary = method.fit(examples, out, resume=resume, progress=progress)
    method.save(out / MODEL_DIR)
    if dev:  # held-out perplexity of the gold responses (token level), as PAA selects its checkpoints
        nll = [x for values in method.reference_nll(dev, config.decoding.batch_size) for x in values]
        split_info["dev_tokens"], split_info["dev_ppl"] = len(nll), math.exp(sum(nll) / len(nll)) if nll else None
    record = {
        "kind": "train", "method": name, "config": config.to_json(), "backbone": method.backbone_info,
        "data": {"train": data_info, "split": split_info, "fingerprint": data_info["fingerprint"]},
        "seed": config.seed, "git": git, "environment": environment(), "finished": now(),
        "init_from": None if initial is None else {"folder": str(init_from), "git": initial["git"],
                                                   "finished": initial["finished"]},
        "summary": dataclasses.asdict(summary) | {"first_loss": summary.first_loss, "last_loss": summary.last_loss},
        "method_notes": method.notes,
    }
    write_run_file(out, record)
    return record


def config_from_run(folder: str | Path, record: dict[str, Any], name: str, decoding: Any, data: Any,
                    seed: int | None, model: dict[str, Any] | None = None) -> RunConfig:
    """The configuration of the trained run in ``folder`` (its ``run.json``: ``record``), with this command's decoding,
    evaluation data and the ``model`` options the method reads only at generation time
    (:attr:`~methods.common.method.Method.generation_options`, e.g. PAL's ``strategy``)."""
    if record["method"] != name:
        raise ConfigError(f"{folder} holds a {record['method']} run, not {name}")
    config = from_dict(RunConfig, record["config"], str(Path(folder) / "run.json"))
    for key in get_method(name).generation_options:
        if model and key in model:
            config.model[key] = model[key]
    config.decoding = decoding
    config.data.eval, config.data.eval_dialogues = data.eval, data.eval_dialogues
    config.data.reference_pool = data.reference_pool
    if seed is not None:
        config.seed = seed
    return config


def generate_run(name: str, config: RunConfig, out: str | Path, checkpoint: str | Path | None = None,
                 progress: bool = True, with_nll: bool = False, score_candidates: bool = False) -> dict[str, Any]:
    """Generate a response for every evaluation example; writes ``out`` (records) and ``out.run.json``. With
    ``with_nll``, each record also carries the per-token NLL of its gold response (for perplexity)."""
    out = Path(out)
    git = git_commit()
    trained = None
    if checkpoint is not None:
        trained = read_run_file(checkpoint)
        config = config_from_run(checkpoint, trained, name, config.decoding, config.data, None, config.model)
    method: Method = get_method(name)(config)
    method_note = "untrained backbone (no --checkpoint)" if method.trainable and checkpoint is None else None
    examples, data_info = load_examples(config.data.eval, config.data.eval_dialogues, "eval")
    method.build(Path(checkpoint) / MODEL_DIR if checkpoint is not None else None)
    method.prepare(examples)
    start = time.perf_counter()
    responses = method.generate(examples, config.decoding, progress=progress)
    wall = time.perf_counter() - start
    generated = int(getattr(method, "generated_tokens", 0) or 0)
    nll, nll_wall = None, None
    if with_nll:
        if not method.trainable:
            raise ConfigError(f"{name} is prompt-only: no training loss defines the reference tokens for --with-nll")
        start = time.perf_counter()
        nll = method.reference_nll(examples, config.decoding.batch_size, progress=progress)
        nll_wall = time.perf_counter() - start
    scores, scores_wall = None, None
    if score_candidates:
        if not hasattr(method, "score_candidates"):
            raise ConfigError(f"{name} has no candidate scorer (for a causal LM use `pdg-eval rank` on the trained "
                              "model folder)")
        if any(not e.candidates for e in examples):
            raise ConfigError("--score-candidates: the evaluation data has no ranking candidates")
        start = time.perf_counter()
        scores = method.score_candidates(examples, progress=progress)
        scores_wall = time.perf_counter() - start
    provenance = {
        "kind": "generate", "method": name, "config": config.to_json(),
        "backbone": trained["backbone"] if trained else method.backbone_info,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "trained": {"git": trained["git"], "finished": trained["finished"], "data": trained["data"]} if trained else None,
        "data": {"eval": data_info, "fingerprint": data_info["fingerprint"]}, "seed": config.seed,
        "decoding": decoding_signature(config.decoding), "git": git, "environment": environment(),
        "finished": now(), "note": method_note, "method_notes": method.notes,
        "cost": {"wall_s": wall, "examples": len(examples), "examples_per_s": len(examples) / wall if wall else None,
                 "generated_tokens": generated, "tokens_per_s": generated / wall if wall and generated else None,
                 "batch_size": config.decoding.batch_size, "nll_wall_s": nll_wall,
                 "candidates_wall_s": scores_wall},
    }
    write_predictions(examples, responses, out, name, provenance, nll, scores, method.record_meta)
    write_json(out.with_name(out.name + ".run.json"), provenance)
    return provenance

