"""How soon the Reverse tab shows its first frame after Play, for the image models.

(a) server: from calling the `play` handler to its first frame encoded as Gradio sends it (JPEG
    written to the cache), each time a new run (new seed) with the model already cached and warm,
    as it is once the tab has opened; also the same with the model first loaded from disk;
(b) browser: in headless chromium, from the Play button's click to the first frame's <img> having
    loaded, each trial a new run (new seed), then Stop.

Models: the shipped digits and shapes checkpoints where they exist, otherwise untrained nets of the
same presets (unet-digits on 1x8x8, unet-shapes on 3x32x32): the first frame costs one forward pass
whatever the weights are. Samples: the tab's default (16 digits, 9 shapes). Sampler: DDIM 50 steps,
and the side-by-side view (DDPM 1000 steps beside DDIM 50 steps from the same x_T; their first
steps share one forward pass).

    python benchmarks/reverse_first_frame.py [--calls 30] [--clicks 15] [--device-note "2-core CPU, no GPU"]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from core import checkpoint  # noqa: E402
from core.config import DataConfig, DiffusionConfig, RunConfig  # noqa: E402
from core.nets import PRESET_SHAPES, PRESETS, build_model  # noqa: E402
from explorer.app import build_app, launch_options  # noqa: E402
from explorer.context import AppContext, Settings  # noqa: E402
from explorer.tabs.reverse_handlers import ReverseHandlers  # noqa: E402
from explorer.tabs.reverse_session import ReverseSession, default_samples  # noqa: E402
from core.threads import default_threads  # noqa: E402
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

TARGET_MS = 500.0
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- reverse_first_frame: begin -->", "<!-- reverse_first_frame: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODELS = {"digits": "unet-digits", "shapes": "unet-shapes"}  # shipped checkpoint name -> its preset
SETTINGS = {  # name -> (sampler, steps, compare, sampler_b, steps_b, recorded, seed typed before each Play)
    "DDIM 50": ("ddim", 50, False, "ddpm", 1000, False, True),
    "DDPM 1000 beside DDIM 50": ("ddpm", 1000, True, "ddim", 50, False, True),
    # the tab's default setting (seed 0): shipped models replay the recording beside their checkpoint.
    # Untouched between plays, the page's Play click asks the session's armed feed for the frame Play
    # shows first (explorer/feed.py); with the seed typed again before each Play (the same 0) the page
    # compares the settings with those before the first touch and, finding them the same, does too.
    "DDIM 50, default setting (recorded)": ("ddim", 50, False, "ddpm", 1000, True, False),
    "DDIM 50, default setting (recorded), seed typed before Play": ("ddim", 50, False, "ddpm", 1000, True, True),
}
ARMED = "() => { const el = document.querySelector('#rv-armed [data-armed]'); return el ? el.dataset.armed : null; }"
RECORDED_TARGET_MS = 100.0

# Click Play; resolve with the ms until a new frame <img> has loaded (-1 after 20 s).
CLICK_JS = """() => new Promise(resolve => {
  const box = document.querySelector('#rv-frame');
  const before = box.querySelector('img') ? box.querySelector('img').src : null;
  const timeout = setTimeout(() => { obs.disconnect(); resolve(-1); }, 20000);
  const done = () => { clearTimeout(timeout); obs.disconnect(); resolve(performance.now() - t0); };
  const check = () => {
    const img = box.querySelector('img');
    if (!img || img.src === before) return;
    if (img.complete && img.naturalWidth > 0) done(); else img.addEventListener('load', done, {once: true});
  };
  const obs = new MutationObserver(check);
  obs.observe(box, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  const t0 = performance.now();
  document.querySelector('#rv-play').click();
})"""


def checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (checkpoint dir, 'shipped' or 'untrained <preset>'): shipped where present, else made here."""
    out = {}
    for name, preset in MODELS.items():
        shipped = ROOT / "assets" / "checkpoints" / name
        if (shipped / "model.safetensors").is_file() and (shipped / "config.json").is_file():
            out[name] = (shipped, "shipped")
            continue
        config = RunConfig(model=PRESETS[preset], diffusion=DiffusionConfig("linear", 1000, "eps"),
                           data=DataConfig(name))
        model = build_model(PRESETS[preset], PRESET_SHAPES[preset], seed=0)
        out[name] = (checkpoint.save(folder / f"untrained-{name}", model, config, {"steps": 0}), f"untrained {preset}")
    return out


def server_side(h: ReverseHandlers, path: str, setting: tuple, calls: int,
                cold: bool = False) -> tuple[list[float], list[float]]:
    """ms from calling play to its first frame encoded as JPEG into Gradio's cache: (wall, thread CPU).

    On a shared, busy machine the CPU time still says how much work the first frame is, while the
    wall time includes waiting for a core.
    """
    sampler, steps, compare, sampler_b, steps_b, recorded, _ = setting
    n = default_samples("image", h.load(path)[2]["sample_shape"])
    encoder = gr.Image(format="jpeg", type="numpy")
    times, cpu = [], []
    for i in range(calls + (0 if cold else 3)):
        if cold:
            h.ctx._models.clear()  # drop the cached model: this call loads it from disk
        session = ReverseSession()
        t0, c0 = time.perf_counter(), time.thread_time()
        gen = h.play(path, sampler, steps, 0.0, 0 if recorded else 1000 + i, n, compare, sampler_b, steps_b, 0.0, "30", session)
        image, *_ = next(gen)
        encoder.postprocess(image)
        if session.recorded != recorded:
            raise RuntimeError(f"expected a {'recorded' if recorded else 'live'} run, got the other ({path})")
        ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        gen.close()
        if cold or i >= 3:  # warm: the first calls settle allocator and caches
            times.append(ms)
            cpu.append(cpu_ms)
    return times, cpu


def browser_side(runs: Path, paths: dict[str, str], clicks: int) -> dict[tuple[str, str], list[float]]:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Settings(runs_dir=runs))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_options())
    out = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            page.goto(demo.local_url)
            page.wait_for_selector("#ximg img")
            page.get_by_role("tab", name="Reverse").click()
            page.wait_for_selector("#rv-play")
            for name, path in paths.items():
                page.locator("#rv-ckpt input").click()
                page.locator("[role=option]", has_text=path.rsplit("/", 1)[-1]).first.click()
                page.wait_for_timeout(1500)  # the selection warms the model and fits the controls
                page.locator("#rv-speed").get_by_text("10", exact=True).click()
                for label, (sampler, steps, compare, sampler_b, steps_b, recorded, typed) in SETTINGS.items():
                    set_sampler(page, "#rv-sampler", sampler, "#rv-steps", steps)
                    compare_box = page.locator("#rv-compare input")
                    if compare_box.is_checked() != compare:
                        compare_box.click()
                    if compare:
                        page.wait_for_selector("#rv-sampler-b", state="visible")
                        set_sampler(page, "#rv-sampler-b", sampler_b, "#rv-steps-b", steps_b)
                    times, token = [], None
                    for i in range(clicks + 2):
                        if i > 0:  # at rest after Stop: the page asks for a new armed feed
                            page.wait_for_function(f"t => {{ const now = ({ARMED})(); return !!now && now !== t; }}",
                                                   arg=token)
                        if typed or i == 0:
                            seed = page.locator("#rv-seed input")
                            seed.fill(str(0 if recorded else 2000 + i))
                            seed.blur()
                        page.wait_for_timeout(300)
                        token = page.evaluate(ARMED)
                        ms = page.evaluate(CLICK_JS)
                        if ms < 0:
                            raise RuntimeError(f"no first frame within 20 s ({name}, {label}, click {i})")
                        if i >= 2:
                            times.append(ms)
                        page.locator("#rv-stop").click()
                        try:
                            page.wait_for_function(
                                "() => document.querySelector('#rv-caption').innerText.includes('Stopped')")
                        except Exception:
                            print("caption:", page.locator("#rv-caption").inner_text())
                            raise
                        page.wait_for_timeout(300)
                    out[(name, label)] = times
                    print(f"browser {name} / {label}: {summary(times)}", flush=True)
            browser.close()
    finally:
        demo.close()
    return out


def set_sampler(page, dropdown: str, sampler: str, steps_id: str, steps: int) -> None:
    labels = {"ddim": "DDIM", "ddpm": "DDPM", "dpm++2m": "DPM-Solver"}
    page.locator(f"{dropdown} input").click()
    page.locator("[role=option]", has_text=labels[sampler]).first.click()
    page.wait_for_timeout(500)
    box = page.locator(f"{steps_id} input[type=number]")
    box.fill(str(steps))
    box.press("Enter")
    page.wait_for_timeout(300)


def summary(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10) if len(times) > 1 else [times[0], times[0]]
    return f"median {statistics.median(times):.0f} ms (p10 {q[0]:.0f}, p90 {q[-1]:.0f}, n={len(times)})"


def write_results(device: str, models: dict, server: dict, browser: dict, threads: int, note: str) -> None:
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        BEGIN,
        "## Reverse tab: time to the first frame after Play (`benchmarks/reverse_first_frame.py`)",
        "",
        f"Device: {device}; torch {torch.__version__}, gradio {gr.__version__}, {threads} torch thread(s) "
        f"(as launch.py sets it); load average while measuring: {load}.",
        "Models: " + "; ".join(f"{name}: {kind}" for name, (_, kind) in models.items()) + ".",
        "",
        "| model | setting | what | measured | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    def target(label: str) -> float:
        return RECORDED_TARGET_MS if "recorded" in label else TARGET_MS

    for (name, label, what), (times, cpu) in server.items():
        lines.append(f"| {name} | {label} | server: {what}, wall clock | {summary(times)} | <= {target(label):.0f} ms |")
        lines.append(f"| {name} | {label} | server: {what}, CPU time of the handling thread | {summary(cpu)} | |")
    for (name, label), times in browser.items():
        lines.append(f"| {name} | {label} | browser: Play click -> first frame loaded | {summary(times)} "
                     f"| <= {target(label):.0f} ms |")
    lines += [
        "",
        "Server: handler call -> first frame JPEG-encoded as Gradio caches it (a new run each time: one sampler",
        "step per lane, then the frame is drawn and sent). Browser: adds the queue round trip (SSE) and the",
        "image fetch. The model is loaded and warmed when the app starts and whenever a checkpoint is chosen.",
        "Recorded: the tab's default setting (seed 0), which a shipped model replays from the trajectory.npz",
        "beside its checkpoint (explorer.recordings) instead of computing it. In the browser, a Play at rest",
        "with nothing changed since the last Play (after Stop: the run goes on from the frame shown) shows the",
        "frame Play shows first, fetched ahead from the session's armed feed, with the click, and the click asks",
        "the feed to go on from it beside Play's own event (explorer/feed.py);",
        "'seed typed before Play' types the same seed first: the page finds the settings as they were before",
        "they were touched, so the click asks the armed feed all the same (it waited for Play's view through",
        "the queue until 2026-12-05, 155-165 ms). The other rows draw a new seed each time and compute live.",
    ] + ([note] if note else []) + [END]
    block = "\n".join(lines)
    write_section(block, BEGIN, END, RESULTS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=30, help="server-side runs per model and setting")
    p.add_argument("--clicks", type=int, default=15, help="browser Play clicks per model and setting")
    p.add_argument("--device-note", default="2-core CPU, no GPU")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--note", default="", help="a sentence about the conditions, written under the table")
    args = p.parse_args()
    threads = default_threads()
    torch.set_num_threads(threads)
    runs = scratch_dir() / "runs"
    models = checkpoints(runs)
    h = ReverseHandlers(AppContext(Settings(runs_dir=runs)))
    server = {}
    for name, (path, kind) in models.items():
        for label, setting in SETTINGS.items():
            if "typed" in label:
                continue  # the server does the same as for the row above it; only the page differs
            warm = server_side(h, str(path), setting, args.calls)
            server[(name, label, "model cached")] = warm
            print(f"server {name} ({kind}) / {label}, cached: wall {summary(warm[0])}; cpu {summary(warm[1])}",
                  flush=True)
        cold = server_side(h, str(path), SETTINGS["DDIM 50"], max(3, args.calls // 5), cold=True)
        server[(name, "DDIM 50", "model loaded from disk first")] = cold
        print(f"server {name} / DDIM 50, loaded from disk: wall {summary(cold[0])}; cpu {summary(cold[1])}",
              flush=True)
    browser = {} if args.no_browser else browser_side(runs, {n: str(p) for n, (p, _) in models.items()}, args.clicks)
    if not args.no_write:
        write_results(args.device_note, models, server, browser, threads, args.note)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
