"""Metric options, spec strings, the tokenizer override and numeric command-line options: every option a variant
does not use, every empty or out-of-range value is an error naming the variant; a spec rebuilds its signature;
``--tokenizer`` reaches every metric that splits text (ParlAI F1 included) or is refused with the reason."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from pdg_eval.cli.main import build_parser, main
from pdg_eval.errors import ConfigError
from pdg_eval.metrics import load_all
from pdg_eval.metrics.base import METRICS, build_metric
from pdg_eval.records import Record
from pdg_eval.scoring import MetricSpec, score_records
from pdg_eval.files import file_sha256
from pdg_eval.tokenize import get_tokenizer

# -- metric options ------------------------------------------------------------------------------------------------

BAD_SPECS = [  # (spec, what the error says besides the variant and its options)
    ("bleu:sacrebleu,smooth=method1", "option smooth= does not apply to this variant"),
    ("bleu:paa_precision,smooth=none", "option smooth= does not apply to this variant"),
    ("bleu,tok=", "option tok= needs a value"),
    ("bleu,smooth=", "option smooth= needs a value"),
    ("bleu,smooth=method2", "smooth=: expected none or method1, got 'method2'"),
    ("distinct,n=0", "n=: expected an integer from 1 to 6, got '0'"),
    ("distinct:per_response,n=abc", "n=: expected an integer from 1 to 6, got 'abc'"),
    ("self-bleu:texygen,grams=2,9", "grams=: expected an integer from 1 to 5, got '9'"),
    ("self-bleu:texygen,seed=3", "option seed= does not apply to this variant"),
    ("self-bleu:morpheus,grams=2", "option grams= does not apply to this variant"),
    ("self-bleu:morpheus,seed=x", "seed=: expected an integer >= 0, got 'x'"),
    ("self-bleu:morpheus,pairing=cyclic,seed=1", "seed= applies only to pairing=shuffle"),
    ("hits@1,seed=2", "seed= applies only to ties=random"),
    ("ppl:token_micro,batch_size=4", "option batch_size= does not apply to this variant"),
    ("ppl:paml_batch,batch_size=0", "batch_size=: expected an integer >= 1, got '0'"),
    ("rouge:coco,stat=f", "option stat= does not apply to this variant"),
    ("rouge:rouge_score,guards=clv", "option guards= does not apply to this variant"),
    ("p-f1:idl,stopwords=words.txt", "option stopwords= does not apply to this variant"),
    ("p-f1,history_source=", "option history_source= needs a value"),
    ("p-cover:idl_released,history_source=context", "option history_source= does not apply to this variant"),
    ("c-score:chanliang,model=m,max_length=0", "max_length=: expected an integer >= 1, got '0'"),
    ("cohcon,model=m,batch_size=-1", "batch_size=: expected an integer >= 1, got '-1'"),
    ("bleu:idl_released,tok=char", "takes no tokenizer, got 'char' (tok= or --tokenizer): it compares raw characters"),
    ("f1,tok=spacy", "tok=: unknown tokenizer 'spacy'"),
]


@pytest.mark.parametrize("spec,problem", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_options_a_variant_does_not_take_and_bad_values_are_errors(spec, problem):
    label = build_label(spec)
    with pytest.raises(ConfigError) as caught:
        build_metric(spec)
    message = str(caught.value)
    assert message.startswith(f"{label}: {problem}") and f"(options of {label}: " in message


def build_label(spec: str) -> str:
    load_all()
    name, _, variant = spec.split(",")[0].partition(":")
    return f"{name}:{variant or METRICS[name].default_variant}"


def test_error_lists_the_options_of_the_variant():
    with pytest.raises(ConfigError, match=r"\(options of bleu:sacrebleu: tok=TOKENIZER\)$"):
        build_metric("bleu:sacrebleu,smooth=method1")
    with pytest.raises(ConfigError, match=r"\(options of ppl:token_micro: none\)$"):
        build_metric("ppl,batch_size=2")
    with pytest.raises(ConfigError, match=r"options of self-bleu:morpheus: pairing=shuffle\|cyclic, seed=INT>=0, "
                                          r"tok=TOKENIZER\)$"):
        build_metric("self-bleu:morpheus,grams=2")


SPECS = [  # (spec, spec string the metric writes)
    ("bleu:sacrebleu", "bleu:sacrebleu,tok=13a"),
    ("bleu:paa_precision", "bleu:paa_precision,tok=13a"),
    ("bleu:idl_released", "bleu:idl_released"),
    ("bleu:pal_swapped", "bleu:pal_swapped,tok=whitespace"),
    ("bleu,tok=treebank", "bleu:nltk_sentence_avg,smooth=none,tok=treebank"),
    ("bleu:nltk_corpus,smooth=method1", "bleu:nltk_corpus,smooth=method1,tok=whitespace"),
    ("rouge:pal_swapped", "rouge:pal_swapped,tok=whitespace"),
    ("rouge:rouge_score", "rouge:rouge_score,stat=f,tok=rouge-score"),
    ("self-bleu", "self-bleu:texygen,grams=2,3,4,tok=treebank"),
    ("self-bleu:morpheus", "self-bleu:morpheus,pairing=shuffle,seed=0,tok=whitespace"),
    ("self-bleu:morpheus,pairing=cyclic", "self-bleu:morpheus,pairing=cyclic,tok=whitespace"),
    ("hits@1", "hits@1:scores,ties=miss"),
    ("hits@1,ties=random", "hits@1:scores,seed=0,ties=random"),
    ("ppl", "ppl:token_micro"),
    ("p-cover:idl_released", "p-cover:idl_released"),
    ("f1", "f1:parlai,tok=parlai"),
    ("f1,tok=jieba", "f1:parlai,tok=parlai+jieba"),
]


@pytest.mark.parametrize("spec,written", SPECS, ids=[s[0] for s in SPECS])
def test_spec_holds_only_the_options_that_change_the_number(spec, written):
    assert build_metric(spec).spec == written


@pytest.fixture()
def no_models(monkeypatch):
    """Model folders and loaders replaced by stand-ins with a weights hash and a label order (no model is loaded)."""
    from pdg_eval.models import runtime, triple_classifier

    stand_in = SimpleNamespace(weights_sha256="0123456789abcdef", id2label={0: "contradiction", 1: "neutral",
                                                                           2: "entailment"}, premise_order=None,
                               trained_max_length=None, manifest={},
                               signature_fields=lambda: {"sha256": "0123456789ab"})
    for module, loader in ((runtime, "ModelFolder"), (triple_classifier, "triple_classifier_folder"),
                           (runtime, "load_sentence_encoder")):
        monkeypatch.setattr(module, loader, lambda *args: stand_in)


def every_variant_spec(tmp_path) -> list[str]:
    """Every registered metric:variant with the options it needs, and some with non-default options."""
    load_all()
    idf = tmp_path / "idf.tsv"
    idf.write_text("dog\t2.5\n", encoding="utf-8")
    stop = tmp_path / "stop.txt"
    stop.write_text("i\n", encoding="utf-8")
    required = {"p-cover:msp": f"idf={idf}", "c-score": "model=NLI", "cohcon": "model=CC"}
    specs = []
    for name, cls in sorted(METRICS.items()):
        for variant in cls.variants:
            extra = required.get(f"{name}:{variant}") or required.get(name)
            specs.append(f"{name}:{variant}" + (f",{extra}" if extra else ""))
    return specs + [f"p-f1:msp,stopwords={stop},history_source=context", "bleu:nltk_corpus,smooth=method1",
                    "self-bleu:morpheus,pairing=cyclic", "hits@1,ties=random,seed=4", "ppl:paml_batch,batch_size=8",
                    "distinct:concat,n=4,tok=char", "f1,tok=zh", "rouge,stat=f,guards=clv",
                    "c-score:pal_max,model=NLI,premise=response,label_map=0:contradiction,1:neutral,2:entailment",
                    "p-cosine:concat,model=MODEL", "cohcon:training,model=CC,max_length=64,batch_size=2"]


#: signature entry of a spec option whose signature shows something else than the text (a file's hash)
SIGNATURE_KEY = {"label_map": "labels"}


def test_every_spec_rebuilds_its_signature_and_names_the_same_options(tmp_path, no_models):
    checked = 0
    for spec in every_variant_spec(tmp_path):
        metric = build_metric(spec)
        again = build_metric(metric.spec)
        assert again.spec == metric.spec and str(again.signature()) == str(metric.signature()), spec
        signature = dict(metric.signature().options)
        for key, value in metric.spec_options().items():
            shown = signature[SIGNATURE_KEY.get(key, key)]
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            assert shown in (text, f"sha256:{file_sha256(text)[:12]}" if key in ("idf", "stopwords") else text), spec
        if metric.tokenizer is not None:
            assert metric.signature().tokenizer == metric.tokenizer.signature, spec
        assert "batch_size=" not in metric.spec or metric.name == "ppl", spec  # runtime options stay out
        checked += 1
    assert checked >= sum(len(cls.variants) for cls in METRICS.values()) + 11


# -- the tokenizer override ----------------------------------------------------------------------------------------


def test_parlai_normalization_then_another_tokenizer():
    tok = get_tokenizer("parlai+char")
    assert tok("The Cat, a DOG!") == ("c", "a", "t", "d", "o", "g")  # lowercased, articles and punctuation dropped
    assert tok.signature == "parlai+char" and tok.segments_cjk
    assert get_tokenizer("parlai+cl100k").signature == "parlai+cl100k@223921b76ee9"
    assert not get_tokenizer("parlai").segments_cjk


def chinese(response: str = "我住在北京。", reference: str = "北京。") -> list[Record]:
    return [Record(id="1", response=response, references=[reference], persona=["我住在北京。"])]


# "我住在北京。" vs "北京。": char and zh split every character, so the response has 6 tokens (我 住 在 北 京 。) and the
# reference 3, all shared: P = 3/6, R = 3/3, F1 = 2PR/(P+R) = 2/3. jieba gives 我 住 在 北京 。 and 北京 。: P = 2/5,
# R = 2/2, F1 = (2 * 2/5) / (7/5) = 4/7.
CHINESE_F1 = [("char", 2 / 3), ("zh", 2 / 3), ("jieba", 4 / 7)]


@pytest.mark.parametrize("tokenizer,expected", CHINESE_F1, ids=[c[0] for c in CHINESE_F1])
def test_chinese_f1_under_the_tokenizer_override(tokenizer, expected):
    run = score_records(chinese(), [MetricSpec("f1"), MetricSpec("bleu:parlai")], tokenizer=tokenizer)
    f1 = run.results[0]
    assert f1.scores["f1"] == pytest.approx(expected, abs=1e-12)
    assert f1.signature.tokenizer == f"parlai+{tokenizer}" and f1.metric.spec == f"f1:parlai,tok=parlai+{tokenizer}"
    assert run.results[1].signature.tokenizer == f"parlai+{tokenizer}"
    assert not any("CJK" in w for w in run.warnings)


def test_chinese_f1_without_a_segmenting_tokenizer_is_zero_and_warned():
    run = score_records(chinese(), [MetricSpec("f1"), MetricSpec("bleu:idl_released")])
    assert run.results[0].scores["f1"] == 0.0  # "我住在北京" and "北京" share no whitespace token
    [warning] = [w for w in run.warnings if "CJK" in w]
    assert "the tokenizer of f1:parlai does not segment" in warning  # raw characters (IDL's BLEU) are not named


def test_fixed_text_handling_refuses_the_override():
    with pytest.raises(ConfigError, match="bleu:idl_released: takes no tokenizer, got 'char'"):
        score_records(chinese(), [MetricSpec("bleu:idl_released")], tokenizer="char")
    run = score_records(chinese(), [MetricSpec("p-cover:idl_released"), MetricSpec("f1")], tokenizer="char")
    assert run.results[0].signature.tokenizer == "none"  # reads no text: the override does not concern it


def write_chinese(tmp_path) -> str:
    path = tmp_path / "zh.jsonl"
    path.write_text(json.dumps({"id": "1", "response": "我住在北京。", "reference": "北京。"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return str(path)


CJK_WARNINGS = [  # (arguments, metrics the warning names; none: no warning)
    (["-m", "f1"], ["f1:parlai"]),
    (["-m", "f1", "-m", "bleu:sacrebleu", "--tokenizer", "whitespace"], ["f1:parlai", "bleu:sacrebleu"]),
    (["-m", "bleu,tok=char", "-m", "rouge:rouge_score"], ["rouge:rouge_score"]),
    (["-m", "f1", "-m", "bleu:sacrebleu", "-m", "distinct", "--tokenizer", "jieba"], []),
    (["-m", "f1,tok=char", "-m", "rouge:rouge_score,tok=zh"], []),
]


@pytest.mark.parametrize("args,named", CJK_WARNINGS, ids=[" ".join(c[0]) for c in CJK_WARNINGS])
def test_cjk_warning_follows_the_effective_tokenizer(tmp_path, capsys, args, named):
    assert main(["score", write_chinese(tmp_path), "-q", *args]) == 0
    err = capsys.readouterr().err
    if not named:
        assert "CJK" not in err
    else:
        assert f"which the tokenizer of {', '.join(named)} does not segment" in err


# -- numeric command-line options ----------------------------------------------------------------------------------

BAD_NUMBERS = [  # (argv, the error argparse prints)
    (["score", "p.jsonl", "--max-record-bytes", "0"], "argument --max-record-bytes: expected an integer >= 1, got '0'"),
    (["compare", "a", "b", "--ci-resamples", "-1"], "argument --ci-resamples: expected an integer >= 0, got '-1'"),
    (["compare", "a", "b", "--resamples", "0"], "argument --resamples: expected an integer >= 1, got '0'"),
    (["compare", "a", "b", "--loop-resamples", "-5"], "argument --loop-resamples: expected an integer >= 0"),
    (["compare", "a", "b", "--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
    (["compare", "a", "b", "--alpha", "1"], "argument --alpha: expected a number in (0, 1), got '1'"),
    (["power", "--sd", "1", "--delta", "0.1", "--alpha", "nan"], "argument --alpha: expected a number in (0, 1)"),
    (["power", "--win-rate", "0.6", "--power", "0"], "argument --power: expected a number in (0, 1), got '0'"),
    (["power", "--sd", "1", "--n", "0"], "argument --n: expected an integer >= 1, got '0'"),
    (["power", "--win-rate", "0.6", "--max-n", "-1"], "argument --max-n: expected an integer >= 1"),
    (["leaderboard", "run", "convai2", "--resamples", "0"], "argument --resamples: expected an integer >= 1"),
    (["leaderboard", "run", "convai2", "--ci-resamples", "-1"], "argument --ci-resamples: expected an integer >= 0"),
    (["annotate", "serve", "study", "--port", "70000"], "argument --port: expected an integer from 1 to 65535"),
    (["annotate", "report", "s", "--out", "o", "--resamples", "-1"], "argument --resamples: expected an integer >= 0"),
    (["rank", "r.jsonl", "--out", "o", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
    (["ppl", "r.jsonl", "--out", "o", "--limit", "-1"], "argument --limit: expected an integer >= 0, got '-1'"),
    (["ppl", "r.jsonl", "--out", "o", "--max-prompt-tokens", "0"], "argument --max-prompt-tokens: expected an integer"),
    (["scorers", "train", "nli", "--out", "o", "--epochs", "0"], "argument --epochs: expected an integer >= 1"),
    (["scorers", "train", "nli", "--out", "o", "--lr=-1e-5"], "argument --lr: expected a number > 0, got '-1e-5'"),
    (["scorers", "pairs", "--out", "o", "--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
]


@pytest.mark.parametrize("argv,message", BAD_NUMBERS, ids=[" ".join(b[0][:2] + b[0][-2:]) for b in BAD_NUMBERS])
def test_out_of_range_numbers_are_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and message in err and "Traceback" not in err


def test_zero_is_accepted_where_documented_and_one_below_is_not():
    args = build_parser().parse_args(["compare", "a", "b", "--ci-resamples", "0", "--loop-resamples", "0"])
    assert (args.ci_resamples, args.loop_resamples) == (0, 0)
    assert build_parser().parse_args(["ppl", "r.jsonl", "--out", "o", "--limit", "0"]).limit == 0
    assert build_parser().parse_args(["compare", "a", "b", "--alpha", "0.01"]).alpha == 0.01
    for argv in (["compare", "a", "b", "--ci-resamples", "-1"], ["ppl", "r.jsonl", "--out", "o", "--limit", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
