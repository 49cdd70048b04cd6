"""A small run of the load test (benchmarks/load_annotate.py): concurrent annotators over Streamlit's websocket
protocol, the server SIGKILLed and restarted mid-run; the store must hold exactly the acknowledged screens."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "load_annotate.py"


def load_module():
    spec = importlib.util.spec_from_file_location("load_annotate", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_concurrent_saves_survive_a_server_kill(tmp_path):
    bench = load_module()
    args = bench.parse_args(["--annotators", "6", "--screens", "4", "--kill-at", "0.5", "--workdir", str(tmp_path),
                             "--deadline", "240"])
    result = asyncio.run(bench.main_async(args))
    assert not result["timed_out"] and result["killed_after_acknowledged"] >= 12  # the kill happened mid-run
    assert result["stored_screens"] == result["acknowledged_screens"] == 24
    assert result["stored_judgments"] == result["distinct_judgments"] == 24 * 3
    assert result["n_mismatches"] == 0 and result["unclicked_screens_stored"] == 0
    assert result["ok"]
