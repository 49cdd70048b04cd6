"""End-to-end CLI behaviour on the bundled example: table, JSON, per-item CSV, determinism."""

from __future__ import annotations

import csv
import json
from importlib import resources

import jsonschema

from pdg_eval.cli.main import main
from pdg_eval.metrics.base import build_metric
from pdg_eval.presets import PRESETS
from pdg_eval.records import read_jsonl, record_from_dict, record_schema, write_jsonl

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def test_example_validates_against_schema_and_round_trips(tmp_path):
    schema = record_schema()
    lines = open(EXAMPLE, encoding="utf-8").read().splitlines()
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
    records = list(read_jsonl(EXAMPLE))
    assert len(records) == 12
    out = tmp_path / "copy.jsonl"
    assert write_jsonl(records, out) == 12
    again = list(read_jsonl(out))
    assert [r.to_json() for r in again] == [r.to_json() for r in records]
    assert record_from_dict(records[0].to_json()).references == records[0].references


def test_score_example_default_preset(tmp_path, capsys):
    out_json, out_csv = tmp_path / "s.json", tmp_path / "items.csv"
    assert main(["score", EXAMPLE, "-q", "--json", str(out_json), "--per-item", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "12 items, preset pdg" in text and "signatures:" in text
    assert "[1] bleu:nltk_sentence_avg|tok:treebank|smooth:none|w3:0.33|scale:x100|version:pdg-eval-" in text
    assert "|preset:" not in text  # the preset is in the run's header, not in any number's identity
    doc = json.loads(out_json.read_text())
    assert doc["n_items"] == 12 and doc["items"]["ids"][0] == "example-0-0"
    labels = {(m["name"], m["variant"]) for m in doc["metrics"]}
    assert ("hits@1", "scores") in labels and ("ppl", "token_micro") in labels
    assert all(row["signature"] in doc["items"]["stats"] for row in doc["scores"])
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][0] == "id" and len(rows) == 13
    assert "bleu:nltk_sentence_avg:bleu-1" in rows[0] and "distinct:corpus:dist-1" not in rows[0]


def test_json_statistics_reaggregate_to_the_reported_values(tmp_path):
    """The per-item statistics in --json are sufficient: re-aggregating them gives every value."""
    out_json = tmp_path / "s.json"
    assert main(["score", EXAMPLE, "-q", "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    for m in doc["metrics"]:
        metric = build_metric(m["spec"])
        assert str(metric.signature()) == m["signature"]["string"]
        stats = doc["items"]["stats"][m["signature"]["string"]]
        assert metric.aggregate(stats) == m["values"], m["spec"]


def test_output_is_deterministic(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["score", EXAMPLE, "-q", "--json", str(a)]) == 0
    assert main(["score", EXAMPLE, "-q", "--json", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_every_preset_runs_on_the_example(capsys):
    for name in PRESETS:
        assert main(["score", EXAMPLE, "-q", "--preset", name]) == 0, name
        assert f"preset {name}" in capsys.readouterr().out


def test_free_metric_selection_and_tokenizer_override(capsys):
    assert main(["score", EXAMPLE, "-q", "-m", "bleu:sacrebleu", "-m", "distinct:corpus,tok=cl100k,n=3"]) == 0
    out = capsys.readouterr().out
    assert "dist-3" in out and "tok:cl100k@223921b76ee9" in out and "preset" not in out.splitlines()[0]
    assert main(["score", EXAMPLE, "-q", "--preset", "dhap", "--tokenizer", "char"]) == 0
    assert "tok:char" in capsys.readouterr().out


def test_listing_commands(capsys):
    assert main(["metrics"]) == 0
    listing = capsys.readouterr().out
    assert "bleu:clv_released" in listing and "[bug-compatible]" in listing
    assert main(["presets"]) == 0
    assert "morpheus_code" in capsys.readouterr().out
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "pdg-eval record"


def test_usage_errors_are_one_line_with_exit_code_2():
    import subprocess
    import sys

    for args in (["score", EXAMPLE, "--max-record-bytes", "0"], ["compare", EXAMPLE, EXAMPLE, "--ci-resamples", "-1"],
                 ["score"], ["no-such-command"]):
        done = subprocess.run([sys.executable, "-m", "pdg_eval.cli.main", *args], capture_output=True, text=True)
        assert done.returncode == 2 and done.stdout == "", args
        assert done.stderr.count("\n") == 1 and "error: " in done.stderr and "--help`)" in done.stderr, done.stderr


def test_output_piped_into_a_closed_reader_is_not_an_error():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "pdg_eval.cli.main", "metrics"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first write (like `| head` that has read its lines)
    err = process.stderr.read()
    assert process.wait() == 0 and err == b""


def test_jobs_give_the_same_bytes(tmp_path, capsys):
    """`score --jobs 2`: the lexical statistics of several chunks computed in two processes, the same outputs."""
    with open(EXAMPLE, encoding="utf-8") as handle:
        base = [json.loads(line) for line in handle]
    records = tmp_path / "sample.jsonl"  # 600 records: three chunks of statistics
    records.write_text("".join(json.dumps(dict(r, id=f"{k}-{r['id']}")) + "\n" for k in range(50) for r in base), "utf-8")
    outputs = {}
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        out.mkdir()
        args = ["score", str(records), "-q", "--jobs", str(jobs), "--json", str(out / "s.json"), "--per-item",
                str(out / "items.csv"), "-m", "self-bleu", "-m", "distinct:corpus", "-m", "bleu:sacrebleu", "-m", "f1",
                "-m", "hits@1", "-m", "p-cover:morpheus"]
        assert main(args) == 0
        outputs[jobs] = (capsys.readouterr().out, (out / "s.json").read_bytes(), (out / "items.csv").read_bytes())
    assert outputs[1] == outputs[2]
    tables = {}  # no item outputs: the workers send the item values of mean metrics, not their statistics
    for jobs in (1, 2):
        assert main(["score", str(records), "--jobs", str(jobs), "-m", "bleu:nltk_sentence_avg", "-m", "rouge:pltrdy",
                     "-m", "distinct:per_response", "-m", "bleu:nltk_corpus", "-m", "distinct:corpus"]) == 0
        tables[jobs] = capsys.readouterr().out
    assert tables[1] == tables[2] and "rouge:pltrdy" in tables[1]


def test_without_item_outputs_the_statistics_are_not_kept_and_the_scores_are_the_same(tmp_path):
    """No --json items, --per-item or --plot: mean-of-items metrics keep only their values (RunningMean); the table,
    and the JSON without items, are byte-identical to a run that keeps everything."""
    from pdg_eval.records import read_jsonl
    from pdg_eval.scoring import MetricSpec, score_records

    specs = [MetricSpec(s) for s in ("bleu:nltk_sentence_avg", "rouge:pltrdy,guards=clv", "f1", "p-f1",
                                     "distinct:corpus", "rouge:coco")]
    kept = score_records(read_jsonl(EXAMPLE), specs)
    lean = score_records(read_jsonl(EXAMPLE), specs, keep_stats=False)
    assert [r.scores for r in lean.results] == [r.scores for r in kept.results]
    assert [r.stats is None for r in lean.results] == [True, True, True, True, False, False]  # corpus-level: kept
    assert lean.n_items == kept.n_items and lean.ids == [] and lean.warnings == kept.warnings
    tables = []
    for name, extra in (("kept", ["--per-item", str(tmp_path / "items.csv")]), ("lean", [])):
        out = tmp_path / f"{name}.json"
        assert main(["score", EXAMPLE, "-q", "--json", str(out), "--no-item-stats", *extra]) == 0
        tables.append(out.read_bytes())
    assert tables[0] == tables[1]


def test_jobs_send_the_candidates_only_to_metrics_that_declare_them():
    """A ConvAI2 turn's candidates are most of what a --jobs worker would be sent: workers get them only when one of
    their metrics names them (``scored_against`` or ``requires``), which every reader of them must."""
    from pdg_eval.metrics.base import MeanOfItems
    from pdg_eval.scoring import ChunkSink, ParallelStats

    class CandidateCount(MeanOfItems):
        name, variant, keys = "test", "candidates", ["n"]

        def item_stats(self, record):
            return len(record.candidates or ())

        def item_values(self, stats):
            return {"n": stats}

    class DeclaredCandidateCount(CandidateCount):
        def scored_against(self):
            return ("references", "candidates")

    records = [record_from_dict({"id": str(i), "response": "a", "reference": "a", "candidates": ["a", "b", "c"]})
               for i in range(600)]
    counted = {}
    for cls in (CandidateCount, DeclaredCandidateCount):
        sink = ChunkSink([cls()], keep_stats=True)
        with ParallelStats(2, sink) as parallel:
            for start in range(0, len(records), 256):
                parallel.submit(records[start:start + 256])
            parallel.finish()
        counted[cls] = sink.stats[0]
    assert counted[DeclaredCandidateCount] == [3] * 600
    assert counted[CandidateCount] == [0] * 600
