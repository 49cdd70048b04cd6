"""IDL on the harness: MSL sequences of real ConvAI2 persons, the generation prompt, the extracted-objects cache, and
the three stages (extractor → MSL → DPOC) then generation through the CLI with tiny random models."""

from __future__ import annotations

import json
import math

import pytest

from pdg_eval_methods.common.data import load_convai2, sessions
from pdg_eval_methods.common.method import get_method, method_config
from pdg_eval_methods.idl import extractor
from pdg_eval_methods.idl.method import by_person
from pdg_eval.cli.main import main
from pdg_eval.errors import ConfigError
from pdg_eval.records import SELF
from tests.conftest import shared_or_skip

TINY = ["backbone=random:tiny-llama", "training.batch_size=4", "training.max_length=768", "training.logging_steps=1",
        "decoding.max_new_tokens=6", "decoding.batch_size=8", "decoding.max_prompt_tokens=600"]


def _idl(overrides=()):
    method = get_method("idl")(method_config("idl", None, TINY + list(overrides)))
    method.build()
    return method


@pytest.fixture(scope="module")
def valid_examples(convai2_valid):
    return load_convai2(convai2_valid)


def test_msl_sequences_of_real_persons_train_the_target_only_without_a_profile(valid_examples, tmp_path):
    method = _idl(["model.targets=all"])
    found = sessions(valid_examples)
    persons = [p for p, mine in by_person(found).items() if len(mine) == 3][:2]
    chosen = [e for e in valid_examples if e.speaker in persons]
    method.msl_plans(chosen, tmp_path)
    notes = method.notes["msl"]
    assert notes["persons"] == 2 and notes["dialogues"] == 6 and notes["sequences"] == 6  # every dialogue a target
    assert notes["references_per_sequence"] == 2 and notes["persons_whose_spi_texts_decide"] == 0
    tokenizer = method.tokenizer
    for sequence in method.sequences:
        assert {s.speaker for s in sequence.references} == {sequence.target.speaker}
        assert sequence.target.dialogue_id not in {s.dialogue_id for s in sequence.references}
        feature = method.features(sequence)[0]
        text = tokenizer.decode(feature["input_ids"])
        assert text.startswith("<|im_start|>system\n<|im_end|>\n")  # IDL's empty system prompt, not the default
        persona = next(e.persona for e in chosen if e.speaker == sequence.target.speaker)
        assert not any(sentence in text for sentence in persona)
        trained = tokenizer.decode([t for t, label in zip(feature["input_ids"], feature["labels"]) if label != -100])
        assert trained == sequence.target.turns[-1] + "<|im_end|>\n"  # loss_turns: last (the paper)
    every = _idl(["model.targets=all", "model.loss_turns=all"])
    every.msl_plans(chosen, tmp_path)
    feature = every.features(every.sequences[0])[0]
    target = every.sequences[0].target
    trained = tokenizer.decode([t for t, label in zip(feature["input_ids"], feature["labels"]) if label != -100])
    assert trained == "".join(f"{t}<|im_end|>\n" for t, r in zip(target.turns, target.roles) if r == SELF)


def test_msl_extracts_objects_only_where_the_spi_texts_decide(valid_examples, tmp_path, monkeypatch):
    method = _idl(["model.targets=all", "model.extractor=unused"])
    found = sessions(valid_examples)
    persons = by_person(found)
    big = next(p for p, mine in persons.items() if len(mine) >= 6)  # clustered: c = 3 needs 2c dialogues
    small = next(p for p, mine in persons.items() if len(mine) == 2)
    asked = []

    def find(inputs):
        asked.extend(" ".join(sentences) for sentences in inputs)
        return [[extractor.Triple("i", "like", sentences[0].split()[-1])] for sentences in inputs]

    monkeypatch.setattr(method, "persona_objects", lambda out, progress=False: extractor.PersonaObjects(find))
    method.msl_plans([e for e in valid_examples if e.speaker in (big, small)], tmp_path)
    notes = method.notes["msl"]
    assert notes["persons"] == 2 and notes["persons_whose_spi_texts_decide"] == 1 and notes["extractor"] == "unused"
    own = {" ".join(extractor.sentences_of(t)) for s in persons[big] for t, r in zip(s.turns, s.roles) if r == SELF}
    assert set(asked) == own  # every own turn of the clustered person, once, and nothing of the other person
    assert len(asked) == len(own)


def test_generation_prompt_holds_the_persons_other_dialogues_then_the_current_one(valid_examples):
    method = _idl()
    first = [e for e in valid_examples if e.dialogue_id == valid_examples[0].dialogue_id]
    method.prepare(valid_examples)
    example = next(e for e in valid_examples[:400] if len(method.pool[e.speaker]) >= 3)
    references = method.references_for(example)
    assert [s.dialogue_id for s in references] == [s.dialogue_id for s in method.pool[example.speaker]
                                                   if s.dialogue_id != example.dialogue_id]
    prompt = method.tokenizer.decode(method.prompt(references, example.context, 100_000))
    assert prompt.startswith("<|im_start|>system\n<|im_end|>\n") and prompt.endswith("<|im_start|>assistant\n")
    positions = [prompt.index(s.turns[0]) for s in references] + [prompt.rindex(example.context[0])]
    assert positions == sorted(positions)  # file order, the current dialogue last
    cut = method.tokenizer.decode(method.prompt(references, example.context, 300))
    assert cut.startswith("<|im_start|>system\n<|im_end|>\n") and len(method.tokenizer(cut)["input_ids"]) <= 300
    assert cut.endswith(example.context[-1] + "<|im_end|>\n<|im_start|>assistant\n")  # oldest turns went first
    capped = _idl(["model.max_references=1"])
    capped.prepare(valid_examples)
    assert capped.references_for(example) == references[:1]
    assert method.references_for(first[0]) == () or all(s.speaker == first[0].speaker
                                                       for s in method.references_for(first[0]))


def test_extracted_objects_are_memoised_and_kept_on_disk(tmp_path):
    calls = []

    def find(inputs):
        calls.append(inputs)
        return [[extractor.Triple("i", "like", s.split()[-1].strip(".")) for s in sentences] for sentences in inputs]

    path = tmp_path / "objects.jsonl"
    objects = extractor.PersonaObjects(find, path, {"extractor": "a"})
    objects.ensure(["i like dogs. i own a cat.", "i like tea", "i like tea"])
    assert calls == [[["i like dogs.", "i own a cat."], ["i like tea"]]]
    assert objects("i like dogs. i own a cat.") == {"dogs", "cat"} and len(calls) == 1
    assert objects("i am tall") == {"tall"} and len(calls) == 2
    again = extractor.PersonaObjects(find, path, {"extractor": "a"})
    assert again("i like tea") == {"tea"} and len(calls) == 2  # read back, nothing extracted
    other = extractor.PersonaObjects(find, path, {"extractor": "b"})
    assert other("i like tea") == {"tea"} and len(calls) == 3  # another extractor: extracted again
    assert extractor.sentences_of("hi!  how are you ? fine") == ["hi!", "how are you ?", "fine"]


def test_options_are_checked():
    for bad in ("model.stage=sft", "model.targets=last", "model.loss_turns=first", "model.max_references=-1",
                "model.fabrication_pick=top"):
        with pytest.raises(ConfigError):
            get_method("idl")(method_config("idl", None, TINY + [bad]))
    with pytest.raises(ConfigError):
        _idl().persona_objects(".")  # no model.extractor


@pytest.fixture(scope="module")
def cli_settings():
    train = shared_or_skip("data", "convai2_train_sample")
    valid = shared_or_skip("data", "convai2", "valid_self_original.txt")
    return [f"--set={item}" for item in TINY + [f"data.train={json.dumps({'path': str(train), 'split': 'train'})}",
                                               "data.train_dialogues=300", f"data.eval={valid}",
                                               "data.eval_dialogues=12", f"data.reference_pool={valid}"]]


def test_extractor_msl_dpoc_and_generation_through_the_cli(cli_settings, tmp_path):
    ext, msl, dpoc = tmp_path / "ext", tmp_path / "msl", tmp_path / "dpoc"
    assert main(["run", "idl", "train", "--out", str(ext), "-q", *cli_settings, "--set=model.stage=extractor",
                 "--set=model.extractor_samples=8", "--set=model.extractor_eval_samples=2",
                 "--set=model.extractor_training.batch_size=4"]) == 0
    notes = json.loads((ext / "run.json").read_text())["method_notes"]["extractor"]
    assert notes["sentences"] == 22566 and notes["train_samples"] == 8 and notes["eval_samples"] == 2
    assert 0.0 <= notes["sample_accuracy"] <= notes["triple_accuracy"] <= 1.0

    assert main(["run", "idl", "train", "--out", str(msl), "-q", *cli_settings, f"--set=model.extractor={ext}",
                 "--set=model.targets=all", "--set=training.max_steps=2"]) == 0
    record = json.loads((msl / "run.json").read_text())
    assert record["method_notes"]["msl"]["sequences"] == record["summary"]["features"] > 0

    dpoc_settings = [*cli_settings, "--set=model.stage=dpoc", "--set=model.dpoc_pairs=4",
                     "--set=model.dpoc_prompt_tokens=300", "--set=model.dpoc_training.logging_steps=1",
                     "--set=model.dpoc_training.max_steps=2"]
    assert main(["run", "idl", "train", "--out", str(dpoc), "-q", *dpoc_settings,
                 f"--set=model.extractor={ext}"]) == 2  # no --init-from
    assert main(["run", "idl", "train", "--out", str(dpoc), "-q", "--init-from", str(msl), *dpoc_settings]) == 2
    assert main(["run", "idl", "train", "--out", str(dpoc), "-q", "--init-from", str(msl), *dpoc_settings,
                 f"--set=model.extractor={ext}"]) == 0
    record = json.loads((dpoc / "run.json").read_text())
    summary, mix = record["summary"], record["method_notes"]["dpoc"]
    assert summary["objective"] == "preference" and summary["features"] == mix["pairs"] == mix["built"] == 4
    assert summary["losses"][0][1] == pytest.approx(math.log(2), abs=1e-4)  # ρ = 0: the reference is the MSL model
    assert sum(mix["kinds"].values()) == 4 and sum(mix["drawn"].values()) == 4
    assert record["config"]["training"]["lora"]["r"] == 8 and record["config"]["training"]["preference"][
        "loss"] == "dpoc_paper"

    preds = tmp_path / "preds.jsonl"
    assert main(["run", "idl", "generate", "--checkpoint", str(dpoc), "--out", str(preds), "-q", "--with-nll",
                 *cli_settings, "--set=model.max_references=1"]) == 0
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    run = json.loads(preds.with_name(preds.name + ".run.json").read_text())["method_notes"]["references"]
    assert run["examples"] == len(records) and run["max_references"] == 1
    assert run["with_references"] == sum(bool(r["meta"]["method"]["references"]) for r in records) > 0
    assert all(len(r["meta"]["method"]["references"]) <= 1 and r["nll"] for r in records)
