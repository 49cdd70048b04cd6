"""pdg_eval_methods.common.data: every dataset loader on the real files, checked against independent counts."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import sys
import types
from collections import Counter

import pytest

from pdg_eval_methods.common import data as D
from pdg_eval_methods.common.data import Example, speaker_id
from pdg_eval.errors import ConfigError, InputError
from pdg_eval.readers.parlai import convai2_records
from pdg_eval.records import record_from_dict
from tests.conftest import shared_or_skip


def convai2_path(name: str):
    return shared_or_skip("data", "convai2", name)


@pytest.fixture(scope="module")
def self_orig() -> list[Example]:
    return D.load_convai2(convai2_path("valid_self_original.txt"))


@pytest.fixture(scope="module")
def sample_dir():
    return shared_or_skip("data", "convai2_train_sample")


def raw_dialogues(path) -> list[dict]:
    """A tiny independent ParlAI parse: persona sets and turn counts per dialogue."""
    out: list[dict] = []
    for line in path.read_text("utf-8").splitlines():
        number, _, rest = line.partition(" ")
        if number == "1":
            out.append({"persona": [], "turns": 0})
        if "\t" in rest:
            out[-1]["turns"] += 1
        elif rest.startswith("your persona: "):
            out[-1]["persona"].append(rest[len("your persona: "):])
    return out


# ------------------------------------------------------------------------------------------------ ConvAI2


def test_convai2_self_original(self_orig):
    assert len(self_orig) == 7801
    assert len(D.dialogues(self_orig)) == 1000
    assert all(len(ex.candidates) == 20 and ex.candidates[-1] == ex.response for ex in self_orig)
    assert len({ex.id for ex in self_orig}) == 7801
    first = self_orig[0]
    assert first.persona == ("i read twenty books a year.", "i'm a stunt double as my second job.",
                             "i only eat kosher.", "i was raised in a single parent household.")
    assert first.context == ("hello what are doing today ?",)
    assert first.response == "i am good , i just got off work and tired , i have two jobs ."
    assert (first.id, first.dialogue_id, first.turn, first.line, first.language) == ("0-0", "0", 0, 5, "en")
    second = self_orig[1]
    assert second.context == ("hello what are doing today ?", first.response, "i just got done watching a horror movie")
    assert second.partner_persona == ()


def test_convai2_speakers_match_independent_count(self_orig):
    raw = raw_dialogues(convai2_path("valid_self_original.txt"))
    assert len(raw) == 1000 and sum(d["turns"] for d in raw) == 7801
    per_person = Counter(tuple(sorted(s.strip() for s in d["persona"])) for d in raw)
    assert (len(per_person), sum(n >= 2 for n in per_person.values())) == (680, 198)
    sessions = D.sessions_by_speaker(self_orig)
    assert len(sessions) == 680
    assert sum(len(ids) >= 2 for ids in sessions.values()) == 198
    assert sorted(len(ids) for ids in sessions.values()) == sorted(per_person.values())
    assert all(ids == sorted(set(ids), key=int) for ids in sessions.values())  # first-seen order, no repeats


def test_speaker_id_definition():
    persona = [" b likes tea. ", "a has a cat."]
    expected = "spk-" + hashlib.sha1(b"a has a cat.\nb likes tea.").hexdigest()[:12]
    assert speaker_id(persona) == expected == speaker_id(list(reversed(persona)))


def test_convai2_both_original_and_revised():
    original = D.load_convai2(convai2_path("valid_both_original_no_cands.txt"))
    revised = D.load_convai2(convai2_path("valid_both_revised_no_cands.txt"))
    for examples in (original, revised):
        assert len(examples) == 7801
        assert all(ex.candidates is None and ex.partner_persona for ex in examples)
    assert original[0].partner_persona[0] == "horror movies are my favorites."
    assert revised[0].persona[0] == "i've been know to finish almost two dozen novels in a twelve month period."
    by_orig, by_rev = D.dialogues(original), D.dialogues(revised)
    assert by_orig.keys() == by_rev.keys()
    assert all(by_orig[k][0].persona != by_rev[k][0].persona for k in by_orig)  # every dialogue is rephrased
    assert all(a.context == b.context and a.response == b.response for a, b in zip(original, revised))


def test_records_equal_parlai_reader(self_orig):
    path = convai2_path("valid_self_original.txt")
    records = list(convai2_records(path))
    assert len(records) == len(self_orig) == 7801
    fields = ("id", "persona", "context", "response", "references", "candidates", "gold_index")
    for ex, expected in zip(self_orig, records):
        got = ex.to_record()
        assert all(getattr(got, f) == getattr(expected, f) for f in fields), ex.id
    assert {ex.to_record().gold_index for ex in self_orig} == {19}


def test_to_record_options(self_orig):
    rec = self_orig[3].to_record(response="hello there", system="sys", meta={"k": 1})
    gold = self_orig[3].response
    assert (rec.response, rec.references, rec.system, rec.meta) == ("hello there", [gold], "sys", {"k": 1})
    assert (rec.source, rec.line, rec.language) == (self_orig[3].source, self_orig[3].line, "en")
    again = record_from_dict(rec.to_json())  # schema-valid
    assert again.gold_index == 19 and again.candidates == list(self_orig[3].candidates)
    plain = Example(id="x", persona=["p."], context=["c"], response="r", dialogue_id="d", turn=0, speaker="s")
    assert plain.persona == ("p.",) and plain.to_record().gold_index is None and plain.to_record().source == "<memory>"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.response = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Example(id="x", persona=(), context=(), response="r", dialogue_id="d", turn=0, speaker="s", language="fr")


# ------------------------------------------------------------------------------------------------ RCDG sample


def test_sample_train(sample_dir):
    train = D.load_convai2_sample(sample_dir, "train")
    assert len(train) == 10000
    per = (sample_dir / "per-train.txt").read_text("utf-8").splitlines()
    runs = 1 + sum(per[i] != per[i - 1] for i in range(1, len(per)))
    assert len(D.dialogues(train)) == runs == 1356
    third = D.dialogues(train)["train-0"][2]
    assert third.id == "train-0-2" and third.turn == 2 and third.line == 3
    assert third.persona == ("i like to remodel homes", "i like to go hunting", "i like to shoot a bow",
                             "my favorite holiday is halloween")
    assert third.context == (
        "hi , how are you doing ? i'm getting ready to do some cheetah chasing to stay in shape .",
        "you must be very fast . hunting is one of my favorite hobbies .",
        "i am ! for my hobby i like to do canning or some whittling .",
        "i also remodel homes when i am not out bow hunting .",
        "that's neat . when i was in high school i placed 6th in 100m dash !",
    )
    assert third.response == "that's awesome . do you have a favorite season or time of year ?"


def test_sample_val_rebuilds_convai2(sample_dir, self_orig):
    val = D.load_convai2_sample(sample_dir, "val")
    assert len(val) == 7801 and len(D.dialogues(val)) == 1000
    assert [ex.context for ex in val] == [ex.context for ex in self_orig]
    assert [ex.response for ex in val] == [ex.response for ex in self_orig]
    assert [ex.turn for ex in val] == [ex.turn for ex in self_orig]
    assert all(v.persona == tuple(s.rstrip(".") for s in c.persona) for v, c in zip(val, self_orig))
    assert val[0].id == "val-0-0" and val[0].dialogue_id == "val-0"


# ------------------------------------------------------------------------------------------------ CLV / MORPHEUS


def clv_block_count(path) -> int:
    """CLV's own reader splits the file text on "\\n[SEP]\\n"."""
    return len(path.read_text("utf-8").replace("\r\n", "\n").strip("\n").split("\n[SEP]\n"))


@pytest.mark.parametrize(("folder", "name", "blocks", "language"), [
    ("clv_samples", "Person_Dialog_EN_train.txt", 11, "en"),
    ("clv_samples", "Person_Dialog_EN_test.txt", 16, "en"),
    ("clv_samples", "Person_Dialog_ZH_train.txt", 37, "zh"),
    ("clv_samples", "Person_Dialog_ZH_test.txt", 35, "zh"),
    ("morpheus_samples", "Person_Dialog_EN.txt", 4, "en"),
    ("morpheus_samples", "Person_Dialog_ZH_train.txt", 7, "zh"),
])
def test_clv_blocks(folder, name, blocks, language):
    path = shared_or_skip("data", "zh", folder, name)
    examples = D.load_clv(path)
    # [SEP] lines number one less than the blocks: the last block is not followed by [SEP].
    separators = sum(line.strip() == "[SEP]" for line in path.read_text("utf-8").splitlines())
    assert len(examples) == clv_block_count(path) == separators + 1 == blocks
    assert {ex.language for ex in examples} == {language}
    end = "。" if language == "zh" else "."
    assert all(s.endswith(end) for ex in examples for s in ex.persona)
    assert all(ex.response and "<|endoftext|>" not in ex.response + "".join(ex.context) for ex in examples)
    assert [ex.dialogue_id for ex in examples] == [str(i) for i in range(blocks)]


def test_clv_content_by_hand():
    en = D.load_clv(shared_or_skip("data", "zh", "clv_samples", "Person_Dialog_EN_train.txt"))
    assert en[0].persona == ("i have amazing children and grandchildren.", "i can sew my own clothes.",
                             "i had cancer but its gone now.", "i am retired and living the great life.",
                             "i do not have a smartphone.")
    assert en[0].context == () and en[0].response == "I love iphone! i just bought new iphone!"
    assert en[1].context == ("I love iphone! i just bought new iphone!",)
    assert en[1].response == "Thats good for you, i'm not very into new tech" and en[1].line == 7
    assert len(en[10].context) == 10 and en[10].speaker == en[0].speaker != en[1].speaker
    zh = D.load_clv(shared_or_skip("data", "zh", "clv_samples", "Person_Dialog_ZH_test.txt"))
    assert zh[0].persona == ("我喜欢旅行。", "最喜欢的颜色是绿色。", "我喜欢汽车。", "我喜欢猫。")
    assert zh[1].context == ("你好呀。",) and zh[1].response == "你好呀，在干吗呢？"


def test_language_sniffing_and_override():
    path = shared_or_skip("data", "zh", "clv_samples", "Person_Dialog_ZH_train.txt")
    assert D.load_clv(path)[0].language == "zh"
    assert D.load_clv(path, language="en")[0].language == "en"
    with pytest.raises(ConfigError):
        D.load_clv(path, language="de")
    split = D.split_persona("i am 5.5 feet tall.i like tea...really.", "en")
    assert split == ("i am 5.5 feet tall.", "i like tea...really.")
    assert D.split_persona("我喜欢猫。我是色盲", "zh") == ("我喜欢猫。", "我是色盲")


@pytest.mark.parametrize(("name", "count", "language"), [
    ("val_datas_en.json", 5, "en"), ("test_datas_en.json", 5, "en"),
    ("val_datas_zh.json", 3, "zh"), ("test_datas_zh.json", 4, "zh"),
])
def test_morpheus_json(name, count, language):
    path = shared_or_skip("data", "zh", "morpheus_samples", name)
    raw = json.loads(path.read_text("utf-8"))
    examples = D.load_morpheus_json(path)
    assert len(examples) == len(raw) == count
    assert {ex.language for ex in examples} == {language}
    for ex, obj in zip(examples, raw):
        assert ex.persona == tuple(s.strip() for s in obj["persona"])
        assert ex.context == tuple(s.strip() for s in obj["context"])
        assert ex.response == obj["response"].strip() and ex.speaker == speaker_id(obj["persona"])


# ------------------------------------------------------------------------------------- Synthetic-Persona-Chat


def test_synthetic_persona_chat_valid():
    path = shared_or_skip("data", "synthetic_persona_chat", "Synthetic-Persona-Chat_valid.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    prefixed = re.compile(r"^[\s*]*User [12]:")
    turns = [sum(bool(prefixed.match(line)) for line in r["Best Generated Conversation"].split("\n")) for r in rows]
    assert len(rows) == 1000 and min(turns) >= 2
    both = D.load_synthetic_persona_chat(path)
    assert len(D.dialogues(both)) == 1000
    assert len(both) == sum(turns) - len(rows) == 26777
    user1, user2 = (D.load_synthetic_persona_chat(path, side) for side in ("user1", "user2"))
    assert len(user1) + len(user2) == len(both)
    assert {ex.id for ex in user1} | {ex.id for ex in user2} == {ex.id for ex in both}
    texts = [t for ex in both for t in (ex.response, *ex.context)]
    assert not any(prefixed.match(t) or "User 1:" in t or "User 2:" in t for t in texts)
    first, second = both[0], both[1]
    assert first.id == "0-1" and first.line == 2 and first.context == ("Hi!",) and first.response == "Hello!"
    assert first.persona == ("I am a boy.", "I can move objects with my mind.", "I had to have a transplant.",
                             "I was born with my heart outside my body.")
    assert first.partner_persona[0] == "I love to bake cookies." and len(first.partner_persona) == 4
    assert second.persona == first.partner_persona and second.response == "What is your favorite thing to do?"
    user1_personas = {str(i): tuple(s.strip() for s in r["user 1 personas"].split("\n") if s.strip())
                      for i, r in enumerate(rows)}
    assert user1[0].id == "0-2" and all(ex.persona == user1_personas[ex.dialogue_id] for ex in user1)
    assert all(ex.speaker == speaker_id(ex.persona) for ex in both)


def test_synthetic_turn_variants():
    cell = "*User 1:* Hi there!\n[Later]\n* User 2: Hello! *\n* * User 1: * * Bye *now*\nUser 2: *waves* ok\nAdam: hi"
    assert D.synthetic_turns(cell) == [(1, "Hi there!"), (2, "Hello!"), (1, "Bye *now"), (2, "*waves* ok")]


# ------------------------------------------------------------------------------------------------ Hub


SYNTHETIC_ROW = {"user 1 personas": "I like cats.\nI am tall.", "user 2 personas": "I fish.",
                 "Best Generated Conversation": "User 1: hi\nUser 2: hello\nUser 1: how are you?"}
PERSONACHAT_ROW = {"personality": ["I like cats.", "I am tall."], "candidates": ["no.", "Fine, thanks."],
                   "history": ["Hi!", "Hello.", "How are you?"], "conv_id": 7, "utterance_idx": 1}


def test_hub_row_conversion():
    syn = D.examples_from_synthetic_rows([SYNTHETIC_ROW], side="both", source="hub:x")
    assert [(ex.id, ex.context, ex.response) for ex in syn] == [
        ("0-1", ("hi",), "hello"), ("0-2", ("hi", "hello"), "how are you?")]
    assert syn[1].persona == ("I like cats.", "I am tall.") and syn[1].partner_persona == ("I fish.",)
    assert [ex.id for ex in D.examples_from_synthetic_rows([SYNTHETIC_ROW], side="user2")] == ["0-1"]
    (pc,) = D.examples_from_personachat_rows([PERSONACHAT_ROW])
    assert (pc.id, pc.dialogue_id, pc.turn, pc.response) == ("7-1", "7", 1, "Fine, thanks.")
    assert pc.context == ("Hi!", "Hello.", "How are you?") and pc.to_record().gold_index == 1
    with pytest.raises(InputError, match="candidates"):
        D.examples_from_personachat_rows([{**PERSONACHAT_ROW, "candidates": []}])
    with pytest.raises(InputError, match="duplicate"):
        D.examples_from_personachat_rows([PERSONACHAT_ROW, PERSONACHAT_ROW])


def fake_datasets(monkeypatch, load):
    module = types.ModuleType("datasets")
    module.load_dataset = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_hub_offline_failure_is_config_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'google/Synthetic-Persona-Chat' on the Hub (LocalEntryNotFoundError)")

    fake_datasets(monkeypatch, offline)
    with pytest.raises(ConfigError, match=r"could not load 'google/Synthetic-Persona-Chat'.*ConnectionError"):
        D.load_dataset("hub:google/Synthetic-Persona-Chat:test")
    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed
    with pytest.raises(ConfigError, match="pip install datasets"):
        D.load_hub("bavard/personachat_truecased", "validation")
    with pytest.raises(ConfigError, match="unknown Hub dataset"):
        D.load_hub("someone/else", "train")


def test_hub_loading_with_stub(monkeypatch):
    calls = []

    def load(name, config=None, split=None):
        calls.append((name, config, split))
        return [PERSONACHAT_ROW] if name == D.HUB_PERSONACHAT else [SYNTHETIC_ROW]

    fake_datasets(monkeypatch, load)
    assert [ex.id for ex in D.load_dataset("hub:bavard/personachat_truecased")] == ["7-1"]
    assert len(D.load_dataset({"format": "hub", "path": D.HUB_SYNTHETIC, "split": "train", "side": "user1"})) == 1
    assert calls == [(D.HUB_PERSONACHAT, "full", "validation"), (D.HUB_SYNTHETIC, None, "train")]
    with pytest.raises(ConfigError, match="bad options"):
        D.load_dataset({"format": "hub", "path": D.HUB_SYNTHETIC, "splitt": "train"})


# ------------------------------------------------------------------------------------------------ dispatch


def test_load_dataset_dispatch(sample_dir):
    zh = ("data", "zh")
    cases = {
        convai2_path("valid_both_original_no_cands.txt"): ("convai2", 7801),
        sample_dir: ("convai2_sample", 10000),
        shared_or_skip(*zh, "clv_samples", "Person_Dialog_EN_test.txt"): ("clv", 16),
        shared_or_skip(*zh, "morpheus_samples", "Person_Dialog_ZH_train.txt"): ("clv", 7),
        shared_or_skip(*zh, "morpheus_samples", "test_datas_zh.json"): ("morpheus_json", 4),
        shared_or_skip("data", "synthetic_persona_chat", "Synthetic-Persona-Chat_test.csv"): ("synthetic_persona_chat",
                                                                                              25577),
    }
    for path, (fmt, count) in cases.items():
        assert D.detect_format(path) == fmt
        assert len(D.load_dataset(path)) == len(D.load_dataset(str(path))) == count
    assert len(D.load_dataset({"path": sample_dir, "split": "val"})) == 7801
    assert len(D.load_dataset({"format": "clv", "path": shared_or_skip(*zh, "clv_samples", "Person_Dialog_ZH_test.txt"),
                               "language": "zh"})) == 35
    with pytest.raises(ConfigError, match="unknown dataset format"):
        D.load_dataset({"format": "nope", "path": sample_dir})
    with pytest.raises(ConfigError, match="bad options"):
        D.load_dataset({"path": sample_dir, "sides": "x"})
    with pytest.raises(ConfigError, match="split"):
        D.load_dataset({"path": sample_dir, "split": "test"})
    with pytest.raises(ConfigError, match="cannot tell"):
        D.load_dataset(shared_or_skip("data", "zh", "cped", "speakers.txt"))


# ------------------------------------------------------------------------------------------------ splits


def test_split_by_dialogue(self_orig):
    a = D.split_by_dialogue(self_orig, 0.1, seed=13)
    b = D.split_by_dialogue(self_orig, 0.1, seed=13)
    c = D.split_by_dialogue(self_orig, 0.1, seed=14)
    assert a == b and a.dev_dialogues != c.dev_dialogues
    assert len(a.dev_dialogues) == 100 and list(a.dev_dialogues) == sorted(a.dev_dialogues)
    train_ids, dev_ids = {ex.dialogue_id for ex in a.train}, {ex.dialogue_id for ex in a.dev}
    assert not train_ids & dev_ids and dev_ids == set(a.dev_dialogues)
    assert len(a.train) + len(a.dev) == len(self_orig)
    order = {ex.id: i for i, ex in enumerate(self_orig)}
    assert sorted(a.train + a.dev, key=lambda ex: order[ex.id]) == self_orig
    assert [order[ex.id] for ex in a.dev] == sorted(order[ex.id] for ex in a.dev)
    info = a.describe()
    assert info["dev_dialogues"] == 100 and info["train_dialogues"] == 900 and info["seed"] == 13
    assert info["dev_examples"] == len(a.dev) and info["dev_dialogues_sha1"] == b.describe()["dev_dialogues_sha1"]
    assert info["dev_dialogues_sha1"] != c.describe()["dev_dialogues_sha1"]
    assert D.split_by_dialogue(self_orig, 0.0, 1).dev == [] and D.split_by_dialogue(self_orig, 1.0, 1).train == []
    with pytest.raises(ConfigError):
        D.split_by_dialogue(self_orig, 1.5, 1)


def test_sessions_are_whole_dialogues_with_the_speaker_last(self_orig):
    from pdg_eval.records import PARTNER, SELF

    found = D.sessions(self_orig)
    assert len(found) == 1000 and list(found) == list(D.dialogues(self_orig))
    first = found[self_orig[0].dialogue_id]
    turns = [e for e in self_orig if e.dialogue_id == first.dialogue_id]
    assert first.turns == (*turns[-1].context, turns[-1].response) and len(first.turns) == 2 * len(turns)
    assert first.turns[1] == turns[0].response and first.speaker == turns[0].speaker
    assert first.roles[:2] == [PARTNER, SELF] and first.roles[-1] == SELF
    assert D.last_turns(self_orig)[0] == turns[-1]


def test_sampled_distractors_are_seeded_and_never_the_gold(self_orig):
    example = self_orig[0]
    drawn = D.sample_distractors(example, (), 3, seed=13)
    assert len(drawn) == 3 and example.response not in drawn and set(drawn) <= set(example.candidates)
    assert drawn == D.sample_distractors(example, ("unused",), 3, seed=13)  # candidates come first
    assert drawn != D.sample_distractors(example, (), 3, seed=14)
    bare = dataclasses.replace(example, candidates=None)
    assert D.sample_distractors(bare, ["a", example.response, "b"], 5, seed=1) in (["a", "b"], ["b", "a"])
    with pytest.raises(ConfigError, match="no distractors"):
        D.sample_distractors(bare, [example.response], 1, seed=1)


def test_take_dialogues_and_fingerprint(self_orig):
    first = D.take_dialogues(self_orig, 3)
    raw = raw_dialogues(convai2_path("valid_self_original.txt"))
    assert len(first) == sum(d["turns"] for d in raw[:3]) and {ex.dialogue_id for ex in first} == {"0", "1", "2"}
    assert first == self_orig[:len(first)] and D.take_dialogues(self_orig, 0) == []
    assert len(D.take_dialogues(self_orig, 5000)) == 7801
    digest = hashlib.sha256()
    for ex in self_orig:
        digest.update((json.dumps([ex.id, ex.response], ensure_ascii=False) + "\n").encode())
    fp = D.fingerprint(self_orig)
    assert fp == digest.hexdigest() == D.fingerprint(D.load_convai2(convai2_path("valid_self_original.txt")))
    changed = [*self_orig[:-1], dataclasses.replace(self_orig[-1], response="different")]
    assert D.fingerprint(changed) != fp and D.fingerprint(first) != fp


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_convai2_line(tmp_path):
    bad = tmp_path / "convai2.txt"
    bad.write_text("1 your persona: i like tea.\n2 hello there\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        D.load_convai2(bad)
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 2, "label")
    wrong_gold = tmp_path / "gold.txt"
    wrong_gold.write_text("1 your persona: i like tea.\n2 hi\thello\t\ta|b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"gold.txt:2: candidates: the gold response is not among"):
        D.load_convai2(wrong_gold)


def test_mismatched_sample_files(tmp_path):
    (tmp_path / "per-val.txt").write_text("p1</s>p2\np1</s>p2\np1</s>p2\n", encoding="utf-8")
    (tmp_path / "src-val.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "tgt-val.txt").write_text("x\ny\nz\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        D.load_convai2_sample(tmp_path, "val")
    assert err.value.path == str(tmp_path / "src-val.txt") and err.value.line == 3
    assert "has 2 lines but per-val.txt has 3" in str(err.value)
    (tmp_path / "src-val.txt").write_text("a\nb\nc\n", encoding="utf-8")
    examples = D.load_convai2_sample(tmp_path, "val")
    assert examples[2].context == ("a", "x", "b", "y", "c") and examples[2].persona == ("p1", "p2")


def test_clv_block_without_response(tmp_path):
    bad = tmp_path / "Person_Dialog_EN_bad.txt"
    bad.write_text("i like tea.i am tall.\n<|endoftext|>\nhello<|endoftext|>\n[SEP]\n"
                   "i like cats.\n<|endoftext|>hello<|endoftext|>\n[SEP]\n"
                   "i like dogs.\n<|endoftext|>\nhi<|endoftext|>\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        D.load_clv(bad)
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 7, "response")
    bad.write_text("i like tea.\nno marker<|endoftext|>\nhello<|endoftext|>\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.txt:2: context"):
        D.load_clv(bad)
    with pytest.raises(InputError, match="no such file"):
        D.load_clv(tmp_path / "missing.txt")
