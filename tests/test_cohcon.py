"""Con/Coh-Con triple classifier: CLV's training triples, the input encoding, the recipe on a tiny random
backbone, and the cohcon metric (labels equal a plain forward pass; both label mappings; cache)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from importlib import resources

import pytest

from pdg_eval.cli.main import main
from pdg_eval.errors import ConfigError, InputError
from pdg_eval.metrics.base import build_metric
from pdg_eval.metrics.consistency import triple_scores
from pdg_eval.records import read_jsonl
from pdg_eval.models.triple_classifier import MARKERS, TripleExample, encode_triples, persona_text
from pdg_eval.scorers.cohcon import clv_examples, read_self_turns, split_dialogues
from tests.conftest import shared_or_skip
from tests.test_nli_metric import make_tiny_nli
from tests.test_startup import run_main

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def test_clv_training_triples():
    persona = ("i like dogs",)
    dialogue = [(persona, "s1", "t1"), (persona, "s2", "t2"), (persona, "s3", "t3")]
    got = [(e.context, e.response, e.label) for e in clv_examples(dialogue)]
    assert got == [("s1", "t1", 0), ("s1", "s2", 1), ("s1", "t2", 2),
                   ("s2", "t2", 0), ("s2", "s3", 1), ("s2", "t3", 2),
                   ("s3", "t3", 0)]


def test_self_turns_of_the_convai2_train_sample():
    folder = shared_or_skip("data", "convai2_train_sample")
    dialogues = read_self_turns(folder / "per-train.txt", folder / "src-train.txt", folder / "tgt-train.txt")
    assert len(dialogues) == 1356 and sum(map(len, dialogues)) == 10000
    assert dialogues[0][0][0][:2] == ("i like to remodel homes", "i like to go hunting")
    assert dialogues[0][1][1].startswith("i am ! for my hobby")
    train, valid = split_dialogues(dialogues, 0.1, seed=13)
    assert len(valid) == 136 and len(train) == 1220
    assert not {id(d) for d in train} & {id(d) for d in valid}
    assert split_dialogues(dialogues, 0.1, seed=13)[1] == valid  # deterministic


def test_self_turn_files_must_align(tmp_path):
    (tmp_path / "p").write_text("a\nb\n")
    (tmp_path / "s").write_text("x\n")
    (tmp_path / "t").write_text("y\nz\n")
    with pytest.raises(InputError, match="differ in length"):
        read_self_turns(tmp_path / "p", tmp_path / "s", tmp_path / "t")


def test_encoding_puts_markers_and_segments_in_clv_order(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_nli(tmp_path / "bb", seed=0))
    tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})
    example = TripleExample(("i have a dog.", "i like tea"), "how are you ?", "fine thanks")
    enc = encode_triples(tokenizer, [example, TripleExample(("a",), "b", "c")], max_length=256)
    ids = enc["input_ids"][0].tolist()
    assert tokenizer.convert_ids_to_tokens(ids[0]) == "[CLS]"
    marks = [ids.index(tokenizer.convert_tokens_to_ids(m)) for m in MARKERS]
    assert marks == sorted(marks) and marks[-1] == len(ids) - 1
    segments = enc["segment_ids"][0].tolist()
    assert segments == [0] * (marks[0] + 1) + [1] * (marks[1] - marks[0]) + [2] * (marks[2] - marks[1])
    assert tokenizer.decode(ids[1:marks[0]]) == "i have a dog. i like tea."
    assert enc["attention_mask"][1].sum() < len(ids) and enc["input_ids"].shape == enc["segment_ids"].shape
    assert encode_triples(tokenizer, [example], max_length=5)["input_ids"].shape[1] == 5
    assert persona_text(["i have a dog.", "i like tea", " "]) == "i have a dog . i like tea ."


@pytest.fixture()
def tiny_cohcon(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohcon")
    data = shared_or_skip("data", "convai2_train_sample")
    files = []
    for kind in ("per", "src", "tgt"):
        lines = (data / f"{kind}-train.txt").read_text(encoding="utf-8").splitlines()[:60]
        (folder / kind).write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(str(folder / kind))
    backbone = make_tiny_nli(folder / "backbone", seed=0)
    out = folder / "scorer"
    assert main(["scorers", "train", "cohcon", "--out", str(out), "--backbone", backbone, "--train", ",".join(files),
                 "--epochs", "1", "--batch-size", "16", "-q"]) == 0
    return out, files


def test_train_and_eval_cohcon_cli(tiny_cohcon, capsys):
    out, files = tiny_cohcon
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["dialogues_train"] + manifest["split"]["dialogues_valid"] == 9
    assert manifest["labels"] == ["coherent_consistent", "other_speaker", "same_persona_other_turn"]
    assert sum(map(sum, manifest["heldout"]["confusion_matrix"]["rows_gold_cols_predicted"])) == \
        manifest["split"]["examples_valid"]
    capsys.readouterr()
    assert main(["scorers", "eval", "cohcon", "--model", str(out), "--data", ",".join(files)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 60 * 3 - 2 * 9  # the last turn of each of the 9 dialogues has one


def test_cohcon_metric_labels_mappings_and_cache(tiny_cohcon, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("PDG_EVAL_CACHE", str(tmp_path / "cache.sqlite"))
    out, _ = tiny_cohcon
    records = list(read_jsonl(EXAMPLE))
    metric = build_metric(f"cohcon:released,model={out}")
    labels = metric.items_stats(records)
    example = TripleExample(tuple(records[3].persona), records[3].context[-1], records[3].response)
    with torch.inference_mode():
        enc = encode_triples(metric.model.tokenizer, [example], 256)
        assert labels[3] == int(metric.model.model(**enc).logits.argmax(-1))
    released = metric.aggregate(labels)
    assert released == {"con": triple_scores(labels, "released")["consistency"],
                        "coh-con": triple_scores(labels, "released")["consistency-coherence"]}
    training = build_metric(f"cohcon:training,model={out}")
    calls = training.model.forward_calls
    assert training.items_stats(records) == labels and training.model.forward_calls == calls  # served from cache
    assert training.aggregate(labels)["coh-con"] == labels.count(0) / len(labels)
    sig = str(training.signature())
    assert sig.startswith("cohcon:training|tok:model|context:last_turn") and training.model.weights_sha256[:12] in sig


def test_cohcon_presets_need_a_model(tiny_cohcon, capsys):
    out, _ = tiny_cohcon
    assert main(["score", EXAMPLE, "-q", "--preset", "clv"]) == 0
    assert "skipped: cohcon:released: needs a Con/Coh-Con triple classifier: pass --cohcon-model DIR" in capsys.readouterr().out
    assert main(["score", EXAMPLE, "-q", "--preset", "clv", "--cohcon-model", str(out), "-m", "cohcon:training"]) == 0
    text = capsys.readouterr().out
    assert "cohcon:released|tok:model" in text and "cohcon:training|tok:model" in text and "skipped: cohcon" not in text
    with pytest.raises(ConfigError, match="cohcon needs a triple classifier"):
        build_metric("cohcon")
    with pytest.raises(InputError, match="not a pdg-eval triple classifier"):
        build_metric(f"cohcon,model={make_tiny_nli(out.parent / 'plain', seed=0)}")


#: build a metric from its spec, print its signature and which model libraries were imported
SIGN = """
import sys
from pdg_eval.metrics.base import build_metric
print(build_metric(sys.argv[1]).signature())
print(sorted({"torch", "transformers"} & {name.split(".")[0] for name in sys.modules}))
"""


def test_model_metrics_sign_and_compare_without_loading_the_model(tiny_cohcon, tmp_path, monkeypatch):
    """A C-score / cohcon metric built from its spec names its model by the weights' sha256 read from the files, and
    `compare` of stored score JSONs re-aggregates their per-item statistics: neither loads the model nor imports
    torch or transformers (only scoring does)."""
    from pdg_eval.models import runtime, triple_classifier

    monkeypatch.setenv("PDG_EVAL_CACHE", str(tmp_path / "cache.sqlite"))
    cohcon_dir, _ = tiny_cohcon
    nli_dir = make_tiny_nli(tmp_path / "nli", seed=0)
    specs = [f"c-score:chanliang,model={nli_dir}", f"cohcon:released,model={cohcon_dir}"]
    records = list(read_jsonl(EXAMPLE))
    jsons = []
    for name, shift in (("a", 0), ("b", 1)):  # b: every response moved to the next item
        system = tmp_path / f"{name}.jsonl"
        system.write_text("".join(json.dumps(dataclasses.replace(r, response=records[(i + shift) % len(records)]
                                                                 .response).to_json()) + "\n"
                                  for i, r in enumerate(records)), encoding="utf-8")
        jsons.append(str(tmp_path / f"{name}.json"))
        assert main(["score", str(system), *(x for spec in specs for x in ("-m", spec)), "--json", jsons[-1],
                     "-q"]) == 0
    stored = json.loads((tmp_path / "a.json").read_text())
    signatures = [m["signature"]["string"] for m in stored["metrics"]]
    assert [s.split("|")[0] for s in signatures] == ["c-score:chanliang", "cohcon:released"]

    def refuse(*args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(runtime, "load_pair_classifier", refuse)
    monkeypatch.setattr(triple_classifier, "load_triple_classifier", refuse)
    for spec, signature, folder in zip(specs, signatures, (nli_dir, cohcon_dir)):
        assert str(build_metric(spec).signature()) == signature
        assert f"sha256:{runtime.weights_sha256(str(folder))[:12]}" in signature
    assert main(["compare", *jsons, "--resamples", "50", "--ci-resamples", "20", "-f", "json", "-q"]) == 0

    for spec, signature in zip(specs, signatures):
        shown = subprocess.run([sys.executable, "-c", SIGN, spec], check=True, capture_output=True, text=True,
                               timeout=120).stdout.splitlines()
        assert shown == [signature, "[]"]
    code, modules = run_main(["compare", *jsons, "--resamples", "50", "--ci-resamples", "20", "-q"], tmp_path)
    assert code == 0 and not modules & {"torch", "transformers"}, sorted(modules & {"torch", "transformers"})
