"""Start and stop the annotation app's Streamlit server (for ``serve``, the browser tests and the load test)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Sequence

HEALTH_PATH = "/_stcore/health"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def app_path() -> Path:
    return Path(str(resources.files("pdg_eval_app").joinpath("app.py")))


def serve_command(study_dir: str | Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The Streamlit command line that serves a study."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path()), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer", "--", str(Path(study_dir).resolve())]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, timeout: float = 60.0, host: str = "127.0.0.1") -> float:
    """Seconds until the server answers its health check; TimeoutError after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{HEALTH_PATH}", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the annotation server on port {port} did not come up in {timeout:.0f} s")


def start_server(study_dir: str | Path, port: int, log: str | Path | None = None) -> subprocess.Popen:
    """Start the app on ``port`` and wait until it is healthy."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(serve_command(study_dir, port), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port)
    except TimeoutError:
        process.kill()
        raise
    return process


def run_forwarding_signals(command: Sequence[str], grace_s: float = 10.0) -> int:
    """Run ``command`` in its own process group, pass SIGTERM, SIGINT and SIGHUP on to it and wait for it to exit
    (SIGKILL after ``grace_s``), so that stopping the wrapper never leaves the server orphaned on its port.

    Returns the child's exit status, 0 when it stopped because it was asked to."""
    child = subprocess.Popen(command, start_new_session=True)  # a terminal's Ctrl-C reaches it once: through us
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        deadline = None
        while True:
            try:
                status = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + grace_s
                if deadline is not None and time.monotonic() > deadline:
                    child.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received and status in (0, -received[0], -signal.SIGKILL) else status
