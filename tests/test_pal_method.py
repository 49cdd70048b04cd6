"""PAL on the harness: stage-1 sequences, DPO pairs and split, select-then-generate, and the two stages through the
CLI on real ConvAI2 training dialogues with tiny random models."""

from __future__ import annotations

import json
import math

import pytest

import pdg_eval_methods.pal.method as pal_method
from pdg_eval_methods.common.data import load_dataset
from pdg_eval_methods.common.method import get_method, method_config
from pdg_eval_methods.pal.prompts import generate_prompt, history_only_prompt, persona_line, select_prompt
from pdg_eval.cli.main import main
from tests.conftest import shared_or_skip

TINY = ["backbone=random:tiny-llama", "training.batch_size=4", "training.max_length=512", "training.epochs=1",
        "training.warmup_steps=0", "training.logging_steps=1", "decoding.max_new_tokens=6", "decoding.batch_size=8",
        "model.label_method=overlap", "model.negative_max_new_tokens=6"]


@pytest.fixture(scope="module")
def train_turns():
    folder = shared_or_skip("data", "convai2_train_sample")
    return load_dataset({"path": str(folder), "split": "train"})[:40]


def _pal(overrides=(), build=True):
    method = get_method("pal")(method_config("pal", None, TINY + list(overrides)))
    if build:
        method.build()
    return method


def _text(method, ids):
    return method.tokenizer.decode(ids)


def test_stage1_gives_a_generate_and_a_select_sequence_per_turn(train_turns):
    method = _pal()
    example = train_turns[1]
    method.labels[example.id] = 2
    generate, select = method.features(example)
    line = persona_line(example.persona, 2, "en")
    assert line == f"3.{example.persona[2]}"
    formatter = method.formatter
    g = generate_prompt(example.persona, example.context, line)
    s = select_prompt(example.persona, example.context)
    for feature, prompt, target in ((generate, g, example.response), (select, s, line)):
        cut = feature["labels"].count(-100)
        assert _text(method, feature["input_ids"][:cut]) == formatter.instruction(prompt.text, prompt.assistant_prefix)
        # the target and the chat template's end of turn carry the loss
        assert _text(method, feature["input_ids"][cut:]) == target + "<|im_end|>\n"
        assert feature["labels"][cut:] == feature["input_ids"][cut:]
    method.labels[example.id] = -1
    assert _text(method, method.features(example)[1]["input_ids"]).endswith("No personal description.<|im_end|>\n")


def test_a_long_history_loses_its_oldest_turns_not_the_instruction(train_turns):
    method = _pal()
    e = max(train_turns, key=lambda x: len(x.context))
    line = persona_line(e.persona, 0, e.language)
    build = lambda h: generate_prompt(e.persona, h, line, e.language)  # noqa: E731
    full = _text(method, method.prompt_ids(build, e.context, 10**6))
    limit = len(method.tokenizer(full)["input_ids"]) - 20
    ids = method.prompt_ids(build, e.context, limit)
    text = _text(method, ids)
    assert len(ids) <= limit and text.startswith(full[:full.index("person1: ")])  # template, instruction, personas
    assert f"person1: {e.context[0]}" not in text and f"person1: {e.context[2]}" in text  # two turns out, tags kept
    assert text.endswith(full[full.rindex("person1: "):])  # the latest turns and the next speaker's tag
    sequence = method.sequence(build, e.context, e.response, limit)
    assert len(sequence["input_ids"]) <= limit and _text(method, sequence["input_ids"]).startswith(
        full[:full.index("person1: ")])
    assert _text(method, [t for t, label in zip(sequence["input_ids"], sequence["labels"]) if label != -100]
                 ).startswith(e.response.strip())


def test_pass_two_highlights_pass_one_parse_never_the_gold(train_turns, monkeypatch):
    method = _pal()
    examples = train_turns[:3]
    for example in examples:
        method.labels[example.id] = 0  # the gold label: sentence 1
    calls = {}

    def stub(model, tokenizer, prompts, decoding, progress=False, desc="generate", extra=None):
        calls[desc] = [tokenizer.decode(p) for p in prompts]
        texts = ["2.something", "No personal description.", examples[2].persona[3]] if desc == "select" else ["hi"] * 3
        return texts, 5

    monkeypatch.setattr(pal_method, "generate_causal_lm", stub)
    monkeypatch.setattr(method, "selection_report", lambda *args, **kwargs: {})
    out = method.generate(examples, method.config.decoding)
    assert out == ["hi"] * 3 and method.generated_tokens == 10
    expected = [persona_line(examples[0].persona, 1, "en"), "No personal description.",
                persona_line(examples[2].persona, 3, "en")]  # numbered, "none", fuzzy match
    for prompt, line, example in zip(calls["generate"], expected, examples):
        assert f"The highlighted personal description: '''{line}'''" in prompt
        assert persona_line(example.persona, 0, "en") not in prompt.split("highlighted personal description:")[1]
    assert [m["persona_index"] for m in method.record_meta] == [1, -1, 3]
    assert method.record_meta[0]["selection"] == "2.something"
    assert calls["select"][0] == method.formatter.instruction(select_prompt(examples[0].persona,
                                                                            examples[0].context).text)


def test_dpo_pairs_prompt_chosen_rejected(train_turns, tmp_path, monkeypatch):
    method = _pal(["model.stage=align"])
    examples = train_turns[:3]
    for example in examples:
        method.labels[example.id] = 1
    negatives = ["i am a negative reply", examples[1].response, "another one"]
    monkeypatch.setattr(method, "negatives", lambda *args, **kwargs: negatives)
    features = method.preference_features(examples, tmp_path)
    assert len(features) == 2 and method.notes["preference_pairs"]["negative_equals_gold"] == 1
    for feature, example, negative in zip(features, [examples[0], examples[2]], [negatives[0], negatives[2]]):
        prompt = generate_prompt(example.persona, example.context, persona_line(example.persona, 1, "en"))
        chosen, rejected = feature["input_ids"]
        cut = feature["labels"][0].count(-100)
        assert feature["labels"][1].count(-100) == cut
        assert _text(method, chosen[:cut]) == method.formatter.instruction(prompt.text, prompt.assistant_prefix)
        assert chosen[:cut] == rejected[:cut]
        assert _text(method, chosen[cut:]) == example.response + "<|im_end|>\n"
        assert _text(method, rejected[cut:]) == negative + "<|im_end|>\n"


def test_negatives_answer_the_history_only_prompt_and_are_cached(train_turns, tmp_path, monkeypatch):
    method = _pal(["model.stage=align"])
    examples = train_turns[:2]
    seen = []

    def stub(model, tokenizer, prompts, decoding, progress=False, desc="generate", extra=None):
        seen.append((desc, decoding.strategy, decoding.num_beams, [tokenizer.decode(p) for p in prompts]))
        return ["neg a", "neg b"][:len(prompts)], 4

    monkeypatch.setattr(pal_method, "generate_causal_lm", stub)
    assert method.negatives(examples, tmp_path) == ["neg a", "neg b"]
    desc, strategy, beams, prompts = seen[0]
    assert (desc, strategy, beams) == ("negatives", "beam", 3)
    expected = history_only_prompt(examples[0].context)
    assert prompts[0] == method.formatter.instruction(expected.text, expected.assistant_prefix)
    assert all(s not in prompts[0] for s in examples[0].persona)
    assert method.negatives(examples, tmp_path) == ["neg a", "neg b"] and len(seen) == 1  # cached
    assert method.negatives(examples[:1], tmp_path) == ["neg a"] and len(seen) == 2  # other data: regenerated


def test_options_are_checked():
    with pytest.raises(Exception, match="model.strategy"):
        _pal(["model.strategy=oracle"], build=False)
    with pytest.raises(Exception, match="model.label_method"):
        _pal(["model.label_method=bleu"], build=False)
    align = _pal(["model.stage=align", "model.align_training.learning_rate=5e-6"], build=False)
    assert align.config.training.objective == "preference"
    assert align.config.training.learning_rate == 5e-6 and align.config.training.epochs == 3
    assert align.config.training.preference.beta == 0.1


def test_nli_labels_pick_the_entailed_sentence(train_turns):
    method = _pal(["model.label_method=nli"], build=False)
    example = train_turns[0]
    stats = method.label([example])
    assert stats["method"] == "nli" and stats["threshold"] == 0.5 and stats["turns"] == 1
    assert method.labels[example.id] in range(-1, len(example.persona))


@pytest.fixture(scope="module")
def cli_settings():
    train = shared_or_skip("data", "convai2_train_sample")
    valid = shared_or_skip("data", "convai2", "valid_self_original.txt")
    return [f"--set={item}" for item in TINY + [f"data.train={json.dumps({'path': str(train), 'split': 'train'})}",
                                               "data.train_dialogues=5", "model.dpo_fraction=0.4",
                                               f"data.eval={valid}", "data.eval_dialogues=1"]]


@pytest.fixture(scope="module")
def stage1(cli_settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pal") / "stage1"
    assert main(["run", "pal", "train", "--out", str(folder), "-q", *cli_settings]) == 0
    return folder


ALIGN = ["--set=model.stage=align", "--set=model.align_training.batch_size=2",
         "--set=model.align_training.gradient_accumulation=1", "--set=model.align_training.warmup_steps=0",
         "--set=model.align_training.epochs=1", "--set=model.align_training.learning_rate=1e-3",
         "--set=model.align_training.logging_steps=1"]


def test_two_stages_and_select_then_generate_through_the_cli(cli_settings, stage1, tmp_path):
    common = cli_settings
    record1 = json.loads((stage1 / "run.json").read_text())
    split = record1["method_notes"]["dpo_split"]
    assert len(split["dialogues"]) == 2
    assert split["stage1_examples"] + split["dpo_examples"] == record1["data"]["train"]["examples"]
    assert record1["summary"]["features"] == 2 * split["stage1_examples"]
    assert record1["method_notes"]["labels"]["turns"] == split["stage1_examples"]

    stage2 = tmp_path / "stage2"
    assert main(["run", "pal", "train", "--out", str(stage2), "-q", *common, *ALIGN]) == 2  # no --init-from
    assert main(["run", "pal", "train", "--out", str(stage2), "--init-from", str(stage1), "-q", *common,
                 "--set=model.dpo_seed=99", *ALIGN]) == 2  # another DPO split than stage 1 held out
    assert main(["run", "pal", "train", "--out", str(stage2), "--init-from", str(stage1), "-q", *common, *ALIGN]) == 0
    record2 = json.loads((stage2 / "run.json").read_text())
    summary = record2["summary"]
    assert summary["objective"] == "preference" and record2["config"]["training"]["objective"] == "preference"
    assert summary["losses"][0][1] == pytest.approx(math.log(2), abs=1e-4)  # reference = the stage-1 model
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins"} <= set(summary["rewards"][0])
    assert summary["rewards"][0]["rewards/margins"] == pytest.approx(0.0, abs=1e-4)
    assert record2["method_notes"]["dpo_split"]["dialogues"] == split["dialogues"]
    pairs = record2["method_notes"]["preference_pairs"]["pairs"]
    assert summary["features"] == pairs and 0 < pairs <= split["dpo_examples"]
    negatives = (stage2 / "negatives.jsonl").read_text().splitlines()
    assert len(negatives) == split["dpo_examples"]
    assert json.loads((stage2 / "negatives.json").read_text())["provenance"]["stage1"]["folder"] == str(stage1)

    preds = tmp_path / "preds.jsonl"
    assert main(["run", "pal", "generate", "--checkpoint", str(stage2), "--out", str(preds), "-q", "--with-nll",
                 *common]) == 0
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    assert records and all(r["meta"]["method"]["strategy"] == "select_then_generate" for r in records)
    assert all(r["nll"] for r in records)
    run = json.loads(preds.with_name(preds.name + ".run.json").read_text())
    selection = run["method_notes"]["selection"]
    assert selection["examples"] == len(records) and 0.0 <= selection["accuracy"] <= 1.0
    assert selection["none_share"] == sum(r["meta"]["method"]["persona_index"] == -1 for r in records) / len(records)
    # a generation-time option given to `generate --checkpoint` is used (not the trained run's)
    direct = tmp_path / "direct.jsonl"
    assert main(["run", "pal", "generate", "--checkpoint", str(stage2), "--out", str(direct), "-q", *common,
                 "--set=model.strategy=direct"]) == 0
    assert {json.loads(line)["meta"]["method"]["highlighted"] for line in direct.read_text().splitlines()} == {
        "No personal description."}


def test_figure_runners(cli_settings, stage1, tmp_path):
    from pdg_eval_methods.pal import figures

    out = tmp_path / "fig3"
    assert figures.main(["strategies", "--checkpoint", str(stage1), "--out", str(out), "-q", *cli_settings]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [row["name"] for row in summary["rows"]] == ["select_then_generate", "direct", "gold"]
    assert "c-score" in summary["rows"][0]["scores"] and (out / "strategies.png").stat().st_size > 0
    assert summary["rows"][1]["selection"]["none_share"] == 1.0
    # run again (as after an interruption): the records already written are read back, not generated again
    assert figures.main(["strategies", "--checkpoint", str(stage1), "--out", str(out), "-q", *cli_settings]) == 0
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]  # the same wall times too
    assert figures.main(["strategies", "--checkpoint", str(stage1), "--out", str(out), "-q", *cli_settings,
                         "--set=decoding.max_new_tokens=3"]) == 2  # other settings into the same folder
    out = tmp_path / "fig4"
    assert figures.main(["alignment-steps", "--init-from", str(stage1), "--every", "1", "--out", str(out), "-q",
                         *cli_settings, *ALIGN[1:], "--set=model.align_training.max_steps=2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [row["name"] for row in summary["rows"]] == [0, 1, 2]
    assert summary["rows"][0]["scores"] != summary["rows"][2]["scores"]  # lr 1e-3 moves the tiny model
    assert (out / "alignment-steps.png").stat().st_size > 0
    again = tmp_path / "fig4_again"  # the checkpoints of the finished stage-2 run, nothing trained
    assert figures.main(["alignment-steps", "--stage2", str(out / "stage2"), "--out", str(again), "-q",
                         *cli_settings]) == 0
    assert json.loads((again / "summary.json").read_text())["rows"] == summary["rows"]
    assert figures.main(["strategies", "--out", str(out), "-q"]) == 2
    assert figures.main(["alignment-steps", "--out", str(out), "-q"]) == 2


def test_selection_summary_on_hand_made_scores():
    from pdg_eval_methods.pal.figures import selection_summary

    scores = [{"logps": [-1.0, -3.0, -2.0], "first_token_p": [0.5, 0.2, 0.1]},        # none wins; label 0 ranks 2nd
              {"logps": [-4.0, -1.0, -2.0, -3.0], "first_token_p": [0.1, 0.6, 0.1, 0.1]},  # line 0 wins; label 0
              {"logps": [-0.5, -2.0], "first_token_p": [0.9, 0.05]}]                  # unlabelled, none wins
    summary = selection_summary([0, 0, -1], scores)
    assert summary["turns"] == 3 and summary["labelled_turns"] == 2
    assert summary["argmax_none_share"] == pytest.approx(2 / 3)
    assert summary["argmax_accuracy"] == pytest.approx(2 / 3)  # turn 2 (line 0) and turn 3 (none)
    assert summary["argmax_accuracy_labelled"] == pytest.approx(1 / 2)
    assert summary["line_accuracy_labelled"] == pytest.approx(1 / 2)  # turn 1's lines: -3 vs -2 picks line 1
    assert summary["line_accuracy_chance"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert summary["labelled_line_mean_rank"] == pytest.approx((1 + 0) / 2)  # turn 1: 2nd of 2; turn 2: 1st of 3
    assert summary["labelled_line_rank_chance"] == pytest.approx((0.5 + 1.0) / 2)
    assert summary["first_token_p_none"] == pytest.approx((0.5 + 0.1 + 0.9) / 3)
    assert summary["first_token_p_any_line"] == pytest.approx((0.3 + 0.8 + 0.05) / 3)


def test_selection_scores_are_the_select_targets_log_probabilities(train_turns, tmp_path, cli_settings, stage1):
    import torch

    from pdg_eval_methods.pal import figures

    method = _pal()
    method.model.eval()
    example = next(e for e in train_turns if len(e.context) > 2)
    (row,) = method.selection_scores([example])
    targets = [persona_line(example.persona, k, "en") for k in range(-1, len(example.persona))]
    assert len(row["logps"]) == len(targets) == len(row["first_token_p"])
    prompt, target_ids = method.fitted(lambda h: select_prompt(example.persona, h, "en"), example.context, targets,
                                       method.config.training.max_length)
    for k in (0, 2):
        ids = torch.tensor([prompt + target_ids[k]])
        with torch.no_grad():
            logp = method.model(ids).logits[0, len(prompt) - 1:-1].log_softmax(-1)
        assert row["logps"][k] == pytest.approx(float(logp.gather(1, ids[0, len(prompt):, None]).sum()), abs=1e-3)
        assert row["first_token_p"][k] == pytest.approx(float(logp[0, target_ids[k][0]].exp()), abs=1e-5)
    out = tmp_path / "selection"
    assert figures.main(["selection", "--checkpoint", str(stage1), "--out", str(out), "-q", *cli_settings]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["turns"] == summary["labels"]["turns"] > 0 and (out / "summary.md").is_file()
    assert figures.main(["selection", "--out", str(out), "-q"]) == 2
