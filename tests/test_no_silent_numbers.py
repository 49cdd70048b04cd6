"""Cases where a number could be confidently wrong, or a user's file lost, without a word: paired items scored
against different inputs, persona metrics on records with no persona, outputs over inputs, partial outputs,
duplicate metrics and the gold scored against itself."""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import resources

import pytest

from pdg_eval.cli.main import main
from pdg_eval.compare import SystemRun, compare
from pdg_eval.files import all_or_nothing, atomic_writer
from pdg_eval.readers import open_records
from pdg_eval.records import read_jsonl
from pdg_eval.scoring import requested_metrics, score_records
from tests.conftest import shared_or_skip

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def write_records(path, records) -> str:
    path.write_text("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture()
def example_records():
    return [dataclasses.replace(r, candidates=None, candidate_scores=None, gold_index=None, nll=None)
            for r in read_jsonl(EXAMPLE)]


@pytest.fixture()
def other_references(tmp_path, example_records):
    """Two systems with the same ids and responses, where every third item has another reference."""
    a = write_records(tmp_path / "a.jsonl", example_records)
    changed = [dataclasses.replace(r, references=[f"another gold {k}"]) if k % 3 == 0 else r
               for k, r in enumerate(example_records)]
    b = write_records(tmp_path / "b.jsonl", changed)
    return a, b


# -- 1. paired items must have been scored against the same inputs ------------------------------------------------

def test_compare_refuses_items_scored_against_other_references(other_references, capsys):
    a, b = other_references
    assert main(["compare", a, b, "-m", "f1:parlai", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "different references on 4 of the 12 items" in err and "first: id 'example-0-0'" in err


def test_compare_of_score_jsons_checks_the_stored_fingerprints(other_references, tmp_path, capsys):
    a, b = other_references
    for path, out in ((a, "a.json"), (b, "b.json")):
        assert main(["score", path, "-m", "f1:parlai", "-q", "--json", str(tmp_path / out)]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert set(doc["items"]["fingerprints"]) == {"references"} and len(doc["items"]["fingerprints"]["references"]) == 12
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-q"]) == 2
    assert "different references on 4 of the 12 items" in capsys.readouterr().err


def test_metrics_that_read_only_the_responses_still_pair(other_references, capsys):
    a, b = other_references
    assert main(["compare", a, b, "-m", "distinct:corpus", "-q", "--resamples", "200", "--ci-resamples", "0"]) == 0


def test_persona_fingerprints_are_checked_for_persona_metrics(tmp_path, example_records, capsys):
    a = write_records(tmp_path / "a.jsonl", example_records)
    b = write_records(tmp_path / "b.jsonl", [dataclasses.replace(r, persona=["i am someone else ."])
                                              for r in example_records])
    assert main(["compare", a, b, "-m", "f1:parlai", "-q", "--resamples", "200", "--ci-resamples", "0"]) == 0
    assert main(["compare", a, b, "-m", "p-f1:msp", "-q"]) == 2
    assert "different persona on 12 of the 12 items" in capsys.readouterr().err


def test_old_score_json_without_fingerprints_is_refused(other_references, tmp_path, capsys):
    a, _ = other_references
    assert main(["score", a, "-m", "f1:parlai", "-q", "--json", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    del doc["items"]["fingerprints"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "old.json"), "-q"]) == 2
    assert "no item fingerprints" in capsys.readouterr().err


def test_aligned_paa_is_scored_against_the_dataset_gold(convai2_valid):
    """PAA's GT is de-tokenised; once aligned to a turn, every system is scored against that turn's gold, so the
    leaderboard's paired tests compare like with like (the file's own GT stays in meta)."""
    path = shared_or_skip("data", "outputs", "paa", "PAA.txt")
    with pytest.warns(UserWarning):
        aligned = list(open_records(str(path), "paa", dataset=str(convai2_valid)))
    gold = {r.id: r for r in open_records(str(convai2_valid), "convai2")}
    assert all(r.references == gold[r.id].references for r in aligned)
    changed = [r for r in aligned if r.meta["output_reference"] != r.reference]
    assert len(changed) == 6601
    assert changed[0].meta["output_reference"].replace(",", " ,").replace(".", " .").split() == \
        changed[0].reference.split()


def test_leaderboard_comparison_refuses_mismatched_personas(example_records):
    specs = requested_metrics(None, ["p-f1:msp"])
    runs = [SystemRun.from_score_run(name, score_records(recs, specs))
            for name, recs in (("x", example_records),
                               ("y", [dataclasses.replace(r, persona=r.persona[::-1] + ["extra ."])
                                      for r in example_records]))]
    from pdg_eval.errors import ConfigError

    with pytest.raises(ConfigError, match="x and y were scored against different persona on 12 of the 12"):
        compare(runs, resamples=100, ci_resamples=0)


# -- 2. no persona: skipped with the reason, not 0.00 ---------------------------------------------------------------

def test_persona_metrics_are_skipped_when_no_record_has_a_persona(tmp_path, example_records, capsys):
    path = write_records(tmp_path / "np.jsonl", [dataclasses.replace(r, persona=[]) for r in example_records])
    assert main(["score", path, "-q"]) == 0
    out = capsys.readouterr().out
    assert "p-f1 " not in out and "p-cover " not in out
    assert "skipped: p-f1:msp: no record has a persona" in out
    assert "skipped: p-cover:morpheus: no record has a persona" in out
    assert main(["score", path, "-q", "-m", "p-f1:msp"]) == 2
    assert "no metric can run on these records: p-f1:msp: no record has a persona" in capsys.readouterr().err


def test_published_paa_file_without_dataset_skips_persona_metrics(capsys):
    path = shared_or_skip("data", "outputs", "paa", "PAA.txt")
    assert main(["score", str(path), "-q", "-m", "f1:parlai", "-m", "p-f1:msp", "-m", "p-cover:morpheus"]) == 0
    out = capsys.readouterr().out
    assert "p-f1" not in out.split("signatures:")[0] and "skipped: p-f1:msp: no record has a persona" in out


def test_records_partly_without_persona_are_counted_in_a_warning(tmp_path, example_records, capsys):
    recs = [dataclasses.replace(r, persona=[]) if k in (2, 5) else r for k, r in enumerate(example_records)]
    path = write_records(tmp_path / "some.jsonl", recs)
    assert main(["score", path, "-q", "-m", "p-f1:msp"]) == 0
    captured = capsys.readouterr()
    assert "2 record(s) have no persona (" in captured.err and "some.jsonl:3, " in captured.err
    assert "p-f1:msp scores them 0 and keeps them in its mean over all items" in captured.err
    assert "p-f1 " in captured.out


def test_context_metrics_are_skipped_when_no_record_has_context(tmp_path, example_records, capsys):
    path = write_records(tmp_path / "nc.jsonl", [dataclasses.replace(r, context=[]) for r in example_records])
    assert main(["score", path, "-q", "-m", "f1:parlai", "-m", "p-f1:idl"]) == 0
    assert "skipped: p-f1:idl: no record has a context" in capsys.readouterr().out


# -- 3/4. outputs: never over an input, never into a missing folder, all or nothing ------------------------------

def test_score_refuses_to_overwrite_its_input(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    path.write_bytes(open(EXAMPLE, "rb").read())
    before = path.read_bytes()
    assert main(["score", str(path), "-q", "--json", str(path)]) == 2
    assert "output " + str(path) + " is the input" in capsys.readouterr().err
    assert path.read_bytes() == before
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert main(["score", str(path), "-q", "--per-item", str(link)]) == 2
    assert path.read_bytes() == before


def test_compare_refuses_to_overwrite_an_input(other_references, capsys):
    a, b = other_references
    before = open(a, "rb").read()
    assert main(["compare", a, b, "-m", "distinct:corpus", "-q", "--out", a]) == 2
    assert "is the input" in capsys.readouterr().err and open(a, "rb").read() == before


def test_missing_output_folder_is_an_error(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "x.json"
    assert main(["score", EXAMPLE, "-q", "--json", str(target)]) == 2
    assert f"folder {tmp_path / 'no' / 'such'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_an_output_that_is_a_folder_or_given_twice_is_refused_before_any_write(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    json_out = tmp_path / "s.json"
    assert main(["score", EXAMPLE, "-q", "--json", str(json_out), "--per-item", str(tmp_path / "adir")]) == 2
    err = capsys.readouterr().err
    assert f"output {tmp_path / 'adir'} is a folder" in err and ".tmp" not in err
    assert not json_out.exists()
    assert main(["score", EXAMPLE, "-q", "--json", str(json_out), "--per-item", str(json_out)]) == 2
    assert "given twice" in capsys.readouterr().err and not json_out.exists()


def test_score_writes_all_outputs_or_none(tmp_path, monkeypatch, capsys):
    import pdg_eval.cli.score as score_cli

    def failing_csv(run, path):
        with atomic_writer(path) as handle:
            handle.write("id\n")
            raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(score_cli, "write_per_item_csv", failing_csv)
    json_out, csv_out = tmp_path / "s.json", tmp_path / "items.csv"
    assert main(["score", EXAMPLE, "-q", "--json", str(json_out), "--per-item", str(csv_out)]) == 2
    assert f"{csv_out}: No space left on device" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == []  # neither output, no temporary file


def test_all_or_nothing_renames_only_after_the_block(tmp_path):
    first, second = tmp_path / "1.txt", tmp_path / "2.txt"
    with all_or_nothing():
        with atomic_writer(first) as handle:
            handle.write("one")
        assert not first.exists()
        with atomic_writer(second) as handle:
            handle.write("two")
    assert first.read_text() == "one" and second.read_text() == "two"
    with pytest.raises(RuntimeError):
        with all_or_nothing():
            with atomic_writer(first) as handle:
                handle.write("new")
            raise RuntimeError("later step failed")
    assert first.read_text() == "one" and sorted(os.listdir(tmp_path)) == ["1.txt", "2.txt"]


# -- 8. duplicates and self-scoring -------------------------------------------------------------------------------

def test_a_metric_of_the_preset_also_given_by_metric_is_scored_once(capsys):
    assert main(["score", EXAMPLE, "-q", "--preset", "paa", "-m", "bleu:paa_precision"]) == 0
    out = capsys.readouterr().out
    table = out.split("signatures:")[0]
    assert table.count("paa_precision") == 2  # bleu-1 and bleu-2, once each
    assert out.count("bleu:paa_precision|") == 1


def test_scoring_the_gold_against_itself_is_reported(tmp_path, example_records, capsys):
    gold = [dataclasses.replace(r, response=r.reference) for r in example_records]
    path = write_records(tmp_path / "gold.jsonl", gold)
    assert main(["score", path, "-q", "-m", "bleu:sacrebleu"]) == 0
    captured = capsys.readouterr()
    assert "every one of the 12 responses equals its reference" in captured.err
    assert main(["score", EXAMPLE, "-q", "-m", "bleu:sacrebleu"]) == 0
    assert "equals its reference" not in capsys.readouterr().err


def test_convai2_gold_file_scored_alone_says_so(convai2_valid, capsys):
    assert main(["score", str(convai2_valid), "-q", "-m", "f1:parlai"]) == 0
    assert "every one of the 7801 responses equals its reference" in capsys.readouterr().err


def test_english_models_are_not_run_on_chinese_records(tmp_path, example_records, capsys):
    """The shipped NLI and triple classifiers and the default sentence encoder were trained on English text: on
    Chinese records their metrics are skipped with the reason (refused when asked for by -m), the lexical ones run;
    the language is the records' own field, else told by CJK characters."""
    chinese = [dataclasses.replace(r, response="我喜欢猫。", persona=["我是个夜猫子。", "我喜欢猫。"],
                                   references=["你好呀。"], language=language)
               for r, language in zip(example_records, ["zh"] * len(example_records))]
    undeclared = [dataclasses.replace(r, language=None) for r in chinese]
    for records in (chinese, undeclared):
        path = write_records(tmp_path / "zh.jsonl", records)
        assert main(["score", path, "--tokenizer", "jieba", "-m", "c-score:pal_max"]) == 2
        assert "trained on en text and these records are zh" in capsys.readouterr().err
        assert main(["score", path, "--tokenizer", "jieba", "--json", str(tmp_path / "out.json")]) == 0
        capsys.readouterr()
        report = json.loads((tmp_path / "out.json").read_text())
        skipped = " ".join(report["skipped"])
        for label in ("c-score:chanliang", "cohcon:training"):
            assert f"{label}: its model was trained on en text" in skipped
        assert not any(m["spec"].startswith(("c-score", "cohcon")) for m in report["metrics"])
        assert any(m["spec"].startswith("bleu") for m in report["metrics"])
        assert main(["score", path, "--tokenizer", "jieba", "-m", "p-cosine"]) == 2
        assert "p-cosine:max: its model was trained on en text" in capsys.readouterr().err
