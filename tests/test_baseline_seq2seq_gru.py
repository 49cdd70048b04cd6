"""``seq2seq_gru`` (GRU encoder–decoder + Luong attention): masking, the three score functions, incremental decoding
against teacher forcing, overfitting a few ConvAI2 turns, save/load and the ``pdg-eval run`` round trip. Tiny sizes
with GPT-2's real BPE vocabulary (``random:tiny-gpt2``: tokenizer only)."""

from __future__ import annotations

import json

import pytest
import torch

import pdg_eval_baselines.seq2seq_gru  # noqa: F401  (registers the method)
from pdg_eval_methods.common.config import DecodingConfig, RunConfig
from pdg_eval_methods.common.data import Example, dialogues, load_convai2, take_dialogues
from pdg_eval_methods.common.generation import decode_loop
from pdg_eval_methods.common.method import get_method

from .conftest import shared_or_skip

TINY = {"embedding_size": 32, "hidden_size": 48, "dropout": 0.0, "max_source_tokens": 64}


def make(seed: int = 13, training: dict | None = None, **model):
    config = RunConfig(method="seq2seq_gru", model=TINY | model, seed=seed)
    for key, value in (training or {}).items():
        setattr(config.training, key, value)
    method = get_method("seq2seq_gru")(config)
    method.build()
    return method


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: intra-op threads only add overhead (and stall badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def convai2_path():
    return shared_or_skip("data", "convai2", "valid_self_original.txt")


@pytest.fixture(scope="module")
def first_turns(convai2_path) -> list[Example]:
    """The first turn of three dialogues (three personas)."""
    examples = take_dialogues(load_convai2(convai2_path), 3)
    return [turns[0] for turns in dialogues(examples).values()]


SYNTHETIC = [
    Example("a", ("i like dogs .", "i am tall ."), ("hi there", "hello !", "how are you doing today ?"),
            "great , just walked my two dogs .", "d1", 1, "s1"),
    Example("b", ("i hate mondays .",), ("hey",), "hello .", "d2", 0, "s2"),
    Example("c", (), (), "anyone here ?", "d3", 0, "s3"),  # no persona, no context: the source is "You:"
]


def batch_of(method, examples):
    return method.collate([method.features(example)[0] for example in examples])


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_shapes_masking_and_attention(score):
    method = make(attention=score)
    model = method.model.eval()
    batch = batch_of(method, SYNTHETIC)
    sources, targets = batch["attention_mask"].sum(1), (batch["labels"] != -100).sum(1)
    assert sources.tolist() == [len(method.features(e)[0]["input_ids"]) for e in SYNTHETIC] and min(sources) >= 1
    assert method.features(SYNTHETIC[0])[0]["labels"][-1] == method.tokenizer.eos_token_id
    with torch.no_grad():
        out = model(**batch)
    b, t, s = len(SYNTHETIC), batch["labels"].shape[1], batch["input_ids"].shape[1]
    assert out["logits"].shape == (b, t, len(method.tokenizer)) and out["attentions"].shape == (b, t, s)
    weights = out["attentions"]
    mask = batch["attention_mask"].bool()[:, None, :].expand_as(weights)
    assert torch.allclose(weights.sum(-1), torch.ones(b, t), atol=1e-5)
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    # the loss is the mean token cross-entropy over labelled positions
    labelled = batch["labels"] != -100
    expect = torch.nn.functional.cross_entropy(out["logits"][labelled], batch["labels"][labelled])
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    # padding never matters: other source padding tokens, other decoder inputs after the target, other pad id
    noisy = dict(batch)
    noisy["input_ids"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 1234)
    noisy["decoder_input_ids"] = model.shift_right(batch["labels"]).masked_fill(~labelled, 4321)
    with torch.no_grad():
        again = model(**noisy)
    assert again["loss"].item() == pytest.approx(out["loss"].item(), abs=1e-6)
    assert torch.allclose(again["logits"][labelled], out["logits"][labelled], atol=1e-5)
    # and each example scored alone gives the same logits as in the padded batch
    for i, example in enumerate(SYNTHETIC):
        with torch.no_grad():
            alone = model(**batch_of(method, [example]))
        assert torch.allclose(alone["logits"][0], out["logits"][i, :targets[i]], atol=1e-5)
        assert torch.allclose(alone["attentions"][0], out["attentions"][i, :targets[i], :sources[i]], atol=1e-6)


def test_options():
    from pdg_eval.errors import ConfigError, InputError

    with_persona, without = make(), make(with_persona=False, max_source_tokens=8)
    full = with_persona.tokenizer.decode(with_persona.features(SYNTHETIC[0])[0]["input_ids"])
    assert full == ("Persona: i like dogs . i am tall .\nPartner: hi there\nYou: hello !\n"
                    "Partner: how are you doing today ?\nYou:")
    short = without.tokenizer.decode(without.features(SYNTHETIC[0])[0]["input_ids"])
    assert "Persona" not in short and full.endswith(short) and len(without.tokenizer(short)["input_ids"]) == 8

    with pytest.raises(ConfigError, match="dot, general, concat"):
        make(attention="bahdanau")
    with pytest.raises(InputError, match="unknown key"):
        make(hidden=3)


@pytest.mark.parametrize("options", [{"attention": "general"}, {"attention": "concat", "input_feeding": False},
                                     {"attention": "dot", "bidirectional": False, "encoder_layers": 2,
                                      "decoder_layers": 2}])
def test_incremental_decoding_equals_teacher_forcing(options):
    method = make(**options)
    model = method.model.eval()
    batch = batch_of(method, SYNTHETIC)
    seen: list = []

    def step(tokens, state):
        logits, state = model.step(tokens, state)
        seen.append(logits)
        return logits, state

    n = 10
    with torch.no_grad():
        state = model.encode(batch["input_ids"], batch["attention_mask"])
        first = torch.full((len(SYNTHETIC), 1), model.start_id)
        decoded = decode_loop(step, state, first, DecodingConfig(max_new_tokens=n), eos_id=-1)  # never stops
        assert [len(row) for row in decoded] == [n] * len(SYNTHETIC)
        tokens = torch.tensor(decoded)
        out = model(batch["input_ids"], batch["attention_mask"], labels=tokens)
    assert torch.equal(out["logits"].argmax(-1), tokens)
    assert torch.allclose(out["logits"], torch.stack(seen, dim=1), atol=1e-5)


def test_overfits_a_few_turns(first_turns, tmp_path):
    from pdg_eval_methods.common.training import train

    method = make(embedding_size=64, hidden_size=64, training={
        "learning_rate": 2e-2, "max_steps": 40, "batch_size": 4, "logging_steps": 5, "lr_scheduler": "constant",
        "save_steps": 1000})
    summary = train(method, first_turns, tmp_path)
    assert summary.steps == 40 and len(summary.losses) == 8
    assert summary.last_loss < 0.5 * summary.first_loss, summary.losses
    method.model.eval()
    batch = batch_of(method, first_turns)
    with torch.no_grad():
        assert method.model(**batch)["loss"].item() < 1.0
    got = method.generate(first_turns, DecodingConfig(max_new_tokens=30, batch_size=2))
    assert method.generated_tokens > 0
    words = [(g.split(), e.response.split()) for g, e in zip(got, first_turns)]
    recall = [sum(w in have for w in set(want)) / len(set(want)) for have, want in words]
    assert sum(g == e.response for g, e in zip(got, first_turns)) >= 2, got
    assert min(recall) >= 0.8, (got, recall)


@pytest.mark.parametrize("tie", [False, True])
def test_save_and_load_round_trip(tmp_path, tie):
    from safetensors.torch import save_file

    method = make(tie_embeddings=tie, attention="concat")
    if tie:
        assert method.model.target_embedding is None
    save_file(method.model.state_dict(), str(tmp_path / "trainer-style.safetensors"))  # no shared tensors
    decoding = DecodingConfig(max_new_tokens=8, batch_size=2)
    before = method.generate(SYNTHETIC, decoding)
    method.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    config = RunConfig(method="seq2seq_gru", model=TINY | {"tie_embeddings": tie, "attention": "concat"}, seed=99)
    loaded = get_method("seq2seq_gru")(config)
    loaded.build(tmp_path / "model")
    assert len(loaded.tokenizer) == len(method.tokenizer) and loaded.tokenizer.pad_token_id is not None
    for (name, a), (_, b) in zip(method.model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.generate(SYNTHETIC, decoding) == before
    assert loaded.generate(SYNTHETIC[::-1], decoding) == before[::-1]  # batching and order do not matter


def test_cli_round_trip(convai2_path, tmp_path, monkeypatch, capsys):
    from pdg_eval.cli.main import main
    from pdg_eval.records import read_jsonl

    run, preds = tmp_path / "run", tmp_path / "preds.jsonl"
    sizes = [f"model.{k}={v}" for k, v in TINY.items()]
    common = [x for item in sizes for x in ("--set", item)]
    assert main(["run", "seq2seq_gru", "train", *common, "--set", f"data.train={convai2_path}",
                 "--set", "data.train_dialogues=1", "--set", "training.max_steps=3", "--set", "training.batch_size=4",
                 "--set", "training.logging_steps=1", "--out", str(run), "-q"]) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["backbone"]["spec"] == "random:tiny-gpt2" and record["backbone"]["vocab"] == 50257
    assert record["summary"]["steps"] == 3 and (run / "model" / "model.safetensors").is_file()
    assert main(["run", "seq2seq_gru", "generate", "--checkpoint", str(run), "--set", f"data.eval={convai2_path}",
                 "--set", "data.eval_dialogues=1", "--set", "decoding.max_new_tokens=6", "--out", str(preds),
                 "-q"]) == 0
    records = list(read_jsonl(preds))
    assert len(records) == len(take_dialogues(load_convai2(convai2_path), 1))
    provenance = json.loads((tmp_path / "preds.jsonl.run.json").read_text())
    assert provenance["checkpoint"] == str(run) and provenance["config"]["model"]["hidden_size"] == TINY["hidden_size"]
    capsys.readouterr()
    assert main(["score", str(preds), "--preset", "paa", "-q"]) == 0
