"""A class on one server: 20 clients drag the Forward slider while a training run goes on.

Starts the whole app in a server process of its own (as `python launch.py` serves it: bounded
sessions, 1 torch thread), starts a training run through the Train tab's `train_start` endpoint (the
job manager's child process), then drives the Forward tab's `noisy` event over raw HTTP, the way the
page does while a slider is dragged: each client sends the newest position once its previous answer
is back, at most one move every `--pace` ms (an input event per animation frame is 16 ms; the page's
`always_last` trigger keeps one request in flight). Phases, in order: 1 client, N clients, 1 client,
each for `--seconds`; the one-client figure pools both one-client phases. Reports per-request
latency (request sent -> answer received), errors, and the server's calls per second.

    python benchmarks/class_load.py [--clients 20] [--seconds 30] [--pace 50]

Goal: 0 errors, and the N-client p95 at most 4x the one-client p95 of the same run.
Writes its section of benchmarks/RESULTS.md (between its own markers).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- class_load: begin -->", "<!-- class_load: end -->"


def serve(port: int, runs: str) -> None:
    """Server mode: the app as launch.py serves it (bounded sessions, 1 torch thread)."""
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
    sessions.install(demo, Limits())
    print("ready", flush=True)
    demo.block_thread()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


async def drag(http, url: str, call, seconds: float, pace_s: float, seed: int, out: list, errors: list) -> None:
    """One client: a fresh session dragging the slider for `seconds`."""
    fn_index, data0, trigger, slot = call
    session = uuid.uuid4().hex[:11]
    end = time.perf_counter() + seconds
    i = seed
    while time.perf_counter() < end:
        data = list(data0)
        data[slot] = 1 + (i * 37) % 999
        i += 1
        sent = time.perf_counter()
        try:
            r = await http.post(url + "gradio_api/run/predict", json={
                "data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                "trigger_id": trigger})
            body = r.json()
            if r.status_code != 200 or body.get("error"):
                errors.append(f"{r.status_code}: {str(body)[:200]}")
            else:
                out.append((time.perf_counter() - sent) * 1000)
        except Exception as e:  # a refused or dropped connection is an error too
            errors.append(repr(e)[:200])
        await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - sent)))


async def phase(url: str, call, clients: int, seconds: float, pace_s: float) -> tuple[list, list]:
    import httpx

    out, errors = [], []
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(drag(http, url, call, seconds, pace_s, 100 * k, out, errors) for k in range(clients)))
    return out, errors


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_phase(pid: int, url: str, call, clients: int, seconds: float, pace_s: float):
    """(latencies, errors, answers/s, server CPU ms per answer, share of one core the server got)."""
    cpu0, wall0 = cpu_s(pid), time.perf_counter()
    out, errors = asyncio.run(phase(url, call, clients, seconds, pace_s))
    cpu, wall = cpu_s(pid) - cpu0, time.perf_counter() - wall0
    return out, errors, len(out) / wall, 1000 * cpu / max(1, len(out)), cpu / wall


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def describe(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f} ms, p95 {p95(values):.0f} ms, max {max(values):.0f} ms "
            f"(n={len(values)})")


def main() -> None:
    from gradio_client import Client
    import httpx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--pace", type=float, default=50, help="ms between one client's moves at most")
    p.add_argument("--serve", nargs=2, metavar=("PORT", "RUNS"), help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()
    if args.serve:
        return serve(int(args.serve[0]), args.serve[1])

    port = free_port()
    runs = tempfile.mkdtemp(prefix="bench-runs-")  # the app's checkpoint folder, removed afterwards
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(runs)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
    pace_s = args.pace / 1000
    try:
        for line in server.stdout:
            if line.strip() == "ready":
                break
        url = f"http://127.0.0.1:{port}/"
        client = Client(url, verbose=False)
        client.predict("swiss_roll", "mlp-2d", "linear", 1000, "eps", 2e-3, 128, 1_000_000, 200, 0, 0, 32, 3,
                       api_name="/train_start")
        while (status := client.predict(api_name="/train_status"))["status"] == "starting":
            time.sleep(0.5)
        if status["status"] != "running":
            raise RuntimeError(f"the training run did not start: {status['status']} {status.get('error')}")
        call = noisy_call(httpx.get(url + "config").json())
        asyncio.run(phase(url, call, 1, 3, pace_s))  # warm-up
        load = [os.getloadavg()[0]]
        step0 = client.predict(api_name="/train_status")["step"]
        one_a, err_a, *cost_a = timed_phase(server.pid, url, call, 1, args.seconds, pace_s)
        load.append(os.getloadavg()[0])
        many, err_many, *cost_many = timed_phase(server.pid, url, call, args.clients, args.seconds, pace_s)
        load.append(os.getloadavg()[0])
        one_b, err_b, *cost_b = timed_phase(server.pid, url, call, 1, args.seconds, pace_s)
        load.append(os.getloadavg()[0])
        status = client.predict(api_name="/train_status")
        client.predict(api_name="/train_stop")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(runs, ignore_errors=True)
    one, errors_one = one_a + one_b, err_a + err_b
    ratio = p95(many) / p95(one)
    met = not errors_one and not err_many and ratio <= 4
    def cost(c):
        return f"{c[0]:.0f} answers/s, server CPU {c[1]:.1f} ms an answer, the server had {c[2]:.2f} of a core"

    lines = [
        f"1 client: {describe(one)}; {len(errors_one)} errors; {cost(cost_a)} (first phase), {cost(cost_b)} (last)",
        f"{args.clients} clients: {describe(many)}; {len(err_many)} errors; {cost(cost_many)}",
        f"p95 ratio {ratio:.2f}x (goal at most 4x, 0 errors: {'met' if met else 'NOT met'}); training "
        f"{status['status']} throughout, at step {status['step']} ({status['step'] - step0} steps during the phases)",
        f"load average (1 min) at the phase boundaries: {' / '.join(f'{x:.1f}' for x in load)}",
    ]
    for line in lines:
        print(line)
    for e in (errors_one + err_many)[:5]:
        print("error:", e)
    if not args.no_write:
        write_results(args, lines)


# What the run above shows, and what was measured beside it (kept with the numbers it explains).
NOTES = """\
Why the goal is not met here: every phase is CPU-bound and the server was starved, not slowed by
the app's own concurrency. The server process had 0.14-0.17 of a core in each phase (the machine's
load average was about 20 on 2 cores), and spent about the same CPU per answer with 20 clients as
with one (22-25 ms): no lock or GIL contention grows with clients, and `noisy` runs outside
Gradio's queue, so no concurrency limit holds it back. Each client keeps one request in flight, so
at saturation a client waits for the other 19 answers: latency grows with the number of clients
(N x the CPU per answer / the server's share of a core), whatever the app does, until the server's
capacity exceeds 20 clients' demand. A sampling profile of the server answering one client (15 s,
in-process) puts 60% of a request's busy time in Gradio's output handling (writing each JPEG into
its file cache and checking the cached paths) and 33% in the handler itself: cutting that output
cost is what would raise the capacity (a Forward-tab change, not made here)."""


def write_results(args, lines: list[str]) -> None:
    import gradio
    import torch

    section = "\n".join([
        BEGIN,
        "## A class on one server: 20 clients drag the Forward slider during training (`benchmarks/class_load.py`)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, CPU only; torch {torch.__version__}, "
        f"gradio {gradio.__version__}; {datetime.date.today().isoformat()}. Server as `launch.py` serves it (1 torch "
        f"thread, bounded sessions); a training run (mlp-2d on swiss_roll, batch 128) goes on in the job manager's "
        f"child process. Raw HTTP `noisy` calls, each client one request in flight and at most one move every "
        f"{args.pace:g} ms; phases of {args.seconds:g} s: 1 client, {args.clients} clients, 1 client. Benchmark "
        "and server ran at nice 10 (this machine's rule for heavy jobs), the training child 5 lower.",
        "",
        *[f"- {line}" for line in lines],
        "",
        *[line for line in NOTES.splitlines()],
        END,
    ])
    write_section(section, BEGIN, END, RESULTS)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
