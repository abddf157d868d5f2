"""The view in the URL: one place that reads a link's query parameters into checked settings.

A link, a lesson stop and a bundle all name settings the same way (`tab=reverse&sampler=ddim&
steps=50`). `read(params)` checks each value against its kind and range and returns the good ones
with a plain message for each bad or unknown one; the tabs then apply them (and check what only
they can, such as whether a photo or a checkpoint of that name exists). Nothing here raises on
user input: a broken link falls back to the defaults and says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.schedules import MAX_T, SCHEDULES, SPACINGS

TABS = ("forward", "reverse", "train", "evaluate")
# The views inside a tab (its inner tabs), by the tab they belong to: `view=compare` opens one.
VIEWS = {"forward": ("main", "compare", "chain", "film", "encoding"),
         "evaluate": ("figures", "visual", "memorisation", "history", "quiz")}
SOURCES = ("photo", "dataset", "upload")
SEED_MAX = 2**31 - 1
MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Param:
    """One setting a link may carry: how to read it and what is allowed (for the message)."""

    read: Callable[[str], Any]
    allowed: str


def _choice(options) -> Param:
    options = tuple(options)

    def read(text: str):
        if text not in options:
            raise ValueError
        return text
    return Param(read, "one of " + ", ".join(options))


def _int(lo: int, hi: int) -> Param:
    def read(text: str) -> int:
        f = float(text)
        if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
            raise ValueError
        return int(f)
    return Param(read, f"a whole number from {lo} to {hi}")


def _float(lo: float, hi: float) -> Param:
    def read(text: str) -> float:
        f = float(text)
        if not math.isfinite(f) or not lo <= f <= hi:
            raise ValueError
        return f
    return Param(read, f"a number from {lo:g} to {hi:g}")


def _name() -> Param:
    def read(text: str) -> str:
        text = text.strip()
        if not text or any(c in text for c in "/\\\0") or text.startswith("."):
            raise ValueError
        return text
    return Param(read, "a name from the list (no path)")


def _flag() -> Param:
    def read(text: str) -> bool:
        if text not in ("0", "1"):
            raise ValueError
        return text == "1"
    return Param(read, "0 or 1")


# Every setting a link can carry, by the name it has in the URL. `t` is checked against T by the tab.
PARAMS: dict[str, Param] = {
    "tab": _choice(TABS),
    "view": _choice(dict.fromkeys(v for views in VIEWS.values() for v in views)),  # checked against tab below
    "present": _flag(),
    "student": _flag(),  # the quiz alone, sized for a phone (the address on the class's join card)
    "contrast": _choice(("off", "light", "dark")),  # high contrast, applied by page.js
    # a guided lesson and its stop (1-based): the page opens at that stop (checked against the lesson by the app)
    "lesson": _name(),
    "stop": _int(1, 1000),
    # Forward
    "source": _choice(SOURCES),
    "input": _name(),
    "index": _int(0, 10**7),
    "schedule": _choice(SCHEDULES),
    "T": _int(10, MAX_T),
    "t": _int(0, MAX_T),
    "seed": _int(0, SEED_MAX),
    # Reverse
    "checkpoint": _name(),
    "sampler": _name(),
    "steps": _int(1, MAX_T),
    "eta": _float(0.0, 1.0),
    "spacing": _choice(SPACINGS),  # the timesteps the samplers visit
    "n": _int(1, 10_000),
    "frame": _int(0, 10**7),
    "compare": _flag(),      # a second sampler beside the first, from the same x_T
    "sampler_b": _name(),
    "steps_b": _int(1, MAX_T),
}


def read(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(the valid settings, a message per invalid or unknown one). Never raises on user input."""
    good: dict[str, Any] = {}
    problems: list[str] = []
    for key, text in params.items():
        text = str(text)
        shown = text if len(text) <= 40 else text[:40] + "…"
        spec = PARAMS.get(key)
        if spec is None and key.startswith("__"):  # Gradio's own (?__theme=dark): the page applies those
            continue
        if spec is None:
            problems.append(f"the link's setting {key!r} is not one this app knows; ignored")
            continue
        try:
            if len(text) > MAX_VALUE_CHARS:
                raise ValueError
            good[key] = spec.read(text)
        except (ValueError, TypeError, OverflowError):
            problems.append(f"the link's {key}={shown!r} is not allowed ({spec.allowed}); the default is used")
    view = good.get("view")
    if view is not None and view not in VIEWS.get(good.get("tab", "forward"), ()):
        tab = good.get("tab", "forward")
        allowed = ", ".join(VIEWS.get(tab, ())) or "none"
        problems.append(f"the link's view={view!r} is not a view of the {tab} tab (its views: {allowed}); ignored")
        del good["view"]
    return good, problems


def problem_text(problems: list[str]) -> str:
    """One message for a toast: what was wrong with the link."""
    return "This link has settings that cannot be used: " + "; ".join(problems) + "."
