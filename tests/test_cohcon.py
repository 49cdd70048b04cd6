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
from pdg_eval.models.triple_classifier import TripleExample, encode_triples
from pdg_eval.scorers.cohcon import (both_speakers_self_turns, clv_examples, read_dialogue_source, read_self_turns,
                                     without_held_out)
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


def test_self_turns_of_both_speakers_of_the_convai2_test_dialogues():
    dialogues = both_speakers_self_turns(shared_or_skip("data", "consistency", "dnli_triples_convai2",
                                                        "test_both_original_final.txt"))
    mine, theirs = dialogues[0], dialogues[1]
    assert mine[0][0][0].startswith("i") and mine[0][0] != theirs[0][0]  # the two personas
    assert [turn[1] for turn in mine[1:]] == [turn[2] for turn in theirs]  # the partner answers my earlier line
    assert [turn[2] for turn in mine[:len(theirs)]] == [turn[1] for turn in theirs]


def test_self_turns_of_synthetic_persona_chat_rows(tmp_path):
    import csv

    path = tmp_path / "spc.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user 1 personas", "user 2 personas", "Best Generated Conversation"])
        writer.writerow(["I like cats.\nI am tall.", "I fish.",
                         "User 1: Hi, I'm Ann!\nUser 2: Hello.\nUser 2: Do you fish?\n[Later]\nUser 1: No; I'm tall.\n"
                         "User 2: OK"])
    dialogues = read_dialogue_source(str(path))
    ann, bob = ("i like cats .", "i am tall ."), ("i fish .",)
    assert dialogues == [[(ann, "hello . do you fish ?", "no ; i'm tall .")],
                         [(bob, "hi , i'm ann !", "hello . do you fish ?"), (bob, "no ; i'm tall .", "ok")]]
    assert [(e.response, e.label) for e in clv_examples(dialogues[1])] == [
        ("hello . do you fish ?", 0), ("no ; i'm tall .", 1), ("ok", 2), ("ok", 0)]
    path.write_text("user 1 personas,Best Generated Conversation\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        read_dialogue_source(str(path))


def test_self_turns_of_the_synthetic_persona_chat_valid_file():
    dialogues = read_dialogue_source(str(shared_or_skip("data", "synthetic_persona_chat",
                                                        "Synthetic-Persona-Chat_valid.csv")))
    assert len(dialogues) == 2000 and sum(map(len, dialogues)) == 26734
    assert dialogues[0][:2] == [
        (("i love to bake cookies .", "i have a dogs .", "the county wide bake sale is where i feel most at home .",
          "knitting is my passion ."), "hello !", "what is your favorite thing to do ?"),
        (("i love to bake cookies .", "i have a dogs .", "the county wide bake sale is where i feel most at home .",
          "knitting is my passion ."), "i like to move objects with my mind .",
         "that sounds like a lot of fun ! i've always wanted to be able to do that .")]


def test_training_triples_share_nothing_with_held_out_dialogues():
    persona, other = ("i like dogs",), ("i hate cats",)
    held_out = [[(persona, "Hi  there", "hello")]]
    examples = [TripleExample(persona, "a", "b"), TripleExample(other, "hi there", "b"),
                TripleExample(other, "a", "HELLO"), TripleExample(other, "a", "b", 2)]
    assert without_held_out(examples, held_out) == [TripleExample(other, "a", "b", 2)]


def test_self_turn_files_must_align(tmp_path):
    (tmp_path / "p").write_text("a\nb\n")
    (tmp_path / "s").write_text("x\n")
    (tmp_path / "t").write_text("y\nz\n")
    with pytest.raises(InputError, match="differ in length"):
        read_self_turns(tmp_path / "p", tmp_path / "s", tmp_path / "t")


def test_encoding_tokenizes_each_distinct_text_once_and_indexes_it(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_nli(tmp_path / "bb", seed=0))
    first = TripleExample(("i have a dog.", "i like tea"), "how are you ?", "fine thanks")
    second = TripleExample(("i like tea", " "), "fine thanks", "")
    enc = encode_triples(tokenizer, [first, second], max_length=64, chunk_size=2)
    rows = [row for ids, _ in enc["chunks"] for row in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    texts = [rows[k] for k in enc["position"].tolist()]
    assert texts == ["how are you?", "fine thanks", "", "i have a dog.", "i like tea"]
    assert [len(ids) for ids, _ in enc["chunks"]] == [2, 2, 1]  # shortest texts first, two per chunk
    assert [ids.shape[1] for ids, _ in enc["chunks"]] == sorted(ids.shape[1] for ids, _ in enc["chunks"])
    assert enc["context_index"].tolist() == [0, 1] and enc["response_index"].tolist() == [1, 2]
    assert enc["persona_index"].tolist() == [[3, 4], [4, 0]]  # the blank persona sentence is dropped
    assert enc["persona_mask"].tolist() == [[True, True], [True, False]]
    assert max(ids.shape[1] for ids, _ in encode_triples(tokenizer, [first], max_length=3)["chunks"]) == 3


def test_siamese_logits_equal_the_features_read_by_hand(tmp_path):
    import torch

    from pdg_eval.models.triple_classifier import new_triple_model

    torch.manual_seed(0)
    tokenizer, model = new_triple_model(make_tiny_nli(tmp_path / "bb", seed=0), head_hidden=8)
    model.eval()
    example = TripleExample(("i have a dog.", "i like tea"), "how are you ?", "fine thanks , i walk my dog")
    with torch.inference_mode():
        logits = model(**encode_triples(tokenizer, [example], 64)).logits[0]

        def vector(text):
            enc = tokenizer([text], return_tensors="pt")
            return model.embed(enc["input_ids"], enc["attention_mask"])[0]

        c, r = vector(example.context), vector(example.response)
        personas = torch.stack([vector(s) for s in example.persona])
        cosines = personas @ r
        p = (torch.softmax(cosines / 0.05, 0).unsqueeze(-1) * personas).sum(0)
        features = torch.cat([c, r, c * r, (c - r).abs(), p * r, (p - r).abs(),
                              torch.stack([c @ r, cosines.max(), cosines.mean()])])
        assert torch.allclose(model.head(features), logits, atol=1e-5)


def test_cross_pair_architecture_adds_the_encoded_context_response_pair(tmp_path):
    import torch

    from pdg_eval.models.triple_classifier import new_triple_model

    torch.manual_seed(0)
    tokenizer, model = new_triple_model(make_tiny_nli(tmp_path / "bb", seed=0), 8, "siamese-cross-v2")
    model.eval()
    example = TripleExample(("i have a dog.",), "how are you ?", "fine thanks , i walk my dog")
    enc = encode_triples(tokenizer, [example], 64, cross_pair=True)
    ids, mask, types = enc["pair"]
    assert tokenizer.decode(ids[0]) == "[CLS] how are you? [SEP] fine thanks, i walk my dog [SEP]"
    assert types[0].tolist() == [0] * 6 + [1] * 8 and mask[0].all()
    short = encode_triples(tokenizer, [example], 3, cross_pair=True)["pair"][0]
    assert short.shape[1] == 6  # each side cut: 2 * max_length tokens in all
    head_input = {}
    model.head.register_forward_pre_hook(lambda _, args: head_input.setdefault("x", args[0]))
    with torch.inference_mode():
        logits = model(**enc).logits[0]
        width = model.encoder.config.hidden_size
        assert head_input["x"].shape[1] == 7 * width + 3
        assert torch.allclose(head_input["x"][0, -width:], model.embed(ids, mask, types)[0], atol=1e-6)
        assert torch.allclose(model.head(head_input["x"])[0], logits, atol=1e-6)


@pytest.fixture()
def tiny_cohcon(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohcon")
    files, valid = first_turns_of_the_train_sample(folder, train=60, valid=30)
    backbone = make_tiny_nli(folder / "backbone", seed=0)
    out = folder / "scorer"
    assert main(["scorers", "train", "cohcon", "--out", str(out), "--backbone", backbone, "--train", ",".join(files),
                 "--valid", ",".join(valid), "--epochs", "1", "--batch-size", "16", "-q"]) == 0
    return out, files


def test_train_and_eval_cohcon_cli(tiny_cohcon, capsys):
    out, files = tiny_cohcon
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["train"][0]["dialogues"] == 9 and manifest["data"]["valid"]["dialogues"] == 5
    assert manifest["labels"] == ["coherent_consistent", "other_speaker", "same_persona_other_turn"]
    heldout = manifest["heldout"]["convai2_valid_clv"]
    assert sum(map(sum, heldout["confusion_matrix"]["rows_gold_cols_predicted"])) == \
        manifest["data"]["valid"]["examples"] == 30 * 3 - 2 * 5
    assert set(heldout["recall"]) == set(manifest["labels"])
    assert manifest["backbone_sha256"] and manifest["weight_files"]["adapter_model.safetensors"] > 0
    assert not (out / "training-checkpoint.pt").exists()
    capsys.readouterr()
    assert main(["scorers", "eval", "cohcon", "--model", str(out), "--data", ",".join(files)]) == 0
    report = json.loads(capsys.readouterr().out)["sets"][",".join(files)]
    assert report["n"] == 60 * 3 - 2 * 9  # the last turn of each of the 9 dialogues has one


def first_turns_of_the_train_sample(folder, train: int = 20, valid: int = 20) -> tuple[list[str], list[str]]:
    """PER, SRC and TGT files of the first lines of the ConvAI2 train sample's train and valid splits."""
    data = shared_or_skip("data", "convai2_train_sample")
    files, valid_files = [], []
    for kind in ("per", "src", "tgt"):
        for split, size, names in (("train", train, files), ("val", valid, valid_files)):
            lines = (data / f"{kind}-{split}.txt").read_text(encoding="utf-8").splitlines()[:size]
            (folder / f"{kind}-{split}").write_text("\n".join(lines) + "\n", encoding="utf-8")
            names.append(str(folder / f"{kind}-{split}"))
    return files, valid_files


def test_cross_pair_classifier_trains_saves_and_loads(tmp_path, capsys):
    import torch

    from pdg_eval.models.triple_classifier import TripleClassifier

    files, valid = first_turns_of_the_train_sample(tmp_path)
    out, backbone = tmp_path / "scorer", make_tiny_nli(tmp_path / "bb", seed=0)
    assert main(["scorers", "train", "cohcon", "--out", str(tmp_path / "leaky"), "--backbone", backbone,
                 "--train", ",".join(files), "--valid", ",".join(files), "-q"]) == 2
    assert "no training examples (none left after removing the held-out data's texts?)" in capsys.readouterr().err
    assert main(["scorers", "train", "cohcon", "--out", str(out), "--backbone", backbone,
                 "--train", ",".join(files), "--valid", ",".join(valid), "--epochs", "1", "--batch-size", "16",
                 "--architecture", "siamese-cross-v2", "-q"]) == 0
    assert json.loads((out / "manifest.json").read_text())["architecture"] == "siamese-cross-v2"
    classifier = TripleClassifier(str(out))
    assert classifier.model.cross_pair and classifier.model.head[0].in_features == 7 * 32 + 3
    example = TripleExample(("i have a dog.",), "how are you ?", "fine thanks , i walk my dog")
    with torch.inference_mode():
        direct = torch.softmax(classifier.model(**encode_triples(classifier.tokenizer, [example], 64,
                                                                 cross_pair=True)).logits, -1)[0]
    assert classifier.predict_proba([example])[0] == pytest.approx(direct.tolist(), abs=1e-5)
    assert main(["scorers", "train", "nli", "--out", str(tmp_path / "nli"), "--architecture", "siamese-cross-v2"]) == 2
    assert "--architecture is an option of `scorers train cohcon`" in capsys.readouterr().err


def test_clv_cross_encoding_marks_each_part_and_cuts_to_length(tmp_path):
    from transformers import AutoTokenizer

    from pdg_eval.models.triple_classifier import encode_cross_triples

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_nli(tmp_path / "bb", seed=0))
    first = TripleExample(("i have a dog.", " ", "i like tea"), "how are you ?", "fine")
    second = TripleExample((), "hi", "")
    enc = encode_cross_triples(tokenizer, [first, second], max_length=64)
    assert tokenizer.decode(enc["input_ids"][0]) == "[CLS] i have a dog. i like tea [SEP] how are you? [SEP] fine [SEP]"
    assert enc["segment_ids"][0].tolist() == [0] * 10 + [1] * 5 + [2] * 2
    assert tokenizer.decode(enc["input_ids"][1][:5]) == "[CLS] [SEP] hi [SEP] [SEP]"
    assert enc["attention_mask"][1].tolist() == [1] * 5 + [0] * 12
    assert enc["segment_ids"][1].tolist()[:5] == [0, 0, 1, 1, 2]
    short = encode_cross_triples(tokenizer, [first], max_length=3)  # 12 tokens: context 3, response 1, persona 4
    assert tokenizer.decode(short["input_ids"][0]) == "[CLS] i have a dog [SEP] how are you [SEP] fine [SEP]"


def test_clv_cross_model_starts_as_its_backbone_then_trains_saves_and_loads(tmp_path, capsys, monkeypatch):
    import torch

    from pdg_eval.models.triple_classifier import TripleClassifier, encode_cross_triples, new_triple_model

    backbone = make_tiny_nli(tmp_path / "bb", seed=0)
    torch.manual_seed(0)
    tokenizer, model = new_triple_model(backbone, head_hidden=8, architecture="clv-cross-v1")
    model.eval()
    example = TripleExample(("i have a dog.",), "how are you ?", "fine thanks , i walk my dog")
    enc = encode_cross_triples(tokenizer, [example], 64)
    with torch.inference_mode():  # a zero segment embedding: the backbone's own embeddings
        hidden = model.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        assert torch.allclose(model(**enc).logits[0], model.head(hidden[0].mean(0)), atol=1e-5)
    files, valid = first_turns_of_the_train_sample(tmp_path)
    out = tmp_path / "scorer"
    assert main(["scorers", "train", "cohcon", "--out", str(out), "--backbone", backbone, "--train", ",".join(files),
                 "--valid", ",".join(valid), "--epochs", "2", "--batch-size", "8", "--max-length", "16",
                 "--architecture", "clv-cross-v1", "--device", "cpu", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"] == "clv-cross-v1" and manifest["device"].startswith("cpu")
    assert manifest["recipe"]["max_length"] == 16
    classifier = TripleClassifier(str(out), max_length=16)
    assert classifier.model.segment.weight.abs().sum() > 0  # trained, saved and loaded
    with torch.inference_mode():
        direct = torch.softmax(classifier.model(**encode_cross_triples(classifier.tokenizer, [example], 16)).logits,
                               -1)[0]
    assert classifier.predict_proba([example])[0] == pytest.approx(direct.tolist(), abs=1e-3)  # fp16 head, no cast
    capsys.readouterr()  # `scorers eval` cuts the inputs as the classifier was trained (16 tokens, not 64)
    lengths, original = [], TripleClassifier.__init__
    monkeypatch.setattr(TripleClassifier, "__init__",
                        lambda self, *a, **k: lengths.append(k["max_length"]) or original(self, *a, **k))
    assert main(["scorers", "eval", "cohcon", "--model", str(out), "--data", ",".join(valid), "--limit", "12"]) == 0
    report = json.loads(capsys.readouterr().out)["sets"][",".join(valid)]
    examples = [e for d in read_dialogue_source(",".join(valid)) for e in clv_examples(d)][:12]
    predicted = [max(range(3), key=p.__getitem__) for p in classifier.predict_proba(examples)]
    assert lengths == [16] and report["n"] == 12 and report["confusion_matrix"]["rows_gold_cols_predicted"] == [
        [sum(1 for e, k in zip(examples, predicted) if (e.label, k) == (gold, label)) for label in range(3)]
        for gold in range(3)]
    with pytest.raises(ConfigError, match="trained on inputs cut at max_length=16, not 64: add max_length=16"):
        build_metric(f"cohcon:released,model={out}")
    spec = f"cohcon:released,max_length=16,model={out}"
    assert build_metric(f"cohcon:released,model={out},max_length=16").spec == spec


def test_cohcon_metric_labels_mappings_and_cache(tiny_cohcon, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("PDG_EVAL_CACHE", str(tmp_path / "cache.sqlite"))
    out, _ = tiny_cohcon
    records = list(read_jsonl(EXAMPLE))
    metric = build_metric(f"cohcon:released,model={out}")
    labels = metric.items_stats(records)
    example = TripleExample(tuple(records[3].persona), records[3].context[-1], records[3].response)
    with torch.inference_mode():
        enc = encode_triples(metric.model.tokenizer, [example], 64)
        assert labels[3] == int(metric.model.model(**enc).logits.argmax(-1))
    released = metric.aggregate(labels)
    assert released == {"con": triple_scores(labels, "released")["consistency"],
                        "coh-con": triple_scores(labels, "released")["consistency-coherence"]}
    training = build_metric(f"cohcon:training,model={out}")
    calls = training.model.forward_calls
    assert training.items_stats(records) == labels and training.model.forward_calls == calls  # served from cache
    assert training.aggregate(labels)["coh-con"] == labels.count(0) / len(labels)
    sig = str(training.signature())
    backbone = json.loads((out / "manifest.json").read_text())["backbone_sha256"]
    assert sig.startswith(f"cohcon:training|tok:model|arch:siamese-meanpool-v1|backbone:{backbone[:12]}|context:last_turn")
    assert f"sha256:{training.model.weights_sha256[:12]}" in sig  # the adapter's


def test_cohcon_presets_use_the_shipped_classifier_or_the_one_given(tiny_cohcon, capsys):
    out, _ = tiny_cohcon
    assert main(["score", EXAMPLE, "-q", "--preset", "clv"]) == 0
    text = capsys.readouterr().out
    assert "cohcon:released|tok:model" in text and "model:pdg-eval/cohcon-minilm-l6" in text and "skipped: cohcon" not in text
    assert main(["score", EXAMPLE, "-q", "--preset", "clv", "--cohcon-model", str(out), "-m", "cohcon:training"]) == 0
    text = capsys.readouterr().out
    assert "cohcon:released|tok:model" in text and "cohcon:training|tok:model" in text and "skipped: cohcon" not in text
    assert f"model:{out}" in text and "pdg-eval/cohcon-minilm-l6" not in text
    with pytest.raises(ConfigError, match="option model= needs a value"):
        build_metric("cohcon,model=")
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


def test_an_empty_response_is_neither_without_asking_the_model(tiny_cohcon):
    out, _ = tiny_cohcon
    metric = build_metric(f"cohcon:training,model={out}")
    records = [dataclasses.replace(r, response="") for r in list(read_jsonl(EXAMPLE))[:3]]
    assert metric.items_stats(records) == [1, 1, 1] and "model" not in metric.__dict__
    assert metric.aggregate(metric.items_stats(records)) == {"con": 0.0, "coh-con": 0.0}
    assert "empty:neither" in str(metric.signature())
