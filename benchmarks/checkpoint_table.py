"""Write assets/checkpoints/README.md's table of shipped models from what is stored beside each one:
its config.json meta (net, steps, where and how long it trained) and its figures.json (measured by
benchmarks/checkpoint_figures.py). Nobody types these numbers.

    .venv/bin/python benchmarks/checkpoint_table.py          # rewrite the table in place
    .venv/bin/python benchmarks/checkpoint_table.py --check  # exit 1 if the README's table differs
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.evaluate import sampler_words  # noqa: E402
from core.goals import over_seeds  # noqa: E402

CKPTS = ROOT / "assets" / "checkpoints"
README = CKPTS / "README.md"
START, END = "<!-- table: written by benchmarks/checkpoint_table.py -->", "<!-- end of table -->"
ORDER = ["swiss_roll", "moons", "gaussians8", "checkerboard", "rings", "spiral",
         "signals_conv1d", "signals_gru", "digits", "shapes"]
SHOWN = {"points": ("swd", "precision", "recall"), "image": ("fid", "kid", "confident", "is", "precision", "recall"),
         "signal": ("spectrum", "precision", "recall")}
SHORT = {"swd": "SWD", "precision": "precision", "recall": "recall", "fid": "FID", "kid": "KID", "is": "IS",
         "confident": "confident", "spectrum": "log-spectral distance"}


def num(v) -> str:
    if v is None:
        return "-"
    a = abs(v)
    return f"{v:.3g}" if a == 0 or 1e-3 <= a < 1e4 else f"{v:.2e}"


def trained_on(meta: dict) -> str:
    """Where a checkpoint trained, as its meta records it (the device field is recorded since the shapes model)."""
    if meta.get("device"):
        return meta["device"]
    v = meta.get("versions", {})
    return f"not recorded (torch {v.get('torch', '?')}, python {v.get('python', '?')})"


def figure(key: str, f: dict) -> str:
    v = f.get("vs_floor")
    floor = f"{num(f['floor'])} ± {num(f['floor_sd'])}" if f.get("floor_sd") is not None else num(f["floor"])
    if not v:
        return f"{SHORT[key]} {num(f['value'])} (real {floor})"
    mark = "x" if v["how"] == "ratio" else ("+" if v["estimate"] >= 0 else "")
    lo, hi = v["interval"]
    return f"{SHORT[key]} {num(f['value'])} vs real {floor}: {mark}{num(v['estimate'])} [{num(lo)}, {num(hi)}]"


def setting(run: dict) -> str:
    """'ddim 50, eta 1, quadratic spacing' (options at their defaults left unsaid)."""
    return sampler_words(run, unit="")


def seeds_line(run: dict) -> str:
    """The 2-D goal's reading over several sample seeds: what the goal column is decided on."""
    figs = over_seeds(run["seeds"])
    per = " ".join(f"{s['swd'] / s['swd_floor']:.2f}" for s in run["seeds"])
    line = (f"**over seeds 0-{len(run['seeds']) - 1}**: SWD x{figs['metrics']['swd']['vs_floor']['estimate']:.2f} "
            f"real's own (per seed {per}), precision {figs['metrics']['precision']['value']:.3f}, "
            f"recall {figs['metrics']['recall']['value']:.3f}")
    if "off_squares" in figs:
        line += f", off the squares {figs['off_squares']:.1%}"
    return line


def row(name: str) -> str:
    cfg = json.loads((CKPTS / name / "config.json").read_text())
    meta, config = cfg["meta"], cfg["config"]
    size = (CKPTS / name / "model.safetensors").stat().st_size / 1e6
    sched = "" if config["diffusion"]["schedule"] == "linear" else f", {config['diffusion']['schedule']} schedule"
    head = (f"| `{name}` | {meta['net']} ({meta['parameters']:,}){sched} | {meta['steps']} (batch "
            f"{config['train']['batch_size']}), {trained_on(meta)}, {meta['train_seconds']:.0f} s | {size:.1f} MB")
    fig_path = CKPTS / name / "figures.json"
    if not fig_path.exists():
        return head + " | - | not measured with the current floors yet | - |"
    figs = json.loads(fig_path.read_text())
    lines = []
    for run in figs["runs"]:
        parts = [figure(k, run["metrics"][k]) for k in SHOWN[figs["kind"]] if k in run["metrics"]]
        if "off_squares" in run:
            parts.append(f"off the squares {run['off_squares']:.1%}")
        if "grounds" in run:
            g, real = run["grounds"], run["grounds_real"]
            parts.append(f"ground level median {g['level_median']:.3f} vs real {real['level_median']:.3f}, 99th pct "
                         f"{g['level_p99']:.3f} vs {real['level_p99']:.3f}, grain (90th pct) {g['grain_p90'] * 255:.1f}/255 "
                         f"vs {real['grain_p90'] * 255:.1f}/255, tinted {g['tinted']:.1%} vs {real['tinted']:.1%}")
        goal = {True: "**meets**", False: "**misses**", None: "no numeric goal"}[run["goal"]["met"]]
        if "quality" in run:
            q = run["quality"]
            goal_more = f"; image quality goal **{'met' if q['met'] else 'missed'}**: {', '.join(q['why'])}"
        else:
            goal_more = ""
        seed0 = "seed 0: " if "seeds" in run else ""
        more = f"; {seeds_line(run)}" if "seeds" in run else ""
        lines.append((f"{setting(run)}, n={run['n']}",
                      seed0 + "; ".join(parts) + f". *{run['overall']['says']}*{more}",
                      f"{goal}: {', '.join(run['goal']['why'])}{goal_more}"))
    return head + " | " + "<br>".join(s for s, _, _ in lines) + " | " + "<br>".join(f for _, f, _ in lines) + \
        " | " + "<br>".join(g for _, _, g in lines) + " |"


def summary() -> str:
    """Which models meet their goal with which sampler, in words, from the stored readings."""
    meets, misses, open_, quality = [], [], [], []
    for name in ORDER:
        path = CKPTS / name / "figures.json"
        if not path.exists():
            open_.append(f"`{name}`")
            continue
        for run in json.loads(path.read_text())["runs"]:
            what = f"`{name}` ({setting(run)})"
            {True: meets, False: misses, None: open_}[run["goal"]["met"]].append(what)
            if "quality" in run:
                quality.append(f"{what} {'meets' if run['quality']['met'] else 'misses'} it")
    lines = [f"- **Meet their goal:** {', '.join(meets) or 'none'}.",
             f"- **Miss it:** {', '.join(misses) or 'none'}.",
             f"- **No numeric goal, or not measured yet:** {', '.join(open_) or 'none'}."]
    if quality:
        lines.append(f"- **shapes at image quality** (the stricter goal): {', '.join(quality)}.")
    return "\n".join(lines)


def table() -> str:
    head = ("| checkpoint | net (params) | training: steps, where (from its meta), wall time | size | sampler, n | "
            "figures: value vs real data's own (mean ± sd of 8 real draws): ratio x or difference, "
            "[90% interval of both sides' noise] | goal |\n|---|---|---|---|---|---|---|")
    return "\n".join([head] + [row(n) for n in ORDER if (CKPTS / n).is_dir()]) + "\n\n" + summary()


def section(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"{README} lacks the table markers {START!r} ... {END!r}")
    return text[text.index(START) + len(START):text.index(END)].strip("\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when the README's table differs")
    a = p.parse_args(argv)
    text = README.read_text()
    new = table()
    if a.check:
        same = section(text) == new
        print("the README's table matches the stored figures" if same else "the README's table differs")
        return 0 if same else 1
    README.write_text(text[:text.index(START) + len(START)] + "\n" + new + "\n" + text[text.index(END):])
    print(f"wrote the table of {len(ORDER)} checkpoints into {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
