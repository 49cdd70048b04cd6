"""Load test of the annotation app: N simulated annotators save concurrently, and the server is killed
(SIGKILL) and restarted in the middle.

Each simulated annotator answers its screens in a bounded loop on 127.0.0.1, through one of two clients:

* ``--client ws`` (default): Streamlit's own websocket protocol, as the browser speaks it — a ``rerun_script``
  message with the query string and the form's widget states, answered by the app's new screen. It costs the
  client almost nothing, so the latency measured is the server's.
* ``--client browser``: a headless Chromium page per annotator (Debian ``/usr/bin/chromium``, Playwright's async
  API) clicking the radio buttons. On this 2-core machine the 20 browsers themselves use most of the CPU, so the
  latency it measures is mostly theirs.

A save counts as *acknowledged* when the app shows the progress moved on. After the run the store must hold exactly the acknowledged screens — every answer equal to the one clicked, by
annotator and screen, none missing, none doubled — or the script exits 1.

    python benchmarks/load_annotate.py                       # 20 annotators x 6 screens, kill at half
    python benchmarks/load_annotate.py --client browser --screens 3 --json load.json

Printed: acknowledged saves, stored judgments, duplicates, the outage, and the save latency (click → progress
moved) as p50 / p95 / max, over the saves that did not straddle the outage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdg_eval.annotate.server import free_port, start_server, wait_healthy  # noqa: E402
from pdg_eval.annotate.store import DB_NAME, Store, create_store  # noqa: E402
from pdg_eval.annotate.study import build_study  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
EXAMPLES = ROOT / "pdg_eval" / "examples"
LABELS = {"left": "A is better", "tie": "Tie", "right": "B is better"}
PROGRESS = re.compile(r"(\d+) of (\d+) done")
N_ITEMS = 12  # the bundled example


@dataclass
class Annotator:
    name: str
    url: str
    total: int
    plan: dict[int, list[str]] = field(default_factory=dict)  # screen index -> answers clicked
    latencies: list[float] = field(default_factory=list)
    straddled: int = 0  # saves whose acknowledgement came only after the outage
    retried: int = 0  # screens answered again because the save was lost with the server


@dataclass
class Run:
    annotators: list[Annotator]
    acknowledged: int = 0
    outage_s: float = 0.0
    killed_after: int = 0


def make_study(folder: Path, annotators: int, screens: int) -> tuple[Path, dict[str, str]]:
    if (annotators * screens) % N_ITEMS:
        raise SystemExit(f"annotators x screens must be a multiple of {N_ITEMS} (items in the bundled example)")
    per_item = annotators * screens // N_ITEMS
    if per_item > annotators:
        raise SystemExit(f"at most {N_ITEMS} screens per annotator")
    definition = {"name": "load-test", "template": "idl_pairwise", "attention_checks": 0,
                  "systems": {"demo": str(EXAMPLES / "persona_chat_example.jsonl"),
                              "generic": str(EXAMPLES / "annotation" / "generic_bot.jsonl")},
                  "items": {"n": N_ITEMS}, "annotators": {"count": annotators, "per_item": per_item}}
    path = folder / "load.json"
    path.write_text(json.dumps(definition))
    _, tokens, _ = create_store(build_study(path), folder / "study")
    return folder / "study", tokens


def answers_for(name: str, screen: int) -> list[str]:
    order = list(LABELS)
    return [order[(sum(map(ord, name)) + screen + aspect) % 3] for aspect in range(3)]


class BrowserClient:
    """One annotator as a headless Chromium page clicking the app."""

    #: pages that may load at once: 20 Chromium pages starting together on 2 cores time out before the app answers
    opening = asyncio.Semaphore(4)
    timeout_ms = 120_000

    def __init__(self, browser, url: str):
        self.browser, self.url = browser, url

    async def open(self) -> None:
        async with self.opening:
            self.context = await self.browser.new_context()
            self.page = await self.context.new_page()
            self.page.set_default_timeout(self.timeout_ms)
            while True:  # the server may be down (killed by the chaos task) while pages are still opening
                try:
                    await self.page.goto(self.url)
                    start = self.page.get_by_role("button", name="Start")
                    await start.or_(self.page.get_by_text(PROGRESS)).first.wait_for()
                    if await start.count():  # not yet started (else a restart found it past the instructions)
                        await start.click()
                    return
                except PlaywrightError:
                    await asyncio.sleep(0.5)

    async def progress(self, timeout_s: float) -> int | None:
        """Screens done as the page shows them (-1: all done; None: no screen within the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                text = await self.page.locator("body").inner_text(timeout=2_000)
            except PlaywrightTimeout:
                text = ""
            if "All done" in text:
                return -1
            match = PROGRESS.search(text)
            if match and await self.page.get_by_role("radiogroup").count() == 3:
                return int(match.group(1))
            await asyncio.sleep(0.1)
        return None

    async def submit(self, choices: list[str], target: str) -> bool:
        groups = self.page.get_by_role("radiogroup")
        await expect(groups).to_have_count(3)
        for index, choice in enumerate(choices):
            await groups.nth(index).get_by_text(LABELS[choice], exact=True).click()
        await self.page.get_by_role("button", name="Save and continue").click()
        try:
            await self.page.get_by_text(target).wait_for(timeout=self.timeout_ms / 2)
            return True
        except PlaywrightTimeout:
            return False

    async def recover(self) -> None:
        with contextlib.suppress(PlaywrightError):  # an overloaded machine: progress() looks again
            await self.page.reload()

    async def close(self) -> None:
        await self.context.close()


class WebsocketClient:
    """One annotator speaking Streamlit's websocket protocol (``BackMsg.rerun_script`` with widget states)."""

    def __init__(self, url: str):
        base, _, self.query = url.partition("/?")
        self.ws_url = base.replace("http://", "ws://") + "/_stcore/stream"
        self.elements: list = []
        self.ws = None

    async def _run(self, widgets=(), timeout_s: float = 15.0) -> None:
        message = BackMsg()
        message.rerun_script.query_string = self.query
        message.rerun_script.widget_states.widgets.extend(widgets)
        await self.ws.send(message.SerializeToString())
        early = ForwardMsg.FINISHED_EARLY_FOR_RERUN
        async with asyncio.timeout(timeout_s):
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(await self.ws.recv())
                kind = forward.WhichOneof("type")
                if kind == "new_session":
                    self.elements = []
                elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                    self.elements.append(forward.delta.new_element)
                elif kind == "script_finished" and forward.script_finished != early:
                    return

    def _widgets(self, kind: str) -> list:
        return [getattr(e, kind) for e in self.elements if e.WhichOneof("type") == kind]

    def _trigger(self, label: str) -> WidgetState:
        button = next(b for b in self._widgets("button") if b.label == label)
        return WidgetState(id=button.id, trigger_value=True)

    @staticmethod
    def _radio_state(radio, label: str) -> WidgetState:
        """Streamlit >= 1.50 sends a radio's formatted option (``raw_value``); older releases its index."""
        if "raw_value" in radio.DESCRIPTOR.fields_by_name:
            return WidgetState(id=radio.id, string_value=label)
        return WidgetState(id=radio.id, int_value=list(radio.options).index(label))

    async def _connect(self) -> None:
        while True:
            try:
                self.ws = await websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None)
                await self._run()
                return
            except (OSError, websockets.WebSocketException, TimeoutError):
                await asyncio.sleep(0.2)

    async def open(self) -> None:
        """Connect, and press Start if the app shows it (else a restart found the session past the instructions).
        The server may be killed meanwhile (the chaos task): then connect again."""
        while True:
            await self._connect()
            if not any(b.label == "Start" for b in self._widgets("button")):
                return
            try:
                await self._run([self._trigger("Start")])
                return
            except (OSError, websockets.WebSocketException, TimeoutError):
                await asyncio.sleep(0.2)

    async def progress(self, timeout_s: float) -> int | None:
        for bar in self._widgets("progress"):
            if bar.text == "All done":
                return -1
            match = PROGRESS.search(bar.text)
            if match and len(self._widgets("radio")) == 3:
                return int(match.group(1))
        return None

    async def submit(self, choices: list[str], target: str) -> bool:
        radios = self._widgets("radio")
        states = [self._radio_state(radio, LABELS[choice]) for radio, choice in zip(radios, choices)]
        try:
            await self._run(states + [self._trigger("Save and continue")])
        except (OSError, websockets.WebSocketException, TimeoutError):
            return False
        return any(bar.text == target for bar in self._widgets("progress"))

    async def recover(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.open()

    async def close(self) -> None:
        await self.ws.close()


async def annotate(client, who: Annotator, run: Run, outage: asyncio.Event, think_s: float) -> None:
    await client.open()
    done = 0
    while done < who.total:
        shown = await client.progress(60)
        if shown is None:  # no screen (e.g. the connection went with the server): load it again
            await client.recover()
            continue
        shown = who.total if shown == -1 else shown
        if shown != done:  # a save whose acknowledgement was lost in the outage had in fact committed
            assert shown == done + 1, (who.name, shown, done)
            who.straddled += 1
            run.acknowledged += 1
            done = shown
            continue
        if think_s:
            await asyncio.sleep(think_s)
        choices = answers_for(who.name, done)
        who.plan[done] = choices  # the same answers are given again if this save is lost
        was_down = outage.is_set()
        target = "All done" if done + 1 == who.total else f"{done + 1} of {who.total} done"
        start = time.perf_counter()
        if not await client.submit(choices, target):
            who.retried += 1  # the server went away: look again at what the app shows
            await client.recover()
            continue
        elapsed = time.perf_counter() - start
        if was_down or outage.is_set():
            who.straddled += 1
        else:
            who.latencies.append(elapsed)
        run.acknowledged += 1
        done += 1
    await client.close()


async def chaos(run: Run, total: int, restart, outage: asyncio.Event, kill_at: float) -> None:
    """Kill the server (SIGKILL) once ``kill_at`` of all saves are acknowledged, then start it again."""
    if kill_at <= 0:
        return
    while run.acknowledged < kill_at * total:
        await asyncio.sleep(0.05)
    outage.set()
    start = time.monotonic()
    run.killed_after = run.acknowledged
    await asyncio.to_thread(restart)
    run.outage_s = time.monotonic() - start
    await asyncio.sleep(2.0)
    outage.clear()


def verify(study_dir: Path, run: Run, aspects: list[str]) -> dict[str, object]:
    with sqlite3.connect(study_dir / DB_NAME) as db:
        rows = db.execute("SELECT n.name, a.seq, j.aspect, j.answer FROM judgments j JOIN assignments a "
                          "ON a.id = j.assignment_id JOIN annotators n ON n.id = a.annotator_id").fetchall()
        distinct = db.execute("SELECT COUNT(DISTINCT assignment_id || '/' || aspect) FROM judgments").fetchone()[0]
    stored: dict[tuple[str, int], dict[str, str]] = {}
    for name, seq, aspect, answer in rows:
        stored.setdefault((name, seq), {})[aspect] = json.loads(answer)
    mismatches = []
    for who in run.annotators:
        for screen, choices in who.plan.items():
            got = stored.get((who.name, screen))
            if got is None or [got.get(a) for a in aspects] != choices:
                mismatches.append((who.name, screen, choices, got))
    unplanned = sorted(set(stored) - {(w.name, s) for w in run.annotators for s in w.plan})
    return {"stored_judgments": len(rows), "distinct_judgments": distinct, "stored_screens": len(stored),
            "acknowledged_screens": run.acknowledged, "unclicked_screens_stored": len(unplanned),
            "mismatches": mismatches[:5], "n_mismatches": len(mismatches)}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="pdg-load-"))
    study_dir, tokens = make_study(folder, args.annotators, args.screens)
    aspects = [a.name for a in Store(study_dir).aspects]
    port = free_port()
    log = folder / "server.log"
    server = {"process": start_server(study_dir, port, log=log)}

    def restart() -> None:
        server["process"].send_signal(signal.SIGKILL)
        server["process"].wait()
        time.sleep(args.downtime)
        server["process"] = start_server(study_dir, port, log=log)
        wait_healthy(port)

    base = f"http://127.0.0.1:{port}"
    run = Run([Annotator(name, f"{base}/?token={token}", args.screens) for name, token in tokens.items()])
    outage = asyncio.Event()
    total = args.annotators * args.screens
    wall = time.perf_counter()
    timed_out = False
    try:
        async with asyncio.timeout(args.deadline):  # the loop is bounded: a hang fails the run, never stalls it
            if args.client == "ws":
                await asyncio.gather(chaos(run, total, restart, outage, args.kill_at),
                                     *(annotate(WebsocketClient(who.url), who, run, outage, args.think)
                                       for who in run.annotators))
            else:
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                    await asyncio.gather(chaos(run, total, restart, outage, args.kill_at),
                                         *(annotate(BrowserClient(browser, who.url), who, run, outage, args.think)
                                           for who in run.annotators))
                    await browser.close()
    except TimeoutError:
        timed_out = True
    finally:
        server["process"].kill()
        server["process"].wait()
    wall = time.perf_counter() - wall
    result = verify(study_dir, run, aspects)
    latencies = sorted(x for who in run.annotators for x in who.latencies)
    quantile = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else None
    result |= {"timed_out": timed_out, "think_s": args.think, "client": args.client, "annotators": args.annotators, "screens_each": args.screens, "submitted_screens": total,
               "aspects": len(aspects), "killed_after_acknowledged": run.killed_after,
               "outage_s": round(run.outage_s, 2), "straddled_saves": sum(w.straddled for w in run.annotators),
               "retried_screens": sum(w.retried for w in run.annotators), "wall_s": round(wall, 1),
               "latency_n": len(latencies),
               "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
               "latency_p95_s": round(quantile(0.95), 3) if latencies else None,
               "latency_max_s": round(latencies[-1], 3) if latencies else None}
    expected_judgments = total * len(aspects)
    result["ok"] = (not timed_out and result["n_mismatches"] == 0 and not result["unclicked_screens_stored"]
                    and result["stored_screens"] == total == run.acknowledged
                    and result["stored_judgments"] == result["distinct_judgments"] == expected_judgments)
    return result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--client", choices=("ws", "browser"), default="ws",
                   help="simulated annotators: Streamlit's websocket protocol (default) or headless Chromium pages")
    p.add_argument("--annotators", type=int, default=20)
    p.add_argument("--screens", type=int, default=6, help="screens per annotator (3 pairwise questions each)")
    p.add_argument("--kill-at", type=float, default=0.5, help="kill the server after this share of saves (0: never)")
    p.add_argument("--downtime", type=float, default=1.0, help="seconds the server stays down")
    p.add_argument("--think", type=float, default=0.0,
                   help="seconds each annotator waits before answering a screen (0: back-to-back saves, a stress test)")
    p.add_argument("--deadline", type=float, default=600.0, help="give up (and fail) after this many seconds")
    p.add_argument("--workdir", help="folder for the study and server log (default: a temporary folder)")
    p.add_argument("--json", dest="json_out", help="write the result as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
