"""What a model's recorded figures say of the sampler settings it was measured with.

A shipped model carries its figures beside its weights (figures.json, written by
benchmarks/checkpoint_figures.py with core.goals): for each sampler setting, the figures against
real data's own and whether the model's quality goal is met with it. The Reverse tab shows that
verdict per setting and offers the fastest setting that meets the goal; the Evaluate tab shows the
whole table. Nothing here measures: a checkpoint without the file (one trained here) has no record.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.goals import GOALS
from core.samplers import SAMPLERS, sampler_name

MAX_BYTES = 1 << 20  # a figures.json beside a checkpoint is a few kB
FILE = "figures.json"
# a goal's reason that says it is missed: "(> 1.3)", "(< 0.95)", "(outside real's 0.001-0.250)", "(not flat: ...)"
_FAILED = re.compile(r"\((?:> |< |outside |not flat)")


@dataclass(frozen=True)
class Measured:
    """One recorded sampler setting and its verdict (met: None where the model has no numeric goal)."""

    sampler: str
    steps: int
    spacing: str
    eta: float
    n: int | None
    met: bool | None
    why: tuple[str, ...]
    quality: bool | None = None      # a stricter goal where the model has one (shapes: image quality)
    quality_why: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """'DPM-Solver++ 2M SDE, 50 steps, quadratic spacing' (eta and spacing only where not the default)."""
        words = [sampler_name(self.sampler), f"{self.steps} steps"]
        if self.eta:
            words.append(f"eta {self.eta:g}")
        if self.spacing != "linear":
            words.append(f"{self.spacing} spacing")
        return ", ".join(words)

    @property
    def missed_by(self) -> list[str]:
        """The reasons the goal is missed ('recall 0.868 (< 0.95)'), without the 'mean of 4 sample seeds' preamble."""
        return _missed(self.why)

    @property
    def quality_missed_by(self) -> list[str]:
        return _missed(self.quality_why)


def _missed(why) -> list[str]:
    return [w.split(": ", 1)[-1] if w.startswith("mean of") else w for w in why if _FAILED.search(w)]


def read_figures(path) -> dict | None:
    """The recorded figures beside a checkpoint folder, or None where there are none or they cannot be read."""
    if not path:
        return None
    file = Path(path) / FILE
    try:
        if not file.is_file() or file.stat().st_size > MAX_BYTES:
            return None
        stored = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("runs"), list) or not stored["runs"]:
        return None
    return stored


def measured_settings(stored: dict | None) -> list[Measured]:
    """Each recorded run's setting and verdict, in the file's order; runs that cannot be read are left out."""
    out = []
    for run in (stored or {}).get("runs", []):
        try:
            sampler, steps = str(run["sampler"]), int(run["steps"])
            goal, quality = run.get("goal") or {}, run.get("quality") or {}
            met, q_met = goal.get("met"), quality.get("met")
            m = Measured(sampler, steps, str(run.get("spacing") or "linear"), float(run.get("eta") or 0.0),
                         int(run["n"]) if run.get("n") is not None else None,
                         None if met is None else bool(met), tuple(str(w) for w in goal.get("why") or ()),
                         None if q_met is None else bool(q_met), tuple(str(w) for w in quality.get("why") or ()))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if m.sampler in SAMPLERS and m.steps >= 1:
            out.append(m)
    return out


def fastest_met(settings: list[Measured]) -> Measured | None:
    """The setting with the fewest network calls (steps) among those that meet the goal. Of settings as fast,
    the one that misses fewer figures of the stricter goal where there is one (shapes: DPM-Solver++ 2M SDE's
    plain grounds over DDIM's grainy ones), then the first recorded."""
    met = [m for m in settings if m.met]
    return min(met, key=lambda m: (m.steps, len(m.quality_missed_by))) if met else None


def measured_md(settings: list[Measured], kind: str | None = None) -> str:
    """A short list of the recorded settings, each marked met (✓) or missed (✗, with what missed it); empty
    where nothing was measured against a goal. `kind` (points, image, signal) names the goal on hover."""
    if not any(m.met is not None for m in settings):
        return ""
    lines = []
    for m in settings:
        if m.met is not None:
            missed = ", ".join(m.missed_by) if not m.met else ""
            line = f"- {'✓' if m.met else '✗'} {m.label}" + (f": {missed}" if missed else "")
            if m.quality is not None:  # the stricter goal: its first reasons (the table in Evaluate has all)
                why = [] if m.quality else m.quality_missed_by
                line += "; the stricter image-quality goal " + ("✓" if m.quality else "✗")
                if why:
                    line += f": {', '.join(why[:2])}" + (", …" if len(why) > 2 else "")
            lines.append(line)
    ns = sorted({m.n for m in settings if m.n})
    at = f" at n = {ns[0]:,}" if len(ns) == 1 else ""
    goal = html.escape(GOALS.get(kind or "", "the model's quality goal"), quote=True)
    return (f"**<span title=\"{goal}\">Its quality goal</span>, measured{at}** (the figures are in Evaluate):\n"
            + "\n".join(lines))
