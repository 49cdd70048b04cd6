"""Study definitions: read a YAML/JSON study file, resolve templates, sample items and assign annotators.

A study file names the task type (``pairwise``, ``ranking`` or ``likert``), the aspects with their questions and
instructions, the systems' prediction files (any format :func:`pdg_eval.readers.open_records` reads), how items are
sampled, how many annotators judge each item, and the attention checks. :func:`build_study` turns it into a
:class:`Study`: a frozen list of units (what one screen shows), each annotator's queue, and the display order of
the responses for every (annotator, unit) — drawn once, from the study seed, and stored, so that a reload shows the
same screen and the positions shown are part of every judgment.

Ready templates reproduce the seed papers' protocols (``pdg-eval annotate templates``):
``idl_pairwise`` (IDL §4.4.2: Win/Tie/Lose on Persona, Style, Fluency), ``morpheus_ranking`` (MORPHEUS §4.3: rank
5 systems + ground truth on readability, diversity, consistency, coherence) and ``paa_likert`` (PAA: 1–5 fluency,
informativeness, relevance; −1/0/1 persona consistency).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import ConfigError, InputError
from ..readers import open_records
from ..records import Record
from ..files import file_sha256
from .frames import TASKS

TEMPLATES = ("idl_pairwise", "morpheus_ranking", "paa_likert")
GOLD_NAME = "Ground truth"
_STUDY_KEYS = {"name", "template", "task", "title", "instructions", "aspects", "systems", "gold", "pairs", "items",
               "annotators", "attention_checks", "seed", "format", "dataset"}


@dataclass(frozen=True)
class Aspect:
    """One question asked about every unit."""

    name: str
    question: str
    instructions: str = ""
    scale: tuple[int, ...] = ()  # likert: the allowed values, in display order
    labels: Mapping[int, str] = field(default_factory=dict)  # likert: names of some values

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "question": self.question, "instructions": self.instructions,
                "scale": list(self.scale), "labels": {str(k): v for k, v in self.labels.items()}}


@dataclass(frozen=True)
class Unit:
    """What one screen shows: a persona and context, and the responses of ``systems`` (canonical order)."""

    key: str
    item: str  # the record id the unit was built from
    persona: tuple[str, ...]
    context: tuple[str, ...]
    systems: tuple[str, ...]
    responses: tuple[str, ...]
    is_check: bool = False
    expected: Mapping[str, Any] | None = None  # attention check: the answer by aspect, by display position

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["persona"], out["context"] = list(self.persona), list(self.context)
        out["systems"], out["responses"] = list(self.systems), list(self.responses)
        return out


@dataclass(frozen=True)
class Assignment:
    annotator: str
    unit: str
    seq: int
    shown: tuple[int, ...]  # indices into Unit.systems, in display order


@dataclass
class Study:
    """A resolved study: everything the store needs, and the provenance of the inputs."""

    name: str
    task: str
    title: str
    instructions: str
    aspects: list[Aspect]
    units: list[Unit]
    annotators: list[str]
    assignments: list[Assignment]
    seed: int
    sources: dict[str, dict[str, Any]]
    definition: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "title": self.title, "instructions": self.instructions,
                "aspects": [a.to_json() for a in self.aspects], "annotators": self.annotators, "seed": self.seed,
                "sources": self.sources, "definition": self.definition,
                "units": [u.to_json() for u in self.units],
                "assignments": [asdict(a) | {"shown": list(a.shown)} for a in self.assignments]}


def template_path(name: str) -> Path:
    if name not in TEMPLATES:
        raise ConfigError(f"unknown study template {name!r}; expected one of {', '.join(TEMPLATES)}")
    return Path(str(resources.files("pdg_eval.annotate").joinpath(f"templates/{name}.yaml")))


def load_definition(path: str | Path) -> dict[str, Any]:
    """The study file as a dict, with its template's fields filled in (the file's own fields win)."""
    path = Path(path)
    text = path.read_text("utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
        raise InputError(str(path), line, None, f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                                                f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), None, None, "a study file must be a mapping of fields")
    unknown = sorted(set(data) - _STUDY_KEYS)
    if unknown:
        raise InputError(str(path), None, unknown[0], f"unknown field; expected some of {', '.join(sorted(_STUDY_KEYS))}")
    if "template" in data:
        base = yaml.safe_load(template_path(str(data["template"])).read_text("utf-8"))
        base.pop("systems", None)
        data = base | data
    return data


def _aspects(raw: Any, task: str, where: str) -> list[Aspect]:
    if not isinstance(raw, list) or not raw:
        raise InputError(where, None, "aspects", "give a non-empty list of aspects")
    out = []
    for i, entry in enumerate(raw):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not entry.get("name"):
            raise InputError(where, None, f"aspects[{i}]", "each aspect needs a name")
        scale = tuple(int(v) for v in entry.get("scale", ()))
        if task == "likert":
            if len(scale) == 2 and scale[1] - scale[0] > 1:  # [low, high] shorthand
                scale = tuple(range(scale[0], scale[1] + 1))
            if len(scale) < 2 or len(set(scale)) != len(scale):
                raise InputError(where, None, f"aspects[{i}].scale", "a Likert aspect needs at least two distinct values")
        labels = {int(k): str(v) for k, v in (entry.get("labels") or {}).items()}
        out.append(Aspect(str(entry["name"]), str(entry.get("question") or entry["name"]),
                          str(entry.get("instructions", "")), scale, labels))
    if len({a.name for a in out}) != len(out):
        raise InputError(where, None, "aspects", "aspect names must be unique")
    return out


def _read_systems(raw: Any, base: Path, fmt: str, dataset: str | None, where: str
                  ) -> tuple[dict[str, dict[str, Record]], dict[str, dict[str, Any]]]:
    if not isinstance(raw, dict) or not raw:
        raise InputError(where, None, "systems", "give a mapping of system name to prediction file")
    records: dict[str, dict[str, Record]] = {}
    sources: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        spec = {"path": spec} if isinstance(spec, str) else dict(spec)
        path = (base / str(spec["path"])).resolve()
        if not path.is_file():
            raise InputError(where, None, f"systems.{name}", f"prediction file not found: {path}")
        data = spec.get("dataset", dataset)
        data_path = None if data is None else (base / str(data)).resolve()
        file_format = str(spec.get("format", fmt))
        by_id: dict[str, Record] = {}
        for record in open_records(path, file_format, dataset=data_path):
            by_id[record.id] = record
        if str(name) == GOLD_NAME:
            raise InputError(where, None, f"systems.{name}", f"{GOLD_NAME!r} is reserved for the references")
        records[str(name)] = by_id
        sources[str(name)] = {"path": str(path), "sha256": file_sha256(path), "records": len(by_id),
                              "format": file_format, "dataset": None if data_path is None else str(data_path)}
    return records, sources


def _check_same_inputs(records: dict[str, dict[str, Record]], item: str) -> Record:
    first_name, *_ = records
    first = records[first_name][item]
    for name, by_id in records.items():
        other = by_id[item]
        if list(other.context) != list(first.context) or list(other.persona) != list(first.persona):
            raise InputError(other.source, other.line, "context",
                             f"item {item!r}: {name} was given a different persona/context than {first_name}")
    return first


def _sample_items(ids: list[str], raw: Any, rng: random.Random, where: str) -> list[str]:
    raw = raw or {}
    if "ids" in raw:
        chosen = [str(i) for i in raw["ids"]]
        missing = [i for i in chosen if i not in set(ids)]
        if missing:
            raise InputError(where, None, "items.ids", f"not in every system's predictions: {missing[:5]}")
        return chosen
    n = int(raw.get("n", len(ids)))
    if n < 1 or n > len(ids):
        raise InputError(where, None, "items.n", f"must be between 1 and {len(ids)} (the items all systems share)")
    return sorted(rng.sample(sorted(ids), n), key=ids.index)


def _units(task: str, items: list[str], records: dict[str, dict[str, Record]], gold: bool, pairs: str) -> list[Unit]:
    systems = list(records)
    units = []
    for item in items:
        first = _check_same_inputs(records, item)
        names = systems + ([GOLD_NAME] if gold else [])
        texts = [records[s][item].response for s in systems] + ([first.reference] if gold else [])
        if task != "pairwise":
            units.append(Unit(item, item, tuple(first.persona), tuple(first.context), tuple(names), tuple(texts)))
            continue
        if pairs == "all":
            chosen = list(combinations(range(len(names)), 2))
        else:
            base = names.index(pairs)
            chosen = [(base, j) for j in range(len(names)) if j != base]
        for i, j in chosen:
            key = item if len(chosen) == 1 else f"{item}::{names[i]}~{names[j]}"
            units.append(Unit(key, item, tuple(first.persona), tuple(first.context), (names[i], names[j]),
                              (texts[i], texts[j])))
    return units


CHECK_TEXT = "[Attention check] This is not a real reply. {instruction}"


def _attention_checks(task: str, aspects: list[Aspect], n_systems: int, count: int, template: Unit) -> list[Unit]:
    """Instructed-response checks: one response tells the annotator the answer, which is known in advance."""
    units = []
    for k in range(count):
        target = k % n_systems
        if task == "pairwise":
            side = "A" if target == 0 else "B"
            instruction = f"For every question, choose response {side} as the better one."
            expected = {a.name: "left" if target == 0 else "right" for a in aspects}
            n_systems_shown = 2
        elif task == "ranking":
            instruction = "Rank this response first (best) for every question."
            expected = {a.name: {"first": target} for a in aspects}
            n_systems_shown = n_systems
        else:
            lowest = {a.name: min(a.scale) for a in aspects}
            instruction = "Give this response the lowest value for every question."
            expected = {a.name: {"position_value": [target, lowest[a.name]]} for a in aspects}
            n_systems_shown = n_systems
        responses = tuple(CHECK_TEXT.format(instruction=instruction) if i == target else template.responses[i]
                          for i in range(n_systems_shown))
        units.append(Unit(f"check-{k + 1:03d}", template.item, template.persona, template.context,
                          tuple(f"check:{i}" for i in range(n_systems_shown)), responses, True, expected))
    return units


def _annotators(raw: Any, where: str) -> tuple[list[str], int]:
    raw = raw or {}
    names = raw.get("names")
    if names is None:
        count = int(raw.get("count", 0))
        if count < 1:
            raise InputError(where, None, "annotators", "give annotators.names or annotators.count")
        names = [f"annotator-{i + 1:02d}" for i in range(count)]
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise InputError(where, None, "annotators.names", "annotator names must be unique")
    per_item = int(raw.get("per_item", len(names)))
    if not 1 <= per_item <= len(names):
        raise InputError(where, None, "annotators.per_item", f"must be between 1 and {len(names)}")
    return names, per_item


def _assign(units: list[Unit], checks: list[Unit], annotators: list[str], per_item: int, rng: random.Random
            ) -> list[Assignment]:
    """Balanced overlap: each unit goes to the ``per_item`` least-loaded annotators (ties broken by the seed);
    every annotator gets every check; each queue is shuffled and each display order drawn."""
    load = {name: 0 for name in annotators}
    queues: dict[str, list[Unit]] = {name: [] for name in annotators}
    for unit in units:
        order = sorted(annotators, key=lambda n: (load[n], rng.random()))
        for name in order[:per_item]:
            load[name] += 1
            queues[name].append(unit)
    out = []
    for name in annotators:
        queue = queues[name][:]
        rng.shuffle(queue)
        for position, check in enumerate(checks):  # spread the checks through the queue
            at = (position + 1) * len(queue) // (len(checks) + 1) + position
            queue.insert(min(at, len(queue)), check)
        for seq, unit in enumerate(queue):
            shown = list(range(len(unit.systems)))
            if not unit.is_check:  # checks keep their planted position: the expected answer refers to it
                rng.shuffle(shown)
            out.append(Assignment(name, unit.key, seq, tuple(shown)))
    return out


def build_study(path: str | Path) -> Study:
    """Resolve a study file into a :class:`Study` (deterministic for the file and its inputs)."""
    path = Path(path)
    where = str(path)
    data = load_definition(path)
    task = str(data.get("task", ""))
    if task not in TASKS:
        raise InputError(where, None, "task", f"expected one of {', '.join(TASKS)}; got {task!r}")
    aspects = _aspects(data.get("aspects"), task, where)
    seed = int(data.get("seed", 12345))
    rng = random.Random(seed)
    records, sources = _read_systems(data.get("systems"), path.parent, str(data.get("format", "auto")),
                                     data.get("dataset"), where)
    gold = bool(data.get("gold", False))
    n_systems = len(records) + gold
    if n_systems < 2:
        raise InputError(where, None, "systems", "a study compares at least two responses per item")
    pairs = str(data.get("pairs", "all"))
    if task == "pairwise" and pairs != "all" and pairs not in list(records) + ([GOLD_NAME] if gold else []):
        raise InputError(where, None, "pairs", f"'all' or one of the systems; got {pairs!r}")
    order = list(next(iter(records.values())))
    shared = [i for i in order if all(i in by_id for by_id in records.values())]
    if not shared:
        raise InputError(where, None, "systems", "the prediction files share no record id")
    items = _sample_items(shared, data.get("items"), rng, where)
    units = _units(task, items, records, gold, pairs)
    checks_raw = data.get("attention_checks") or {}
    n_checks = int(checks_raw.get("count", 0)) if isinstance(checks_raw, dict) else int(checks_raw)
    checks = _attention_checks(task, aspects, 2 if task == "pairwise" else n_systems, n_checks, units[0])
    annotators, per_item = _annotators(data.get("annotators"), where)
    assignments = _assign(units, checks, annotators, per_item, rng)
    return Study(name=str(data.get("name") or path.stem), task=task, title=str(data.get("title") or data.get("name")
                 or path.stem), instructions=str(data.get("instructions", "")), aspects=aspects,
                 units=units + checks, annotators=annotators, assignments=assignments, seed=seed, sources=sources,
                 definition=data)


def check_passed(unit_expected: Mapping[str, Any], aspect: str, answer: Any) -> bool:
    """Whether an answer (by display position) to an attention check is the planted one."""
    want = unit_expected[aspect]
    if isinstance(want, str):
        return answer == want
    if "first" in want:
        return list(answer)[want["first"]] == 1
    position, value = want["position_value"]
    return list(answer)[position] == value
