"""A class joins at once: what Gradio's page code costs the server when N fresh browsers open the app.

A class opens the join link at the same moment (a QR code on the projector). Each phone's first page
asks for about 120 of Gradio's build files (its page code: /assets/...). This script:

1. records what a fresh student page asks for: the whole app started as launch.py serves it, the
   student link (?tab=evaluate&view=quiz&student=1) opened in headless chromium with an empty cache;
   it also reports the app server's CPU for each of a few such fresh pages (everything it does for
   a page, not only the page code: the page, its config, the load events, the pictures);
2. serves the same build folder from two servers side by side, each a process of its own behind
   Gradio's own compression middleware (BrotliMiddleware, quality 4, as Gradio's App adds it):
   `gradio`, Gradio's /assets handler (route_utils.file_response: the file read and compressed for
   every request, as the app served it before), and `cached`, explorer/static_assets.py (read and
   compressed once per process);
3. sends both the same class: N clients start together, each with its own connections (6 at a time,
   as a browser opens to one host), asking for every recorded file with the Accept-Encoding chromium
   sent. Rounds alternate between the servers; a server's first round is its first class (the cached
   server compresses each file then).

Reports, per server and round: the server's CPU for the whole class and per client, the wall time until
the last client has every file, and the bytes sent. The machine's load average is read around each round.

    python benchmarks/class_join.py [--clients 30] [--rounds 2] [--pages 3]

Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STUDENT = "?tab=evaluate&view=quiz&student=1"
BEGIN, END = "<!-- class_join: begin -->", "<!-- class_join: end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_build(kind: str, port: int) -> None:
    """Server mode: Gradio's build folder as Gradio serves it (`gradio`) or through the cache (`cached`)."""
    import uvicorn
    from gradio.brotli_middleware import BrotliMiddleware
    from gradio.data_classes import UserProvidedPath
    from gradio.route_utils import BUILD_PATH_LIB, file_response
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from explorer import static_assets

    if kind == "gradio":
        async def build_resource(request):  # Gradio's own /assets handler (gradio/routes.py)
            return file_response(BUILD_PATH_LIB, UserProvidedPath(request.path_params["path"]))
        routes = [Route("/assets/{path:path}", build_resource)]
    else:
        routes = static_assets.routes()
    app = Starlette(routes=routes, middleware=[Middleware(BrotliMiddleware, quality=4)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that have exited (clock ticks -> s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server at {url} did not answer within {timeout:.0f} s")


def record(pages: int) -> tuple[list[str], str, list[float], str]:
    """The app's fresh student page: (asset paths, the Accept-Encoding chromium sent, server CPU per page, browser)."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    runs = str(scratch_dir("class-join-runs-"))
    proc = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--checkpoints", runs], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_up(url, proc)
        assets, coding, cpu = [], "", []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            for k in range(pages + 1):  # the first page warms the server (its first page computes its views)
                context = browser.new_context()
                page = context.new_page()
                seen: list[tuple[str, str]] = []
                # all_headers: with those the network stack adds (Accept-Encoding among them)
                page.on("requestfinished",
                        lambda r, seen=seen: seen.append((r.url, r.all_headers().get("accept-encoding", ""))))
                before = cpu_seconds(proc.pid)
                page.goto(url + STUDENT)
                page.wait_for_selector("#de-ready [data-ready]", state="attached")
                page.wait_for_timeout(1000)  # what the page asks for after it is ready (its pictures)
                if k:
                    cpu.append(cpu_seconds(proc.pid) - before)
                else:
                    assets = sorted({u.split("/assets/", 1)[1] for u, _ in seen if "/assets/" in u})
                    coding = next((c for u, c in seen if "/assets/" in u and c), "") or "gzip, deflate, br"
                context.close()
            version = browser.version
            browser.close()
        return assets, coding, cpu, version
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


async def one_client(base: str, assets: list[str], coding: str) -> int:
    import httpx
    sent = 0
    limits = httpx.Limits(max_connections=6)  # a browser's connections to one host
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=600) as client:
        async def get(path: str) -> None:
            nonlocal sent
            async with client.stream("GET", "/assets/" + path, headers={"Accept-Encoding": coding}) as r:
                if r.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {r.status_code}")
                async for chunk in r.aiter_raw():
                    sent += len(chunk)
        await asyncio.gather(*(get(a) for a in assets))
    return sent


def a_class(base: str, pid: int, assets: list[str], coding: str, clients: int) -> dict:
    load0 = os.getloadavg()[0]
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()

    async def run() -> list[int]:
        return await asyncio.gather(*(one_client(base, assets, coding) for _ in range(clients)))

    sent = asyncio.run(run())
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return {"cpu": cpu, "wall": wall, "bytes": sum(sent) / clients, "load": (load0, os.getloadavg()[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pages", type=int, default=3, help="fresh student pages of the whole app, for its CPU")
    ap.add_argument("--serve", choices=["gradio", "cached"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_build(args.serve, args.port)
        return
    import gradio
    import httpx  # noqa: F401  (fail early: the clients need it)

    started = time.perf_counter()
    assets, coding, page_cpu, chromium = record(args.pages)
    print(f"a fresh student page asks for {len(assets)} build files (Accept-Encoding: {coding}); "
          f"app server CPU per fresh page: {', '.join(f'{c:.2f} s' for c in page_cpu)}", flush=True)
    servers = {}
    try:
        for kind in ("gradio", "cached"):
            port = free_port()
            proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], cwd=ROOT,
                                    start_new_session=True)
            servers[kind] = (proc, f"http://127.0.0.1:{port}")
        for proc, base in servers.values():
            wait_up(base + "/assets/" + assets[0], proc)
        rows = []
        order = [("gradio", "cached"), ("cached", "gradio")]
        for r in range(args.rounds):
            for kind in order[r % 2]:
                proc, base = servers[kind]
                got = a_class(base, proc.pid, assets, coding, args.clients)
                rows.append((r + 1, kind, got))
                print(f"round {r + 1} {kind}: server CPU {got['cpu']:.2f} s ({got['cpu'] / args.clients * 1000:.0f} ms "
                      f"a client), all served in {got['wall']:.2f} s, {got['bytes'] / 1e6:.2f} MB a client, "
                      f"load {got['load'][0]:.1f}-{got['load'][1]:.1f}", flush=True)
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)

    def per_client(kind: str) -> list[float]:
        return [g["cpu"] / args.clients for _, k, g in rows if k == kind]

    gradio_ms, cached_ms = per_client("gradio"), per_client("cached")
    warm = cached_ms[1:] or cached_ms  # the cache's rounds after its first (which compresses each file once)
    ratio = (sum(gradio_ms) / len(gradio_ms)) / max(1e-9, sum(warm) / len(warm))
    import torch
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## A class joins at once: Gradio's page code from the server (`benchmarks/class_join.py`)",
        "",
        f"{when}. {platform.machine()}, {os.cpu_count()} logical CPUs, no GPU; gradio {gradio.__version__}, torch "
        f"{torch.__version__}, chromium {chromium}, Python {platform.python_version()}. `python benchmarks/class_join.py "
        f"--clients {args.clients} --rounds {args.rounds} --pages {args.pages}` ({time.perf_counter() - started:.0f} s). "
        f"The clients run on the same CPU as the servers (their CPU is not counted).",
        "",
        f"A fresh student page (the join link, an empty browser cache) asks for {len(assets)} of Gradio's build files "
        f"(Accept-Encoding `{coding}`). The whole app's server spent "
        f"{', '.join(f'{c:.2f}' for c in page_cpu)} s of CPU on each of {len(page_cpu)} such pages, one after "
        "another (the page, its config, its load events, its pictures and the build files).",
        "",
        f"{args.clients} clients at once, each fetching every one of those files over its own connections (6 at a time); "
        "both servers behind Gradio's compression middleware. `gradio`: Gradio's /assets handler, each file read "
        "and compressed for each request; `cached`: explorer/static_assets.py, read and compressed once (its first "
        "round includes that).",
        "",
        "| round | server | server CPU for the class | per client | all files served after | sent per client | load (1-min) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r, kind, g in rows:
        lines.append(f"| {r} | {kind} | {g['cpu']:.2f} s | {g['cpu'] / args.clients * 1000:.0f} ms | {g['wall']:.2f} s | "
                     f"{g['bytes'] / 1e6:.2f} MB | {g['load'][0]:.1f}-{g['load'][1]:.1f} |")
    lines += ["", f"Server CPU per client, Gradio's handler over the cache's (its rounds after the first): "
              f"**{ratio:.1f}x**.", END]
    print("\n".join(lines))
    write_section("\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
