"""``pdg-eval annotate serve`` as a process: stopping the wrapper stops the Streamlit server it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdg_eval.annotate.server import free_port, wait_healthy
from pdg_eval.annotate.store import create_store
from pdg_eval.annotate.study import build_study

EXAMPLES = Path(__file__).resolve().parent.parent / "pdg_eval" / "examples"


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except ConnectionRefusedError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the child through Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_the_streamlit_child(tmp_path, signum):
    definition = {"name": "serve", "template": "idl_pairwise", "attention_checks": 0, "items": {"n": 2},
                  "systems": {"demo": str(EXAMPLES / "persona_chat_example.jsonl"),
                              "generic": str(EXAMPLES / "annotation" / "generic_bot.jsonl")},
                  "annotators": {"names": ["a"], "per_item": 1}}
    (tmp_path / "study.json").write_text(json.dumps(definition))
    create_store(build_study(tmp_path / "study.json"), tmp_path / "study")
    port = free_port()
    with open(tmp_path / "serve.log", "wb") as log:
        wrapper = subprocess.Popen([sys.executable, "-m", "pdg_eval.cli.main", "annotate", "serve",
                                    str(tmp_path / "study"), "--port", str(port)], stdout=log, stderr=log)
    child = None
    try:
        wait_healthy(port)
        children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
        assert len(children) == 1
        child = int(children[0])
        wrapper.send_signal(signum)
        assert wrapper.wait(timeout=15) == 0  # a requested stop
        deadline = time.monotonic() + 5
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_open(port)  # connection refused: nothing serves the study any more
        assert not alive(child)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
