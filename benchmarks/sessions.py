"""Server memory per session: RSS of the app's server before and after N new sessions.

Starts the whole app in a server process of its own (as `python launch.py` would, with its session
holder), then makes N new sessions over raw HTTP, each with one cheap call: the Forward tab's
`noisy` slider event (the first thing a student does), with a fresh session hash. Reports the
server's RSS (VmRSS from /proc) after a warm-up of 50 sessions and after the N sessions.

    python benchmarks/sessions.py [--sessions 2000] [--holder bounded|gradio]

`--holder gradio` keeps Gradio's own session holder (every component's config copied per session)
for comparison. Writes its section of benchmarks/RESULTS.md (between its own markers).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- sessions: begin -->", "<!-- sessions: end -->"
WARM = 50


def serve(port: int, runs: str, holder: str, max_sessions: int) -> None:
    """Server mode: the app as launch.py serves it; `holder` gradio keeps Gradio's session holder."""
    import torch

    from explorer import sessions
    from explorer.app import build_app, launch_options
    from explorer.context import Settings
    from explorer.serving import Limits

    torch.set_num_threads(1)
    demo = build_app(Settings(runs_dir=Path(runs)))
    demo.queue(max_size=64)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True, prevent_thread_lock=True,
                **launch_options())
    if holder == "bounded":
        sessions.install(demo, Limits(max_sessions=max_sessions))
    print("ready", flush=True)
    demo.block_thread()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def noisy_call(config: dict) -> tuple[int, list, int, int]:
    """(fn_index, data, trigger id, the slider's place in data) for the `noisy` event, with each input's
    starting value (None for a gr.State: the server reads it from the session)."""
    comps = {c["id"]: c for c in config["components"]}
    for i, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == "noisy":
            data = [None if comps[c]["type"] == "state" else comps[c]["props"].get("value") for c in dep["inputs"]]
            trigger = dep["targets"][0][0]
            return dep.get("id", i), data, trigger, dep["inputs"].index(trigger)
    raise RuntimeError("no noisy event in the app")


def one_session(http, url: str, call: tuple[int, list, int], t: int) -> None:
    fn_index, data, trigger, slot = call
    data = list(data)
    data[slot] = t
    r = http.post(url + "gradio_api/run/predict", json={
        "data": data, "fn_index": fn_index, "session_hash": uuid.uuid4().hex[:11], "event_data": None,
        "trigger_id": trigger})
    r.raise_for_status()
    if "error" in r.json() and r.json()["error"]:
        raise RuntimeError(r.json()["error"])


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    import httpx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--holder", choices=["bounded", "gradio"], default="bounded")
    p.add_argument("--serve", nargs=4, metavar=("PORT", "RUNS", "HOLDER", "MAX"), help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()
    if args.serve:
        port, runs, holder, cap = args.serve
        return serve(int(port), runs, holder, int(cap))

    port = free_port()
    runs = tempfile.mkdtemp(prefix="bench-runs-")  # the app's checkpoint folder, removed afterwards
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(runs), args.holder,
                               str(args.sessions + WARM + 10)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
    try:
        for line in server.stdout:
            if line.strip() == "ready":
                break
        url = f"http://127.0.0.1:{port}/"
        load_before = load_average()
        with httpx.Client(timeout=120) as http:
            call = noisy_call(http.get(url + "config").json())
            for i in range(WARM):
                one_session(http, url, call, 1 + i % 999)
            time.sleep(1)
            before = rss_mb(server.pid)
            start = time.perf_counter()
            for i in range(args.sessions):
                one_session(http, url, call, 1 + (i * 37) % 999)
            took = time.perf_counter() - start
            time.sleep(1)
            after = rss_mb(server.pid)
        load_after = load_average()
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(runs, ignore_errors=True)
    grew = after - before
    line = (f"{args.holder} holder: {args.sessions} new sessions (one `noisy` call each, {took:.0f} s): "
            f"server RSS {before:.0f} -> {after:.0f} MB, +{grew:.1f} MB ({grew * 1024 / args.sessions:.1f} kB a "
            f"session); load average before {load_before}, after {load_after}")
    print(line)
    if not args.no_write:
        write_results(line, args.holder)


def write_results(line: str, holder: str) -> None:
    """Keep one line per holder in the section, newest run replacing the older one."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = []
    if BEGIN in text and END in text:
        lines = [x for x in text[text.index(BEGIN) + len(BEGIN): text.index(END)].splitlines() if x.startswith("- ")]
    lines = [x for x in lines if not x.startswith(f"- {holder} holder")] + [f"- {line}"]
    device = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"
    block = "\n".join([
        BEGIN,
        "## Sessions: server memory per new session (`benchmarks/sessions.py`)",
        "",
        f"{device}; {datetime.date.today().isoformat()}. Goal: 2,000 new sessions grow the server's RSS by "
        "less than 50 MB. Each session is a raw HTTP call of the Forward slider's `noisy` event with a "
        "new session hash; RSS measured after 50 warm-up sessions and after the run. `bounded`: the app "
        "as launch.py serves it (explorer/sessions.py: configs made on demand, the block table shared); "
        "`gradio`: Gradio's own holder, which copies every component's config into each session. Both "
        "runs already share the Forward tab's starting picture instead of copying it (0.8 MB a session "
        "more before; the two together were the 1.2 MB a session of issue #14). The machine was shared "
        "with other jobs (load average below), which slows the calls, not the memory.",
        "",
        *sorted(lines),
        END,
    ])
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
