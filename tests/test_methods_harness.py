"""The methods harness: configuration, backbones (offline GPT-2 tokenizer parity), prompts and loss masks, training
with resumption, batched generation, and every baseline training on a tiny config and round-tripping through
``pdg-eval score``."""

from __future__ import annotations

import json
import random

import pytest
import torch

from pdg_eval_methods.common.backbones import GPT2_PATTERN, gpt2_tiktoken_path, gpt2_tokenizer, load_backbone
from pdg_eval_methods.common.config import DecodingConfig, load_run_config
from pdg_eval_methods.common.data import load_convai2, sessions_by_speaker, take_dialogues
from pdg_eval_methods.common.generation import generate_causal_lm
from pdg_eval_methods.common.method import get_method, method_names
from pdg_eval_methods.common.prompts import Formatter
from pdg_eval_methods.common.training import train
from pdg_eval.cli.main import main
from pdg_eval.errors import ConfigError, InputError

TINY = ["backbone=random:tiny-gpt2", "training.learning_rate=3e-3", "training.batch_size=4",
        "training.logging_steps=5", "training.max_length=96", "decoding.max_new_tokens=8", "decoding.batch_size=4"]


@pytest.fixture(scope="module")
def examples(convai2_valid):
    return load_convai2(convai2_valid)


# -- configuration ------------------------------------------------------------------------------------------------

def test_config_rejects_unknown_keys_and_coerces_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  learning_rate: 1e-5\n  batch_size: '4'\ndecoding:\n  strategy: greedy\n")
    config = load_run_config(path, "causal_lm_ft", ["decoding.max_new_tokens=20", "model.with_persona=false"])
    assert config.training.learning_rate == 1e-5 and config.training.batch_size == 4
    assert config.decoding.max_new_tokens == 20 and config.model == {"with_persona": False}
    path.write_text("training:\n  learning_rat: 1e-5\n")
    with pytest.raises(InputError, match="training.learning_rat: unknown key"):
        load_run_config(path, "causal_lm_ft")
    with pytest.raises(InputError, match="expected a number"):
        load_run_config(None, "causal_lm_ft", ["training.batch_size=four"])
    with pytest.raises(ConfigError, match="strategy"):
        load_run_config(None, "causal_lm_ft", ["decoding.strategy=nucleus"])
    with pytest.raises(InputError, match="configures 'paa'"):
        path.write_text("method: paa\n")
        load_run_config(path, "causal_lm_ft")


# -- backbones ----------------------------------------------------------------------------------------------------

def test_offline_gpt2_tokenizer_matches_tiktoken_gpt2_ranks(examples):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    reference = tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN,
                                  mergeable_ranks=load_tiktoken_bpe(str(gpt2_tiktoken_path())),
                                  special_tokens={"<|endoftext|>": 50256})
    tokenizer = gpt2_tokenizer()
    assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]  # GPT-2's own ids
    rng = random.Random(0)
    texts = [e.response for e in examples[:1500]] + [" ".join(e.persona) for e in examples[:300:7]]
    texts += ["".join(rng.choice("aé 😀\n\t.,'sxyz0123") for _ in range(40)) for _ in range(200)]
    for text in texts:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(text), text


def test_random_backbones_and_errors():
    tiny = load_backbone("random:tiny-gpt2", seed=1)
    again = load_backbone("random:tiny-gpt2", seed=1)
    assert tiny.describe()["parameters"] == sum(p.numel() for p in again.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(tiny.model.parameters(), again.model.parameters()))
    wide = load_backbone("random:tiny-gpt2", overrides={"n_layer": 1})
    assert wide.model.config.n_layer == 1 and wide.describe()["overrides"] == {"n_layer": 1}
    with pytest.raises(ConfigError, match="unknown random architecture"):
        load_backbone("random:gpt5")
    with pytest.raises(ConfigError, match="overrides apply to random"):
        load_backbone("smollm2", overrides={"n_layer": 1})


# -- prompts and loss masks ---------------------------------------------------------------------------------------

def test_single_turn_loss_is_on_the_response_only(examples):
    tokenizer = gpt2_tokenizer()
    formatter = Formatter(tokenizer)
    example = examples[3]
    feature = formatter.single_turn(example.persona, example.context, example.response, max_length=1024)
    target = [t for t, label in zip(feature["input_ids"], feature["labels"]) if label != -100]
    assert tokenizer.decode(target) == " " + example.response + "<|endoftext|>"
    prompt = tokenizer.decode(feature["input_ids"][:feature["labels"].index(target[0])])
    assert prompt.startswith("Persona: i read twenty books a year.") and prompt.endswith(f"Partner: {example.context[-1]}\nYou:")
    short = formatter.single_turn(example.persona, example.context, example.response, max_length=40)
    assert len(short["input_ids"]) == 40 and short["input_ids"][-len(target):] == target  # the prompt is cut, not the reply


def test_whole_dialogue_trains_every_speaker_turn(examples):
    tokenizer = gpt2_tokenizer()
    formatter = Formatter(tokenizer, with_persona=False)
    last = max((e for e in examples if e.dialogue_id == "0"), key=lambda e: e.turn)
    turns = [*last.context, last.response]
    feature = formatter.whole_dialogue((), turns, max_length=4096)
    spans, current = [], []
    for token, label in zip(feature["input_ids"], feature["labels"]):
        if label != -100:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    spans.append(tokenizer.decode(current))
    speaker_turns = turns[1::2]
    assert [s.strip().replace("<|endoftext|>", "") for s in spans] == speaker_turns
    assert "Persona:" not in tokenizer.decode(feature["input_ids"])


def test_chat_format_targets_the_assistant_turn(examples):
    from pdg_eval_methods.common.backbones import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    formatter = Formatter(tokenizer, "chat")
    example = examples[0]
    feature = formatter.single_turn(example.persona, example.context, example.response, max_length=512)
    target = tokenizer.decode([t for t, l in zip(feature["input_ids"], feature["labels"]) if l != -100])
    assert target.startswith(example.response) and "<|im_end|>" in target
    assert "Here are your persona settings" in tokenizer.decode(feature["input_ids"])
    with pytest.raises(ConfigError, match="chat template"):
        Formatter(gpt2_tokenizer(), "chat")


@pytest.mark.parametrize("fmt", ["plain", "chat"])
def test_a_long_prompt_loses_its_oldest_turns_not_the_persona(fmt):
    """Over the limit, whole turns go two at a time from the oldest, so the persona (plain: the ``Persona:`` line;
    chat: the system message and template header) and the speakers' order stay; the same for training sequences."""
    from pdg_eval_methods.common.backbones import smollm2_tokenizer

    formatter = Formatter(smollm2_tokenizer(), fmt)
    persona = ("i love cats .", "i live in ohio .")
    context = tuple(f"turn number {i} says something rather long about the weather today ." for i in range(9))
    full = formatter.prompt_ids(persona, context, 0)
    last_three = formatter.ids(formatter.prompt(persona, context[-3:]))
    assert len(last_three) < len(full)
    ids = formatter.prompt_ids(persona, context, len(last_three))
    assert ids == last_three  # 9 turns -> 7 -> 5 -> 3, the first that fits
    assert "i love cats" in formatter.tokenizer.decode(ids) and "turn number 5" not in formatter.tokenizer.decode(ids)
    feature = formatter.single_turn(persona, context, "me too .", max_length=len(last_three) + 12)
    text = formatter.tokenizer.decode(feature["input_ids"])
    assert "i love cats" in text and "turn number 6" in text and "turn number 5" not in text
    tiny = formatter.prompt_ids(persona, context, 5)  # too long even with two turns: the left cut, as before
    assert tiny == formatter.ids(formatter.prompt(persona, context[-1:]))[-5:]


def test_instruction_prompts_in_both_formats():
    from pdg_eval_methods.common.backbones import smollm2_tokenizer

    plain = Formatter(gpt2_tokenizer())
    assert plain.instruction("Say hi.\n", "person2: ") == "Say hi.\n\nperson2: "  # PAL's GPT-2 path
    assert plain.instruction("Pick one.\n") == "Pick one.\n"
    feature = plain.instruction_turn("Say hi.\n", "person2: ", " hello there ", max_length=64)
    prompt_ids = plain.ids("Say hi.\n\nperson2: ")
    assert feature["input_ids"] == prompt_ids + plain.ids("hello there") + [plain.tokenizer.eos_token_id]
    assert feature["labels"] == [-100] * len(prompt_ids) + feature["input_ids"][len(prompt_ids):]
    cut = plain.instruction_turn("Say hi.\n", "person2: ", "hello there", max_length=4)
    assert len(cut["input_ids"]) == 4 and cut["labels"][1:] == plain.ids("hello there") + [plain.tokenizer.eos_token_id]

    chat = Formatter(smollm2_tokenizer(), "chat")
    prompt = chat.instruction("Say hi.", "person2: ")
    assert prompt.endswith("<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\nperson2: ")
    assert prompt.count("<|im_start|>user") == 1
    feature = chat.instruction_turn("Say hi.", "person2: ", "hello there", max_length=512)
    target = chat.tokenizer.decode([t for t, l in zip(feature["input_ids"], feature["labels"]) if l != -100])
    assert target == "hello there<|im_end|>\n"
    assert chat.tokenizer.decode(feature["input_ids"]) == prompt + target


# -- training and generation ----------------------------------------------------------------------------------------

def test_resumed_training_equals_an_uninterrupted_run(examples, tmp_path):
    data = take_dialogues(examples, 2)[:8]

    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):  # the process dies right after the step-2 checkpoint
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step >= 2

    def run(out, resume=False, callbacks=()):
        config = load_run_config(None, "causal_lm_ft", TINY + ["training.max_steps=4", "training.save_steps=2"])
        method = get_method("causal_lm_ft")(config)
        method.build()
        summary = train(method, data, out, resume=resume, callbacks=callbacks)
        return method, summary

    straight, _ = run(tmp_path / "a")
    run(tmp_path / "b", callbacks=[Interrupt()])
    resumed, summary = run(tmp_path / "b", resume=True)
    assert summary.resumed_from.endswith("checkpoint-2") and summary.steps == 4
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_batched_generation_equals_one_at_a_time(examples):
    backbone = load_backbone("random:tiny-gpt2", seed=3)
    formatter = Formatter(backbone.tokenizer)
    prompts = [formatter.prompt_ids(e.persona, e.context, 256) for e in examples[:7]]
    decoding = DecodingConfig(max_new_tokens=6, batch_size=4)
    batched, n_batched = generate_causal_lm(backbone.model, backbone.tokenizer, prompts, decoding)
    single, n_single = generate_causal_lm(backbone.model, backbone.tokenizer, prompts,
                                          DecodingConfig(max_new_tokens=6, batch_size=1))
    assert batched == single and n_batched == n_single > 0


@pytest.mark.parametrize("backbone", ["random:tiny-gpt2", "random:tiny-llama"])
def test_shared_prefix_generation_equals_one_at_a_time(backbone, examples):
    """The turns of two dialogues share persona and history: prefilled once per anchor, every reply is the one
    ``model.generate`` gives the prompt alone (GPT-2: absolute positions; LLaMA: rotary, grouped heads), also with a
    repetition penalty (the processors see the whole prompt)."""
    from pdg_eval_methods.common.generation import _generate, plan_prefixes

    loaded = load_backbone(backbone, seed=5)
    formatter = Formatter(loaded.tokenizer)
    prompts = [formatter.prompt_ids(e.persona, e.context, 512) for e in examples[:16]]
    plan = plan_prefixes(prompts[:8])  # one dialogue (nothing cut): the longest prompt serves the others
    assert len({anchor for anchor, _ in plan}) == 1 and all(c >= len(p) // 2 for (_, c), p in zip(plan, prompts))
    for penalty in (1.0, 1.3):
        shared, n_shared = generate_causal_lm(loaded.model, loaded.tokenizer, prompts,
                                              DecodingConfig(max_new_tokens=8, batch_size=6, repetition_penalty=penalty))
        single, n_single = _generate(loaded.model, loaded.tokenizer, prompts,
                                     DecodingConfig(max_new_tokens=8, batch_size=1, repetition_penalty=penalty,
                                                    share_prefix=False), False, "generate", None, True, None)
        assert shared == single and n_shared == n_single > 0


@pytest.mark.parametrize("backbone", ["random:tiny-gpt2", "random:tiny-llama"])
def test_shared_prefix_last_states_equal_a_forward_per_prompt(backbone, examples):
    """The history states MORPHEUS predicts its codes from: with prefixes shared across a dialogue's turns, each
    prompt's last-token state is the one a forward over that prompt alone gives."""
    from pdg_eval_methods.common.generation import last_prompt_states

    loaded = load_backbone(backbone, seed=5)
    base = loaded.model.base_model.eval()
    prompts = [Formatter(loaded.tokenizer).prompt_ids((), e.context, 512) for e in examples[:12]]
    states = last_prompt_states(base, prompts, loaded.tokenizer.pad_token_id, batch_size=5)
    with torch.inference_mode():
        alone = torch.stack([base(input_ids=torch.tensor([p])).last_hidden_state[0, -1] for p in prompts])
    assert states.shape == alone.shape and torch.allclose(states, alone, atol=1e-5)


def test_prefix_plan_and_batches_by_hand():
    from pdg_eval_methods.common.generation import common_prefix, plan_prefixes, prefix_sorted_batches

    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2 and common_prefix([1, 2], [1, 2, 3]) == 2
    prompts = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 9], [7, 8], [1, 2, 3, 4, 5, 6, 7, 8]]
    # longest first: [3] is an anchor; [0] shares 6 of 6 (feeds its last token again); [1] shares 3 of 4;
    # [2] shares nothing and becomes an anchor
    assert plan_prefixes(prompts) == [(3, 5), (3, 3), (2, 1), (3, 7)]
    assert prefix_sorted_batches(prompts, 3) == [[0, 3, 1], [2]]


BASELINES = {  # extra settings per baseline for a tiny CPU run
    "seq2seq_gru": ["model.embedding_size=32", "model.hidden_size=48"],
    "causal_lm_ft": [],
    "dialogue_ft": [],
    "encoder_gpt2": ["model.encoder_layers=1", "model.encoder_heads=2"],
    "attention_routing": ["model.encoder_layers=1", "model.encoder_heads=2"],
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_trains_generates_and_scores(name, convai2_valid, tmp_path, capsys):
    settings = TINY + BASELINES[name] + [f"data.train={convai2_valid}", "data.train_dialogues=1", "training.max_steps=24",
                                         f"data.eval={convai2_valid}", "data.eval_dialogues=1"]
    args = [f"--set={s}" for s in settings]
    run = tmp_path / "run"
    assert main(["run", name, "train", "--out", str(run), "-q", *args]) == 0
    record = json.loads((run / "run.json").read_text())
    losses = [loss for _, loss in record["summary"]["losses"]]
    assert len(losses) >= 3 and losses[-1] < losses[0] - 0.5, losses  # the loss falls
    assert record["backbone"]["spec"] == "random:tiny-gpt2" and record["data"]["train"]["dialogues"] == 1
    preds = tmp_path / "preds.jsonl"
    assert main(["run", name, "generate", "--checkpoint", str(run), "--out", str(preds), "-q", "--with-nll", *args]) == 0
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    dialogue = take_dialogues(load_convai2(convai2_valid), 1)
    assert len(lines) == len(dialogue) == 8
    assert [line["id"] for line in lines] == [e.id for e in dialogue] and lines[0]["reference"] == dialogue[0].response
    assert lines[0]["system"] == name and lines[0]["meta"]["run"]["checkpoint"] == str(run)
    capsys.readouterr()
    assert main(["score", str(preds), "--preset", "paa", "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["n_items"] == 8
    ppl = next(m for m in scores["metrics"] if m["name"] == "ppl")  # from the gold NLLs written by --with-nll
    assert 1.0 < ppl["values"]["ppl"] < 60000


@pytest.mark.parametrize("name", ["llm_system", "llm_icl"])
def test_prompt_only_baselines_generate_and_score(name, convai2_valid, tmp_path):
    preds = tmp_path / "preds.jsonl"
    args = [f"--set={s}" for s in TINY + ["model.format=plain", f"data.eval={convai2_valid}", "data.eval_dialogues=2"]]
    assert main(["run", name, "generate", "--out", str(preds), "-q", *args]) == 0
    assert len(preds.read_text().splitlines()) == 15
    assert main(["run", name, "train", "--out", str(tmp_path / "x"), "-q", *args]) == 2  # nothing to train
    assert main(["score", str(preds), "--preset", "paa"]) == 0


def test_icl_demonstrations_are_the_speakers_other_sessions(examples):
    config = load_run_config(None, "llm_icl", TINY + ["model.format=plain", "model.demonstrations=1"])
    method = get_method("llm_icl")(config)
    method.build()
    method.prepare(examples)
    example = next(e for e in examples if len(method.sessions[e.speaker]) > 1)
    other = next(d for d in method.sessions[example.speaker] if d != example.dialogue_id)
    prompt = method.tokenizer.decode(method.prompt_ids(example, DecodingConfig(max_prompt_tokens=4096)))
    other_turns = [e for e in examples if e.dialogue_id == other]
    assert f"You: {other_turns[0].response}" in prompt and "Persona:" not in prompt
    assert prompt.endswith(f"Partner: {example.context[-1]}\nYou:")
    lonely = next(e for e in examples if len(method.sessions[e.speaker]) == 1)
    assert "Conversation 1" not in method.tokenizer.decode(method.prompt_ids(lonely, DecodingConfig()))


def test_training_objective_is_checked(convai2_valid, tmp_path, capsys):
    args = [f"--set={s}" for s in TINY + [f"data.train={convai2_valid}", "data.train_dialogues=1"]]
    assert main(["run", "causal_lm_ft", "train", "--out", str(tmp_path / "a"), "-q", *args,
                 "--set=training.objective=rl"]) == 2
    assert "training.objective must be one of lm, preference" in capsys.readouterr().err
    assert main(["run", "causal_lm_ft", "train", "--out", str(tmp_path / "b"), "-q", *args,
                 "--set=training.objective=preference"]) == 2
    assert "causal_lm_ft builds no preference pairs" in capsys.readouterr().err
    assert main(["run", "causal_lm_ft", "train", "--out", str(tmp_path / "c"), "-q", *args,
                 "--set=training.preference.temperature=2"]) == 2  # unknown key of the nested section


def test_icl_demonstrations_come_from_the_reference_pool(examples, convai2_valid):
    overrides = TINY + ["model.format=plain", f"data.reference_pool={convai2_valid}"]
    method = get_method("llm_icl")(load_run_config(None, "llm_icl", overrides))
    method.build()
    answered = [e for e in examples if len(sessions_by_speaker(examples)[e.speaker]) > 1][:1]
    method.prepare(answered)  # one turn answered, the whole file searched for the speaker's other dialogues
    assert method.demonstrations_for(answered[0]) and len(method.full) == 1000
    alone = get_method("llm_icl")(load_run_config(None, "llm_icl", TINY + ["model.format=plain"]))
    alone.build()
    alone.prepare(answered)
    assert alone.demonstrations_for(answered[0]) == []


def test_run_list_and_unknown_method(capsys):
    assert main(["run", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("causal_lm_ft", "dialogue_ft", "encoder_gpt2", "attention_routing", "llm_system", "llm_icl", "pal"):
        assert name in listed and name in method_names()
    assert main(["run", "nope", "train", "--out", "x"]) == 2


@pytest.mark.parametrize("name", ["attention_routing", "paa"])
@pytest.mark.parametrize("backbone", ["random:tiny-gpt2", "random:tiny-llama"])
def test_dual_attention_cached_generation_matches_teacher_forcing(backbone, name, examples):
    """The cross-attention/fusion hooks give the same next tokens with the LM's key/value cache (generate) as a
    full forward pass over the generated sequence (teacher forcing), on GPT-2 and LLaMA decoders, for Attention-Routing
    and PAA's gated fusion (hard masks included); batching with left padding changes nothing."""
    config = load_run_config(None, name, TINY + [f"backbone={backbone}", "model.encoder_layers=1",
                                                 "model.encoder_heads=2"])
    method = get_method(name)(config)
    method.build()
    model = method.model.eval()
    chosen = examples[:3]
    for example in chosen:
        prompt = torch.tensor([method.decoder_prompt(example)])
        persona, context = torch.tensor([method.persona_ids(example)]), torch.tensor([method.context_ids(example)])
        enc = {"persona_ids": persona, "persona_mask": torch.ones_like(persona), "context_ids": context,
               "context_mask": torch.ones_like(context)}
        sequence = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6,
                                  do_sample=False, pad_token_id=method.tokenizer.pad_token_id, **enc)
        logits = model(input_ids=sequence, attention_mask=torch.ones_like(sequence), **enc).logits
        width = prompt.shape[1]
        assert sequence.shape[1] > width
        assert logits[0, width - 1:-1].argmax(-1).tolist() == sequence[0, width:].tolist()
    batched = method.generate(chosen, DecodingConfig(max_new_tokens=6, batch_size=3))
    single = method.generate(chosen, DecodingConfig(max_new_tokens=6, batch_size=1))
    assert batched == single


def test_routing_and_paa_fusion_formulas():
    from pdg_eval_methods.paa.model import example_tau, paa_fusion, routing_fusion

    h, o_p, o_c = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert torch.allclose(routing_fusion(h, o_p, o_c, 0.2), h + 0.2 * o_p + 0.8 * o_c + o_c)
    tau = example_tau(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]), torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]))
    assert tau.flatten().tolist() == pytest.approx([3 / 5, 1 / 5])  # |I_U| / (|I_U| + |I_P|), padding not counted
    gate = torch.nn.Linear(8, 4)
    fused, w = paa_fusion(h, o_p, o_c, gate, tau)
    m_p, m_c = (w > tau).float(), (1 - w > tau).float()
    assert torch.allclose(fused, h + w * m_p * o_p + (1 - w) * m_c * o_c)


CONFIGS = sorted((__import__("pathlib").Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    import yaml

    method = yaml.safe_load(path.read_text())["method"]
    config = load_run_config(path, method)
    get_method(method)(config)  # the model: section is validated against the method's options


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_reference_nll_is_the_training_loss_per_token(name, examples):
    """The gold NLLs written for PPL cover exactly the tokens the training loss covers: their mean is the loss."""
    config = load_run_config(None, name, TINY + BASELINES[name] + ["training.max_length=128"])
    method = get_method(name)(config)
    method.build()
    method.model.eval()
    chosen = examples[:3]
    nll = method.reference_nll(chosen, batch_size=2)
    assert [len(v) > 0 for v in nll] == [True] * 3
    for example, values in zip(chosen, nll):
        batch = method.collate(method.features(example)[:1])
        with torch.no_grad():
            loss = method.model(**batch)["loss"]
        assert float(loss) == pytest.approx(sum(values) / len(values), rel=1e-4)


def test_dev_split_is_held_out_and_scored(convai2_valid, tmp_path):
    from pdg_eval_methods.common.runner import train_run

    config = load_run_config(None, "causal_lm_ft", TINY + [f"data.train={convai2_valid}", "data.train_dialogues=4",
                                                           "data.dev_fraction=0.25", "training.max_steps=3"])
    record = train_run("causal_lm_ft", config, tmp_path / "run", progress=False)
    split = record["data"]["split"]
    assert split["dev_dialogues"] == 1 and split["train_dialogues"] == 3 and split["seed"] == 13
    assert record["summary"]["examples"] == split["train_examples"]
    assert split["dev_tokens"] > 0 and 1.0 < split["dev_ppl"] < 1e6


def test_evaluation_during_training_selects_the_best_step_and_stops_early(convai2_valid, tmp_path):
    """Dev perplexity every 2 steps; a learning rate that diverges after the first steps makes the dev perplexity
    rise, so early stopping (patience 2) ends the run and the saved model is the one of the best evaluation."""
    from pdg_eval_methods.common.runner import train_run

    config = load_run_config(None, "causal_lm_ft", TINY + [
        f"data.train={convai2_valid}", "data.train_dialogues=6", "data.dev_fraction=0.34", "training.max_steps=40",
        "training.learning_rate=0.3", "training.lr_scheduler=constant", "training.eval_strategy=steps",
        "training.eval_steps=2", "training.select_best=true", "training.early_stopping_patience=2"])
    record = train_run("causal_lm_ft", config, tmp_path / "run", progress=False)
    summary, split = record["summary"], record["data"]["split"]
    curve = summary["dev_curve"]
    assert [step for step, _ in curve] == list(range(2, 2 * len(curve) + 1, 2))
    best_step, best_ppl = min(curve, key=lambda point: point[1])
    assert summary["selected_step"] == best_step
    assert summary["stopped_early"] and summary["steps"] < 40
    # patience 2: the run stops at the second evaluation that does not improve on the best
    assert curve[-1][0] - best_step == 4
    assert split["dev_ppl"] == pytest.approx(best_ppl, rel=1e-4)  # the saved model is the selected one


def test_evaluation_settings_are_checked(convai2_valid, tmp_path):
    from pdg_eval_methods.common.runner import train_run

    for extra, message in ((["training.select_best=true"], "need evaluation during training"),
                           (["training.eval_strategy=steps"], "eval_steps >= 1"),
                           (["training.eval_strategy=sometimes"], "eval_strategy"),
                           (["training.eval_strategy=epoch"], "development data"),
                           (["training.eval_strategy=epoch", "data.dev_fraction=0.5", f"data.dev={convai2_valid}"],
                            "not both")):
        with pytest.raises(ConfigError, match=message):  # when the configuration is read, or before training
            config = load_run_config(None, "causal_lm_ft", TINY + [f"data.train={convai2_valid}",
                                                                   "data.train_dialogues=2", "training.max_steps=1",
                                                                   *extra])
            train_run("causal_lm_ft", config, tmp_path / "run", progress=False)
        assert not (tmp_path / "run" / "run.json").exists()


def test_yes_and_no_are_words_unless_a_field_is_boolean(tmp_path):
    """YAML 1.1 reads yes/no/on/off as booleans; configurations read only true/false so, and a bool field still
    takes the words."""
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  eval_strategy: no\n  bf16: off\n")
    config = load_run_config(path, "causal_lm_ft", ["training.select_best=no", "decoding.strategy=greedy"])
    assert (config.training.eval_strategy, config.training.bf16, config.training.select_best) == ("no", False, False)
    assert load_run_config(None, "causal_lm_ft", ["training.bf16=yes"]).training.bf16 is True
    assert load_run_config(None, "causal_lm_ft", ["training.bf16=true"]).training.bf16 is True


def test_warmup_steps_override_the_ratio(tmp_path):
    from pdg_eval_methods.common.config import TrainingConfig
    from pdg_eval_methods.common.training import training_arguments

    by_ratio = TrainingConfig(batch_size=4, gradient_accumulation=2, epochs=2.0, warmup_ratio=0.25)
    assert training_arguments(by_ratio, tmp_path, 0, 80, False).warmup_steps == 5  # 25% of 2 * 80 / 8 steps
    by_steps = TrainingConfig(batch_size=4, gradient_accumulation=2, epochs=2.0, warmup_ratio=0.25, warmup_steps=100)
    assert training_arguments(by_steps, tmp_path, 0, 80, False).warmup_steps == 100
    assert training_arguments(TrainingConfig(warmup_steps=0, warmup_ratio=0.5), tmp_path, 0, 80, False).warmup_steps == 0


def test_one_rule_names_the_speakers():
    from pdg_eval.models.causal_lm import dialogue_prompt
    from pdg_eval.records import PARTNER, SELF, speaker_roles

    assert speaker_roles(3) == [PARTNER, SELF, PARTNER] and speaker_roles(0) == []
    assert speaker_roles(4, last=SELF) == [PARTNER, SELF, PARTNER, SELF]
    assert dialogue_prompt(["i like tea."], ["hi", "hello", "how are you ?"]) == \
        "Persona: i like tea.\nPartner: hi\nYou: hello\nPartner: how are you ?\nYou:"


def test_conversation_sequences_in_chat_format_train_the_speaker_turns_only():
    from pdg_eval_methods.common.prompts import Turn
    from pdg_eval.records import PARTNER, SELF

    tokenizer = load_backbone("random:tiny-llama").tokenizer
    formatter = Formatter(tokenizer, "chat")
    turns = [Turn("hi there", PARTNER), Turn("hello, i like dogs", SELF, True), Turn("nice", PARTNER),
             Turn("yes they are", SELF, True)]
    feature = formatter.conversation(turns, 4096)
    text = tokenizer.decode(feature["input_ids"])
    messages = [{"role": "user" if t.role == PARTNER else "assistant", "content": t.text} for t in turns]
    assert text == tokenizer.apply_chat_template(messages, tokenize=False)
    trained = [tokenizer.decode([t for t, l in zip(feature["input_ids"], feature["labels"]) if l != -100])]
    assert trained == ["hello, i like dogs<|im_end|>\nyes they are<|im_end|>\n"]
    # a prompt: the speaker's opening appended, equal to the template's generation prompt
    prompt = formatter.conversation([Turn(t.text, t.role) for t in turns[:3]], 4096, generation=True)
    assert tokenizer.decode(prompt["input_ids"]) == tokenizer.apply_chat_template(messages[:3], tokenize=False,
                                                                                  add_generation_prompt=True)
    assert set(prompt["labels"]) == {-100}
    # too long: the oldest turns are dropped whole, the system message stays
    full = formatter.conversation(turns, 4096, system="be brief")
    cut = formatter.conversation(turns, len(full["input_ids"]) - 3, system="be brief")
    decoded = tokenizer.decode(cut["input_ids"])
    assert decoded.startswith("<|im_start|>system\nbe brief") and "hi there" not in decoded
    assert "<|im_start|>assistant\nhello, i like dogs<|im_end|>" in decoded  # one dropped turn was enough
    assert decoded.endswith("yes they are<|im_end|>\n")


@pytest.mark.parametrize("fmt", ["plain", "chat"])
def test_conversation_drops_the_fewest_oldest_turns_for_every_limit(fmt):
    """The search for the turns to drop gives what dropping them one at a time gives, at every length limit (one
    turn always stays, cut from the left when it alone is too long)."""
    from pdg_eval_methods.common.prompts import Turn
    from pdg_eval.records import PARTNER, SELF

    formatter = Formatter(load_backbone("random:tiny-llama").tokenizer, fmt)
    turns = [Turn(f"turn {i} " + "word " * (i % 3), PARTNER if i % 2 == 0 else SELF, i % 2 == 1) for i in range(7)]

    def one_at_a_time(limit: int) -> dict:
        kept = list(turns)
        while True:
            pieces = formatter._segments(kept, "sys", False)
            if sum(len(ids) for ids, _ in pieces) <= limit or len(kept) <= 1:
                break
            kept = kept[1:]
        ids = [t for piece, _ in pieces for t in piece]
        labels = [t if loss else -100 for piece, loss in pieces for t in piece]
        return {"input_ids": ids[-limit:], "labels": labels[-limit:]}

    longest = len(formatter.conversation(turns, 10**6, system="sys")["input_ids"])
    for limit in range(1, longest + 2):
        assert formatter.conversation(turns, limit, system="sys") == one_at_a_time(limit), limit


def test_conversation_in_plain_format_drops_whole_turns():
    from pdg_eval_methods.common.prompts import Turn
    from pdg_eval.records import PARTNER, SELF

    tokenizer = gpt2_tokenizer()
    formatter = Formatter(tokenizer)
    turns = [Turn("hi there", PARTNER), Turn("hello", SELF, True), Turn("nice day", PARTNER), Turn("yes", SELF, True)]
    feature = formatter.conversation(turns, 4096, system="Persona: i like dogs.")
    assert tokenizer.decode(feature["input_ids"]) == ("Persona: i like dogs.\nPartner: hi there\nYou: hello\n"
                                                      "Partner: nice day\nYou: yes<|endoftext|>")
    cut = formatter.conversation(turns, len(feature["input_ids"]) - 2, system="Persona: i like dogs.")
    assert tokenizer.decode(cut["input_ids"]) == "Persona: i like dogs.\nYou: hello\nPartner: nice day\nYou: yes<|endoftext|>"
    prompt = formatter.conversation(turns[:3], 4096, generation=True)
    assert tokenizer.decode(prompt["input_ids"]).endswith("Partner: nice day\nYou:")


def test_an_interrupted_generation_resumes_to_the_same_records(convai2_valid, tmp_path, monkeypatch):
    import pdg_eval_methods.common.runner as runner
    from pdg_eval_baselines.causal_lm import CausalLMMethod

    monkeypatch.setattr(runner, "CHUNK_BATCHES", 1)
    args = [f"--set={s}" for s in TINY + [f"data.eval={convai2_valid}", "data.eval_dialogues=2",
                                          "decoding.batch_size=4"]]
    straight = tmp_path / "straight.jsonl"
    assert main(["run", "causal_lm_ft", "generate", "--out", str(straight), "-q", "--with-nll", *args]) == 0
    assert json.loads((tmp_path / "straight.jsonl.run.json").read_text())["cost"]["chunks"] == 4  # 15 turns, 4 a chunk
    assert not (tmp_path / "straight.jsonl.partial").exists()

    calls, generate = [], CausalLMMethod.generate

    def dies_in_the_third_chunk(self, examples, decoding, progress=False):
        calls.append(len(examples))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return generate(self, examples, decoding, progress)

    preds = tmp_path / "preds.jsonl"
    monkeypatch.setattr(CausalLMMethod, "generate", dies_in_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        main(["run", "causal_lm_ft", "generate", "--out", str(preds), "-q", "--with-nll", *args])
    monkeypatch.setattr(CausalLMMethod, "generate", generate)
    partial = tmp_path / "preds.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 3 and not preds.exists()  # the stamp and two chunks
    with partial.open("a") as handle:
        handle.write('{"ids": ["0-')  # a chunk line cut by a kill
    assert main(["run", "causal_lm_ft", "generate", "--out", str(preds), "-q", "--with-nll", *args]) == 2  # no --resume
    assert main(["run", "causal_lm_ft", "generate", "--out", str(preds), "-q", "--with-nll", "--resume", *args,
                 "--set=decoding.max_new_tokens=5"]) == 2  # another command
    assert main(["run", "causal_lm_ft", "generate", "--out", str(preds), "-q", "--with-nll", "--resume", *args]) == 0
    assert not partial.exists()
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "meta"}  # noqa: E731
    assert [strip(x) for x in preds.read_text().splitlines()] == [strip(x) for x in straight.read_text().splitlines()]
    assert json.loads((tmp_path / "preds.jsonl.run.json").read_text())["cost"]["chunks"] == 4
    assert main(["run", "causal_lm_ft", "generate", "--out", str(preds), "-q", "--resume", *args]) == 2  # nothing left
