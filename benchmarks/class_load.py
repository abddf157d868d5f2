"""A class on one server: 20 clients drag the Forward slider while a training run goes on.

Starts the whole app in a server process of its own (as `python launch.py` serves it: bounded
sessions, 1 torch thread), starts a training run through the Train tab's `train_start` endpoint (the
job manager's child process), then sends what the page sends while its slider is dragged:

- the x_t picture: the page asks the frame route (explorer/forward_frames.py) with one GET per move,
  one request in flight, one move every `--pace` ms on average (an input event per animation frame
  is 16 ms), each client at its own rhythm (see `drag`); `--path event` sends the Gradio `noisy` event instead (the page's way before the route);
- the figures that follow t: with the frame route, the histogram comes with each picture and the
  page sends no other request; through the event (`--path event`), the page also sent the `t_views`
  event through Gradio's queue, one in flight (the page's `always_last` trigger), each paced by the
  server (FIGURE_PACE_S and the class budget), and so does this benchmark.

Phases, in order: 1 client, N clients, 1 client, each for `--seconds`; the one-client figure pools
both one-client phases. Reports the picture's latency (request sent -> answer received), errors,
the server's answers per second and CPU, and how long the figures took to follow.
`--own-seed` gives each client its own noise seed, so no two clients share a picture.

    python benchmarks/class_load.py [--clients 20] [--seconds 30] [--pace 50] [--path frames|event]
                                    [--own-seed]

Goal: 0 errors, and the N-client p95 at most 4x the one-client p95 of the same run.
Writes its section of benchmarks/RESULTS.md (between its own markers, one section per path and
seed choice).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import html
import json
import os
import platform
import random
import re
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


def event_call(config: dict, api_name: str) -> tuple[int, list, int, int, int]:
    """(fn_index, data, trigger id, t's place in data, the seed's) for the event named `api_name`, with
    each input's starting value (None for a gr.State: the server reads it from the session)."""
    comps = {c["id"]: c for c in config["components"]}
    for i, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == api_name:
            data = [None if comps[c]["type"] == "state" else comps[c]["props"].get("value") for c in dep["inputs"]]
            props = [comps[c]["props"] for c in dep["inputs"]]
            t_slot = next(k for k, c in enumerate(props) if c.get("elem_id") == "tslider" or c.get("label") == "t")
            seed_slot = next(k for k, c in enumerate(props) if c.get("elem_id") == "fw-seed")
            return dep.get("id", i), data, dep["targets"][0][0], t_slot, seed_slot
    raise RuntimeError(f"no {api_name} event in the app")


def frames_source(config: dict) -> str:
    """The frame route's address for the page's first view (the #fw-frames marker's data-frames)."""
    for c in config["components"]:
        if c["props"].get("elem_id") == "fw-frames":
            return html.unescape(re.search(r'data-frames="([^"]+)"', c["props"]["value"]).group(1))
    raise RuntimeError("the page names no frame route (#fw-frames)")


class RawGet:
    """GETs over one keep-alive HTTP/1.1 connection, with as little client work as there can be: the
    clients share the server's 2 cores here, and 20 httpx clients took 0.6 of a core (a class's
    clients are other machines)."""

    def __init__(self, url: str):
        self.host, self.port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
        self.writer.write(f"GET /{path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
        return int(head.split(" ", 2)[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Client:
    """One page dragging the slider: its picture requests and its figures' event."""

    def __init__(self, http, url: str, calls: dict, k: int, path: str, own_seed: bool):
        self.http, self.url, self.calls, self.path = http, url, calls, path
        self.session = uuid.uuid4().hex[:11]
        self.seed = k if own_seed else 0
        self.i, self.t = 100 * k, None  # clients start at different places of the same walk over t
        self.source = calls["frames"].replace("seed=0", f"seed={self.seed}")
        self.raw = RawGet(url)

    def move(self) -> int:
        self.t = 1 + (self.i * 37) % 999
        self.i += 1
        return self.t

    async def picture(self, t: int) -> None:
        """The x_t picture for t, as the page asks for it (raises on an error answer)."""
        if self.path == "frames":
            status, body = await self.raw.get(f"{self.source}&t={t}")
            if status != 200 or not body:
                raise RuntimeError(f"{status}: {body[:200]!r}")
            return
        fn_index, data, trigger, t_slot, seed_slot = self.calls["noisy"]
        data = list(data)
        data[t_slot], data[seed_slot] = t, self.seed
        r = await self.http.post(self.url + "gradio_api/run/predict", json={
            "data": data, "fn_index": fn_index, "session_hash": self.session, "event_data": None,
            "trigger_id": trigger})
        body = r.json()
        if r.status_code != 200 or body.get("error"):
            raise RuntimeError(f"{r.status_code}: {str(body)[:200]}")

    async def figures(self, t: int) -> None:
        """The t_views event through Gradio's queue, waited for to its end (raises on an error)."""
        fn_index, data, trigger, t_slot, seed_slot = self.calls["t_views"]
        data = list(data)
        data[t_slot], data[seed_slot] = t, self.seed
        r = await self.http.post(self.url + "gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "session_hash": self.session, "event_data": None,
            "trigger_id": trigger})
        event = r.json().get("event_id")
        if r.status_code != 200 or not event:
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        async with self.http.stream("GET", self.url + f"gradio_api/queue/data?session_hash={self.session}") as s:
            async for line in s.aiter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") == event and msg.get("msg") == "process_completed":
                    if not msg.get("success", False):
                        raise RuntimeError(str(msg.get("output"))[:200])
                    return
        raise RuntimeError("the queue's stream ended before the figures came")


async def drag(client: Client, seconds: float, pace_s: float, out: list, figs: list, errors: list) -> None:
    """One client dragging the slider for `seconds`: pictures one at a time, figures one at a time.

    Students do not move in step: each client starts at a random moment within one pace and waits
    a random 0.5-1.5 paces between moves (a pace on average). Clients in lockstep would send their
    moves in bursts of N at the same instant, a worst case no class produces."""
    end = time.perf_counter() + seconds
    rng = random.Random(client.seed * 1000 + client.i)

    async def pictures():
        await asyncio.sleep(rng.uniform(0, pace_s))
        while time.perf_counter() < end:
            t, sent = client.move(), time.perf_counter()
            try:
                await client.picture(t)
                out.append((time.perf_counter() - sent) * 1000)
            except Exception as e:  # a refused or dropped connection is an error too
                errors.append(repr(e)[:200])
            await asyncio.sleep(max(0.0, rng.uniform(0.5, 1.5) * pace_s - (time.perf_counter() - sent)))

    async def figures():
        await asyncio.sleep(pace_s)  # the first move comes first
        while time.perf_counter() < end:
            sent = time.perf_counter()
            try:
                await client.figures(client.t)
                figs.append((time.perf_counter() - sent) * 1000)
            except Exception as e:
                errors.append("figures: " + repr(e)[:200])

    try:
        await asyncio.gather(pictures(), *([figures()] if client.path == "event" else []))
    finally:
        client.raw.close()


async def phase(url: str, calls: dict, clients: int, seconds: float, pace_s: float, path: str,
                own_seed: bool) -> tuple[list, list, list]:
    import httpx

    out, figs, errors = [], [], []
    limits = httpx.Limits(max_connections=3 * clients + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(drag(Client(http, url, calls, k, path, own_seed), seconds, pace_s, out, figs, errors)
                               for k in range(clients)))
    return out, figs, errors


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_phase(pid: int, url: str, calls: dict, clients: int, seconds: float, pace_s: float, path: str,
                own_seed: bool):
    """(picture latencies, figure latencies, errors, pictures/s, server CPU ms per picture, share of one
    core the server got, share of one core the clients (this process) used)."""
    cpu0, wall0, mine0 = cpu_s(pid), time.perf_counter(), time.process_time()
    out, figs, errors = asyncio.run(phase(url, calls, clients, seconds, pace_s, path, own_seed))
    cpu, wall, mine = cpu_s(pid) - cpu0, time.perf_counter() - wall0, time.process_time() - mine0
    return out, figs, errors, len(out) / wall, 1000 * cpu / max(1, len(out)), cpu / wall, mine / wall


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def describe(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f} ms, p95 {p95(values):.0f} ms, max {max(values):.0f} ms "
            f"(n={len(values)})")


def main() -> None:
    from gradio_client import Client as ApiClient
    import httpx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--pace", type=float, default=50, help="ms between one client's moves at most")
    p.add_argument("--path", choices=["frames", "event"], default="frames",
                   help="how the picture is asked for: the frame route (the page's way) or the Gradio event")
    p.add_argument("--own-seed", action="store_true", help="each client its own noise seed (no shared pictures)")
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
    run = (args.path, args.own_seed)
    try:
        for line in server.stdout:
            if line.strip() == "ready":
                break
        url = f"http://127.0.0.1:{port}/"
        client = ApiClient(url, verbose=False)
        client.predict("swiss_roll", "mlp-2d", "linear", 1000, "eps", 2e-3, 128, 1_000_000, 200, 0, 0, 32, 3,
                       api_name="/train_start")
        while (status := client.predict(api_name="/train_status"))["status"] == "starting":
            time.sleep(0.5)
        if status["status"] != "running":
            raise RuntimeError(f"the training run did not start: {status['status']} {status.get('error')}")
        config = httpx.get(url + "config").json()
        calls = {"noisy": event_call(config, "noisy"), "t_views": event_call(config, "t_views"),
                 "frames": frames_source(config)}
        asyncio.run(phase(url, calls, 1, 3, pace_s, *run))  # warm-up
        load = [os.getloadavg()[0]]
        step0 = client.predict(api_name="/train_status")["step"]
        one_a, figs_a, err_a, *cost_a = timed_phase(server.pid, url, calls, 1, args.seconds, pace_s, *run)
        load.append(os.getloadavg()[0])
        many, figs_many, err_many, *cost_many = timed_phase(server.pid, url, calls, args.clients, args.seconds,
                                                            pace_s, *run)
        load.append(os.getloadavg()[0])
        one_b, figs_b, err_b, *cost_b = timed_phase(server.pid, url, calls, 1, args.seconds, pace_s, *run)
        load.append(os.getloadavg()[0])
        status = client.predict(api_name="/train_status")
        client.predict(api_name="/train_stop")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(runs, ignore_errors=True)
    one, figs_one, errors_one = one_a + one_b, figs_a + figs_b, err_a + err_b
    ratio = p95(many) / p95(one)
    met = not errors_one and not err_many and ratio <= 4

    def cost(c):
        return (f"{c[0]:.0f} pictures/s, server CPU {c[1]:.1f} ms a picture, the server had {c[2]:.2f} of a core, "
                f"the clients {c[3]:.2f}")

    def follow(figs):
        if not figs:
            return "the histogram came with each picture"
        return f"figures followed t in a median {statistics.median(figs) / 1000:.2f} s (p95 {p95(figs) / 1000:.2f} s)"

    lines = [
        f"1 client: picture {describe(one)}; {len(errors_one)} errors; {cost(cost_a)} (first phase), "
        f"{cost(cost_b)} (last); {follow(figs_one)}",
        f"{args.clients} clients: picture {describe(many)}; {len(err_many)} errors; {cost(cost_many)}; "
        f"{follow(figs_many)}",
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


# What each run shows, and what was measured beside it (kept with the numbers it explains).
NOTES = {
    ("frames", False): """\
The page's way, with the class on the lecturer's photo and seed: a picture drawn for one client is
a cache hit for the others (explorer/forward_frames.py), so the server draws each t once and then
answers from memory, and the histogram's new bars come with each picture. Through the Gradio event
instead (section `class_load_event`), each move is an event, and the figures another, which all
pages share at 5 a second (explorer/pacer.py). With the 20 clients moving in lockstep (all at the
same instant, as an earlier version of this benchmark had them) each burst of 20 is answered one
after another: p95 35 ms against 5 ms for one client (7x) in one such run, still 20 times quicker
than the event's. The clients here share the
server's 2 cores (a class's clients are other machines): they send pictures over plain keep-alive
connections to take as little CPU as they can, and their share of a core is reported.""",
    ("frames", True): """\
The worst case for the frame route: every client on its own seed, so no two share a picture and
each move is drawn (q_sample, the uint8 picture, the JPEG and the histogram: about 3 ms on this CPU).
Between them the two runs bound a class: students who follow the lecturer share pictures; students
who each pick their own seed do not.""",
    ("event", False): """\
The page's way before the frame route, kept for comparison (the figures paced as now): each move a
Gradio event (`noisy`, outside the queue), where the picture is under 3 ms of the server's work and
the rest is Gradio's event and file handling (the server CPU a picture above, figures included,
against the frame route's sections). Twenty clients fill the server's one Python core and each move
waits for the others'.""",
}


def write_results(args, lines: list[str]) -> None:
    import gradio
    import torch

    tag = "class_load" + ("_event" if args.path == "event" else "") + ("_own_seed" if args.own_seed else "")
    begin, end = f"<!-- {tag}: begin -->", f"<!-- {tag}: end -->"
    how = ("Pictures from the frame route (the page's way), each client one GET in flight"
           if args.path == "frames" else "Pictures through the Gradio `noisy` event (raw HTTP), each client one "
           "call in flight")
    seeds = "each client its own noise seed" if args.own_seed else "every client on the same photo and seed"
    section = "\n".join([
        begin,
        f"## A class on one server: {args.clients} clients drag the Forward slider during training "
        f"(`benchmarks/class_load.py{' --path event' if args.path == 'event' else ''}"
        f"{' --own-seed' if args.own_seed else ''}`)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, CPU only; torch {torch.__version__}, "
        f"gradio {gradio.__version__}; {datetime.date.today().isoformat()}. Server as `launch.py` serves it (1 torch "
        f"thread, bounded sessions); a training run (mlp-2d on swiss_roll, batch 128) goes on in the job manager's "
        f"child process. {how}, one move every {args.pace:g} ms on average, each client at its own rhythm "
        f"(a random start within one pace, then 0.5-1.5 paces between moves)"
        f"{'' if args.path == 'frames' else ', and the `t_views` figures through Gradio' + chr(39) + 's queue as the page asked for them'}"
        f"; {seeds}; phases of {args.seconds:g} s: "
        f"1 client, {args.clients} clients, 1 client. The server CPU a picture is all the server's work "
        f"(the figures' too) over the pictures answered.",
        "",
        *[f"- {line}" for line in lines],
        "",
        *NOTES[(args.path, args.own_seed)].splitlines(),
        end,
    ])
    write_section(section, begin, end, RESULTS)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
