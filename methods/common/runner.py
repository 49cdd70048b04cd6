"""One shape for every method: ``train`` writes a run folder (weights, tokenizer, ``run.json``), ``generate`` writes
pdg-eval records (``pdg-eval score`` reads them) and a ``.run.json`` next to them with the cost of the run."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from pdg_eval.errors import ConfigError

from .config import RunConfig, from_dict
from .data import Example, fingerprint, load_dataset, split_by_dialogue, take_dialogues
from .method import Method, get_method, read_run_file, write_json, write_run_file
from .provenance import decoding_signature, environment, git_commit, now, write_predictions
from .training import gold_perplexity

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
    if config.data.dev_fraction and config.data.dev is not None:
        raise ConfigError("give data.dev_fraction or data.dev, not both")
    if config.data.dev_fraction:
        split = split_by_dialogue(examples, config.data.dev_fraction, config.data.split_seed)
        examples, dev, split_info = split.train, split.dev, split.describe()
    elif config.data.dev is not None:
        dev, dev_info = load_examples(config.data.dev, None, "dev")
        split_info = {"dev": dev_info, "dev_examples": len(dev)}
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
    summary = method.fit(examples, out, resume=resume, progress=progress,
                         dev=dev if config.training.evaluating else ())
    method.save(out / MODEL_DIR)
    if dev:  # held-out perplexity of the gold responses (token level) of the saved model: the selected one
        final = gold_perplexity(method, dev, config.decoding.batch_size)
        split_info["dev_tokens"], split_info["dev_ppl"] = final["tokens"], final["ppl"]
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


def trained_config(folder: str | Path, record: dict[str, Any], name: str) -> RunConfig:
    """The configuration the ``name`` run in ``folder`` was trained with (its ``run.json``: ``record``)."""
    if record["method"] != name:
        raise ConfigError(f"{folder} holds a {record['method']} run, not {name}")
    return from_dict(RunConfig, record["config"], str(Path(folder) / "run.json"))


def config_from_run(folder: str | Path, record: dict[str, Any], name: str, decoding: Any, data: Any,
                    seed: int | None, model: dict[str, Any] | None = None) -> RunConfig:
    """The configuration of the trained run in ``folder`` (its ``run.json``: ``record``), with this command's decoding,
    evaluation data and the ``model`` options the method reads only at generation time
    (:attr:`~pdg_eval_methods.common.method.Method.generation_options`, e.g. PAL's ``strategy``)."""
    config = trained_config(folder, record, name)
    for key in get_method(name).generation_options:
        if model and key in model:
            config.model[key] = model[key]
    config.decoding = decoding
    config.data.eval, config.data.eval_dialogues = data.eval, data.eval_dialogues
    config.data.reference_pool = data.reference_pool
    if seed is not None:
        config.seed = seed
    return config


#: generation runs in chunks of this many decoding batches; each finished chunk is kept in ``<out>.partial``, so an
#: interrupted run continues with ``--resume``
CHUNK_BATCHES = 8
PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass
class Chunk:
    """The outputs of one chunk of evaluation examples, as kept in the partial file."""

    ids: list[str]
    responses: list[str]
    meta: list[dict[str, Any]] | None
    nll: list[list[float]] | None
    scores: list[list[float]] | None
    wall_s: float
    nll_wall_s: float
    scores_wall_s: float
    generated_tokens: int
    git: str | None


def _generate_chunk(method: Method, examples: list[Example], config: RunConfig, with_nll: bool,
                    score_candidates: bool, progress: bool, git: str | None) -> Chunk:
    start = time.perf_counter()
    method.record_meta, method.generated_tokens = None, 0
    responses = method.generate(examples, config.decoding, progress=progress)
    wall = time.perf_counter() - start
    nll, nll_wall, scores, scores_wall = None, 0.0, None, 0.0
    if with_nll:
        start = time.perf_counter()
        nll = method.reference_nll(examples, config.decoding.batch_size, progress=progress)
        nll_wall = time.perf_counter() - start
    if score_candidates:
        start = time.perf_counter()
        scores = method.score_candidates(examples, progress=progress)
        scores_wall = time.perf_counter() - start
    return Chunk([e.id for e in examples], list(responses), method.record_meta, nll, scores, wall, nll_wall,
                 scores_wall, int(method.generated_tokens or 0), git)


def _read_partial(path: Path, stamp: dict[str, Any], resume: bool) -> list[Chunk]:
    """The chunks an interrupted generation kept (``resume``), after checking that it was the same run."""
    if not path.is_file():
        if resume:
            raise ConfigError(f"nothing to resume: no {path}")
        return []
    if not resume:
        raise ConfigError(f"{path} holds an interrupted generation: pass --resume to continue it, or delete it")
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the line a killed run was writing: that chunk is generated again
            break
    kept = rows[0].get("stamp") if rows else None
    if kept != stamp:
        differ = sorted(k for k in set(stamp) | set(kept or {}) if (kept or {}).get(k) != stamp.get(k))
        raise ConfigError(f"--resume: {path} is from another generation (differs in: {', '.join(differ)}); "
                          "delete it or repeat the interrupted command")
    from pdg_eval.files import atomic_writer

    with atomic_writer(path) as handle:  # only whole lines stay, so that new chunks append cleanly
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return [Chunk(**row) for row in rows[1:]]


def generate_run(name: str, config: RunConfig, out: str | Path, checkpoint: str | Path | None = None,
                 progress: bool = True, with_nll: bool = False, score_candidates: bool = False,
                 resume: bool = False) -> dict[str, Any]:
    """Generate a response for every evaluation example; writes ``out`` (records) and ``out.run.json``. With
    ``with_nll``, each record also carries the per-token NLL of its gold response (for perplexity). Examples are
    generated in chunks (:data:`CHUNK_BATCHES` decoding batches), each kept in ``out.partial`` until the records are
    written: ``resume`` continues an interrupted run of the same command."""
    out = Path(out)
    git = git_commit()
    trained = None
    if checkpoint is not None:
        trained = read_run_file(checkpoint)
        config = config_from_run(checkpoint, trained, name, config.decoding, config.data, None, config.model)
    method: Method = get_method(name)(config)
    method_note = "untrained backbone (no --checkpoint)" if method.trainable and checkpoint is None else None
    examples, data_info = load_examples(config.data.eval, config.data.eval_dialogues, "eval")
    if with_nll and not method.trainable:
        raise ConfigError(f"{name} is prompt-only: no training loss defines the reference tokens for --with-nll")
    if score_candidates:
        if not hasattr(method, "score_candidates"):
            raise ConfigError(f"{name} has no candidate scorer (for a causal LM use `pdg-eval rank` on the trained "
                              "model folder)")
        if any(not e.candidates for e in examples):
            raise ConfigError("--score-candidates: the evaluation data has no ranking candidates")
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    stamp = {"method": name, "config": json.loads(json.dumps(config.to_json(), default=str)),
             "checkpoint": str(checkpoint) if checkpoint is not None else None,
             "trained": trained["finished"] if trained else None, "data": data_info["fingerprint"],
             "with_nll": with_nll, "score_candidates": score_candidates}
    chunks = _read_partial(partial, stamp, resume)
    method.build(Path(checkpoint) / MODEL_DIR if checkpoint is not None else None)
    method.prepare(examples)
    size = CHUNK_BATCHES * config.decoding.batch_size
    pieces = [examples[i:i + size] for i in range(0, len(examples), size)]
    if [c.ids for c in chunks] != [[e.id for e in piece] for piece in pieces[:len(chunks)]]:
        raise ConfigError(f"--resume: the chunks of {partial} do not match the evaluation examples; delete it")
    if not chunks:
        from pdg_eval.files import atomic_writer

        with atomic_writer(partial, parents=True) as handle:
            handle.write(json.dumps({"stamp": stamp}, ensure_ascii=False) + "\n")
    bar = None
    if progress and len(pieces) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(examples), initial=sum(len(c.ids) for c in chunks), desc=f"{name} examples",
                   unit=" ex")
    for piece in pieces[len(chunks):]:
        chunk = _generate_chunk(method, piece, config, with_nll, score_candidates, progress, git)
        with partial.open("a", encoding="utf-8") as handle:  # one line a chunk: a cut line is never read back
            handle.write(json.dumps(dataclasses.asdict(chunk), ensure_ascii=False, default=str) + "\n")
        chunks.append(chunk)
        if bar is not None:
            bar.update(len(piece))
    if bar is not None:
        bar.close()
    responses = [r for c in chunks for r in c.responses]
    metas = None if any(c.meta is None for c in chunks) else [m for c in chunks for m in c.meta]
    method.generation_report(examples, responses, metas)
    wall = sum(c.wall_s for c in chunks)
    generated = sum(c.generated_tokens for c in chunks)
    nll = [v for c in chunks for v in c.nll] if with_nll else None
    scores = [v for c in chunks for v in c.scores] if score_candidates else None
    commits = list(dict.fromkeys(c.git for c in chunks))
    provenance = {
        "kind": "generate", "method": name, "config": config.to_json(),
        "backbone": trained["backbone"] if trained else method.backbone_info,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "trained": {"git": trained["git"], "finished": trained["finished"], "data": trained["data"]} if trained else None,
        "data": {"eval": data_info, "fingerprint": data_info["fingerprint"]}, "seed": config.seed,
        "decoding": decoding_signature(config.decoding), "git": commits[0] if len(commits) == 1 else commits,
        "environment": environment(), "finished": now(), "note": method_note, "method_notes": method.notes,
        "cost": {"wall_s": wall, "examples": len(examples), "examples_per_s": len(examples) / wall if wall else None,
                 "generated_tokens": generated, "tokens_per_s": generated / wall if wall and generated else None,
                 "batch_size": config.decoding.batch_size, "chunks": len(chunks),
                 "nll_wall_s": sum(c.nll_wall_s for c in chunks) if with_nll else None,
                 "candidates_wall_s": sum(c.scores_wall_s for c in chunks) if score_candidates else None},
    }
    write_predictions(examples, responses, out, name, provenance, nll, scores, metas)
    write_json(out.with_name(out.name + ".run.json"), provenance)
    partial.unlink()
    return provenance
