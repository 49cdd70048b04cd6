"""``pdg-eval stress``: perturbation builders on hand-made turns, the paired ordering counts, and the command on real
ConvAI2 turns (lexical metrics; p-cosine on three turns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdg_eval.cli.main import main
from pdg_eval.readers.parlai import ConvAI2Turn, turn_record
from pdg_eval.scoring import MetricSpec
from pdg_eval.stress import (GENERIC, ORDERINGS, Perturbation, compare_items, negate, perturb, score_perturbations,
                             select_turns, stress_specs)

from .conftest import shared_or_skip


@pytest.mark.parametrize("sentence, negated", [
    ("i have a dog .", "i do not have a dog ."),
    ("i love cats.", "i hate cats."),
    ("i hate mondays .", "i love mondays ."),
    ("i am a nurse.", "i am not a nurse."),
    ("i'm tall .", "i am not tall ."),
    ("I Like To  Ski.", "i do not like to ski."),
    ("i have been to paris.", "i have not been to paris."),
    ("i have lived in ohio.", "i have not lived in ohio."),
    ("i can swim.", "i cannot swim."),
    ("my hair is red.", "my hair is not red."),
    ("i do not like cake.", None),  # already negated
    ("i never eat meat.", None),
    ("horror movies are my favorites.", None),  # no template
])
def test_negation_templates(sentence, negated):
    assert negate(sentence) == negated


def _turns() -> list[ConvAI2Turn]:
    """Three dialogues of three turns; responses name their turn; dialogue 2 has no negatable persona sentence."""
    personas = [["i have a dog .", "horror movies are my favorites ."], ["i am a nurse .", "i love tea ."],
                ["horror movies are my favorites .", "i never swim ."]]
    turns, line = [], 1
    for d in range(3):
        for t in range(3):
            turns.append(ConvAI2Turn(d, t, personas[d], [f"partner {d} fact ."], [f"q{d}{t}"], f"r{d}{t}", None, line))
            line += 1
    return turns


def test_later_turn_other_dialogue_and_left_out_counts():
    turns = _turns()
    out = perturb(turns, range(len(turns)), seed=0)
    later = {r.id: r.response for r in out["later_turn"].records}
    assert later == {"0-0": "r01", "0-1": "r02", "1-0": "r11", "1-1": "r12", "2-0": "r21", "2-1": "r22"}
    assert out["later_turn"].left_out == 3  # the last turn of each dialogue
    for seed in range(20):
        for rec in perturb(turns, range(len(turns)), seed, names=["other_dialogue"])["other_dialogue"].records:
            assert rec.response[1] != rec.id[0]  # "r{d}{t}" of another dialogue d
    negated = out["persona_negated"]
    assert negated.left_out == 3 and {r.id[0] for r in negated.records} == {"0", "1"}
    assert {r.response for r in negated.records} <= {"i do not have a dog .", "i am not a nurse .", "i hate tea ."}
    assert all(r.response in r.persona for r in out["persona_copy"].records)
    assert {r.response for r in out["partner_persona"].records} == {"partner 0 fact .", "partner 1 fact .",
                                                                   "partner 2 fact ."}
    assert {r.response for r in out["generic"].records} == {GENERIC}
    assert {r.response for r in out["empty"].records} == {""}
    assert [r.response for r in out["gold"].records] == [t.response for t in turns]


def test_seeded_choices_are_deterministic_and_per_item():
    turns = _turns()
    first = perturb(turns, range(9), seed=3)
    again = perturb(turns, range(9), seed=3)
    subset = perturb(turns, [4], seed=3)
    for name in first:
        assert [r.response for r in first[name].records] == [r.response for r in again[name].records]
    # an item's choice does not depend on which other turns were drawn
    assert subset["other_dialogue"].records[0].response == first["other_dialogue"].records[4].response
    others = {tuple(r.response for r in perturb(turns, range(9), s, names=["other_dialogue"])["other_dialogue"].records)
              for s in range(5)}
    assert len(others) > 1
    assert select_turns(100, 5, 7) == select_turns(100, 5, 7) == sorted(select_turns(100, 5, 7))
    assert select_turns(3, 10, 0) == [0, 1, 2]


def test_no_partner_persona_is_skipped_with_a_reason():
    turns = [ConvAI2Turn(0, 0, ["i am tall ."], [], ["q"], "r", None, 1)]
    out = perturb(turns, [0], 0)
    assert out["partner_persona"].records == [] and "--partner-dataset" in out["partner_persona"].reason
    assert out["other_dialogue"].left_out == 1  # one dialogue only


def test_compare_items_counts_strict_passes_ties_and_fails():
    worse = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.0}
    better = {"a": 0.2, "b": 0.5, "c": 0.3}  # "d" has no pair
    assert compare_items(worse, better) == (1, 1, 1)
    assert compare_items(worse, better, higher_is_better=False) == (1, 1, 1)
    assert compare_items({"a": 0.3}, {"a": 0.2}, higher_is_better=False) == (1, 0, 0)


def test_pass_rate_on_a_hand_made_three_item_case():
    """P-F1 (msp, whitespace tokens) of persona_negated vs gold: item 0 gold copies the persona (negation lower),
    item 1 both 0 (tie), item 2 the negation shares more words (fail)."""
    turn = [ConvAI2Turn(0, i, ["i have a dog ."], [], ["q"], gold, None, i + 1)
            for i, gold in enumerate(["i have a dog .", "hello there", "cats"])]
    negated = ["i do not have a dog .", "good morning", "i do not have a dog ."]
    perts = {"gold": Perturbation("gold", [turn_record(t, "x") for t in turn]),
             "persona_negated": Perturbation("persona_negated", [turn_record(t, "x", response=n)
                                                                 for t, n in zip(turn, negated)])}
    [result], skipped = score_perturbations(perts, [MetricSpec("p-f1:msp")])
    assert skipped == []
    [check] = result.checks
    assert check.ordering == "persona_negated < gold"
    assert (check.items, check.passed, check.ties, check.failed) == (3, 1, 1, 1)
    assert check.pass_rate == pytest.approx(1 / 3) and check.tie_rate == pytest.approx(1 / 3)
    assert result.means["gold"] == pytest.approx(1 / 3)  # item 0 scores 1, the others 0


def test_coherence_orderings_apply_to_coh_con_only():
    assert [o.name for o in ORDERINGS if o.applies("coh-con")] == [
        "persona_negated < gold", "other_dialogue < gold", "later_turn < gold", "persona_copy < gold"]
    assert [o.name for o in ORDERINGS if o.applies("con")] == ["persona_negated < gold", "other_dialogue < gold"]


def test_default_metrics_use_the_shipped_scorers_and_skip_msp_cover_with_a_reason():
    specs = stress_specs([], {"nli": None, "cohcon": None}, None)
    reasons = {s.spec: s.unavailable for s in specs}
    assert "--idf FILE" in reasons["p-cover:msp"]
    assert reasons["c-score:chanliang,model=pdg-eval/nli-minilm-l6-personaext"] is None
    assert reasons["cohcon:training,model=pdg-eval/cohcon-minilm-l6"] is None
    assert reasons["p-f1:msp"] is None and reasons["p-cosine:max"] is None
    with_models = {s.spec for s in stress_specs([], {"nli": "N", "cohcon": "C"}, "idf.tsv")}
    assert {"c-score:idl_pairwise,model=N", "cohcon:released,model=C", "p-cover:msp,idf=idf.tsv"} <= with_models


def _stress(tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    try:
        code = main(["stress", "-q", *extra])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_on_real_convai2_turns(tmp_path, capsys, convai2_valid):
    both = shared_or_skip("data", "convai2", "valid_both_original_no_cands.txt")
    args = ["--dataset", str(convai2_valid), "--partner-dataset", str(both), "--limit", "40", "--seed", "1",
            "-m", "p-f1:msp", "-m", "p-cover:dhap"]
    code, out, err = _stress(tmp_path, capsys, *args, "--json", str(tmp_path / "s.json"),
                             "--plot", str(tmp_path / "s.png"))
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text("utf-8"))
    assert doc["settings"]["selected"] == 40 and doc["settings"]["dataset_turns"] == 7801
    assert doc["perturbations"]["gold"]["items"] == 40 and doc["perturbations"]["partner_persona"]["items"] == 40
    assert doc["perturbations"]["later_turn"]["items"] + doc["perturbations"]["later_turn"]["left_out"] == 40
    p_f1 = next(m for m in doc["metrics"] if m["metric"] == "p-f1:msp")
    assert p_f1["means"]["persona_copy"] > 2 * p_f1["means"]["gold"] > 0
    assert p_f1["means"]["empty"] == 0.0
    for metric in doc["metrics"]:
        assert {c["ordering"] for c in metric["checks"]} == {"persona_negated < gold", "other_dialogue < gold"}
        for check in metric["checks"]:
            assert 0 <= check["pass_rate"] <= 1 and check["passed"] + check["ties"] + check["failed"] == check["items"]
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "persona_copy" in out and "pass %" in out
    # the same seed gives the same numbers
    code, again, _ = _stress(tmp_path, capsys, *args)
    assert code == 0 and again == out


@pytest.mark.parametrize("extra, message", [
    (["-m", "no-such-metric"], "no-such-metric"),
    (["--limit", "0"], "--limit"),
    (["--dataset", "missing.txt"], "missing.txt"),
    (["--plot", "x.svg"], ".png"),
    (["--partner-dataset", "SELF"], "not a both-persona ConvAI2 file"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, convai2_valid, extra, message):
    dataset = [] if "--dataset" in extra else ["--dataset", str(convai2_valid)]
    extra = [str(convai2_valid) if arg == "SELF" else arg for arg in extra]
    code, _, err = _stress(tmp_path, capsys, *dataset, "--limit", "5", *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_p_cosine_on_three_turns(tmp_path, capsys, convai2_valid):
    """A persona sentence copied verbatim has cosine 1 with itself (p-cosine:max)."""
    code, out, err = _stress(tmp_path, capsys, "--dataset", str(convai2_valid), "--limit", "3", "-m", "p-cosine",
                             "--json", str(tmp_path / "c.json"))
    assert code == 0, err
    [metric] = json.loads((tmp_path / "c.json").read_text("utf-8"))["metrics"]
    assert metric["means"]["persona_copy"] == pytest.approx(1.0, abs=1e-5)
    assert metric["means"]["gold"] < 0.9
