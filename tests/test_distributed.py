"""Several processes (`accelerate launch --num_processes 2` / `torchrun` on GPUs) split the model work of
`pdg-eval score` and the numbers equal a one-process run. Here two CPU processes started by torchrun
(accelerate's CPU launcher starts only one) talk over gloo on the loopback interface."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
from importlib import resources

import pytest

from pdg_eval.cli.main import main
from pdg_eval.models.cache import ScoreCache
from pdg_eval.models.distributed import agree_on_keys, shared_compute
from tests.test_nli_metric import make_tiny_nli

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def launch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), *args]
    return subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True,
                          text=True, timeout=300)


def test_one_process_is_plain():
    assert agree_on_keys(["b", "a"]) == ["b", "a"]
    assert shared_compute(lambda xs: [x * 2 for x in xs], [1, 2, 3]) == [2, 4, 6]


def test_work_is_split_and_gathered(tmp_path):
    script = tmp_path / "shard.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from pdg_eval.models.distributed import agree_on_keys, finish, shared_compute
        rank = os.environ["RANK"]
        keys = agree_on_keys(["k0", "k1", "k2"] if rank == "0" else ["k3", "k1", "k4"])
        seen = []
        out = shared_compute(lambda xs: seen.extend(xs) or [x.upper() for x in xs], keys)
        open({str(tmp_path)!r} + f"/rank{{rank}}.json", "w").write(json.dumps({{"keys": keys, "seen": seen, "out": out}}))
        finish()
    """))
    done = launch([str(script)], {})
    assert done.returncode == 0, done.stderr[-6000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["keys"] == ranks[1]["keys"] == ["k0", "k1", "k2", "k3", "k4"]
    assert ranks[0]["out"] == ranks[1]["out"] == ["K0", "K1", "K2", "K3", "K4"]
    assert sorted(ranks[0]["seen"] + ranks[1]["seen"]) == ranks[0]["keys"] and ranks[0]["seen"] and ranks[1]["seen"]


def test_accelerate_launch_score_equals_one_process(tmp_path, monkeypatch):
    model = make_tiny_nli(tmp_path / "nli", seed=0)
    specs = ["-m", f"c-score:chanliang,model={model}", "-m", "p-cosine", "-m", "bleu:sacrebleu"]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    monkeypatch.setenv("PDG_EVAL_CACHE", str(tmp_path / "one.sqlite"))  # restored after the test (was: set to "")
    assert main(["score", EXAMPLE, *specs, "--json", str(one), "-q"]) == 0
    done = launch(["-m", "pdg_eval.cli.main", "score", EXAMPLE, *specs, "--json", str(two), "-q"],
                  {"PDG_EVAL_CACHE": str(tmp_path / "two.sqlite")})
    assert done.returncode == 0, done.stderr[-6000:]
    assert done.stdout.count("signatures:") == 1  # only the main process reports
    values = lambda path: [(m["signature"]["string"], m["values"]) for m in json.loads(path.read_text())["metrics"]]  # noqa: E731
    first, second = values(one), values(two)
    assert [s for s, _ in first] == [s for s, _ in second]
    for (_, a), (_, b) in zip(first, second):
        assert a == pytest.approx(b, abs=1e-6)


def _open_and_write(path: str) -> int:
    ScoreCache(path).put_many([(f"key-{os.getpid()}", 1)])
    return os.getpid()


def test_processes_opening_a_new_cache_at_once_all_succeed(tmp_path):
    """Each process of a launch opens the same new cache file; switching it to WAL could fail at once with
    "database is locked" (before the retry: 12 of 40 rounds of four processes)."""
    for round_ in range(10):
        path = str(tmp_path / f"cache-{round_}.sqlite")
        with multiprocessing.get_context("fork").Pool(4) as pool:
            pids = pool.map(_open_and_write, [path] * 4)
        assert len(ScoreCache(path).get_many([f"key-{pid}" for pid in set(pids)])) == len(set(pids))
