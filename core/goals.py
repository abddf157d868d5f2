"""The project's quality goals for its shipped models, and the one figure they need beyond core.evaluate's:
the share of checkerboard samples off the squares.

A goal reads a stored evaluation (the JSON `core.evaluate` gives, or its compact copy beside each
shipped checkpoint) and says met or not, with the numbers it looked at; nothing here samples.
"""
from __future__ import annotations

import torch

from .data import _checkerboard_toy, _toy_frame

SWD_RATIO_2D = 1.3    # 2-D toys: sliced Wasserstein (200,000-point reference) within 1.3x of real data's own
PR_2D = 0.95          # 2-D toys: precision and recall at least this
OFF_SQUARES = 0.01    # checkerboard: at most 1 % of samples off the squares
CONFIDENT = 0.90      # digits and shapes: at least 90 % of samples classified with p >= 0.9
IS_WITHIN = 0.10      # digits and shapes: Inception Score within 10 % of real data's

GOALS = {
    "points": (f"sliced Wasserstein against 200,000 real points at most {SWD_RATIO_2D}x real data's own at the same n, "
               f"precision and recall at least {PR_2D}; checkerboard: at most {OFF_SQUARES:.0%} of points off the "
               "squares"),
    "image": (f"at least {CONFIDENT:.0%} of samples confidently classified (p >= 0.9) by the project's classifier, "
              f"Inception Score within {IS_WITHIN:.0%} of real data's"),
    "signal": "no numeric goal: looked at beside the data; the figures against real data's own are listed",
}


def off_squares(x) -> float:
    """Share of 2-D points (N, 2), in the checkerboard dataset's normalised units, that lie off its filled squares."""
    mean, scale = _toy_frame(_checkerboard_toy)
    b = torch.as_tensor(x).double() * scale + mean  # back to the board: 4x4 on [0, 4)^2, filled where col + row is even
    inside = ((b >= 0) & (b < 4)).all(1)
    even = (b.floor().sum(1) % 2) == 0
    return float((~(inside & even)).double().mean())


def over_seeds(per_seed: list[dict]) -> dict:
    """The 2-D goal's figures over several sample seeds, shaped as `check` reads them.

    per_seed: one {"swd", "swd_floor", "precision", "recall", "off_squares"?} per seed (each seed's SWD
    and its floor, real data's own mean at the same n). One seed's SWD ratio at n = 2000 swings by 2x
    either way (real data against itself does too), so the goal reads the mean SWD over the seeds
    against the mean floor, and the mean precision, recall and share off the squares.
    """
    if not per_seed:
        raise ValueError("over_seeds needs the figures of at least one seed")
    mean = lambda key: sum(float(s[key]) for s in per_seed) / len(per_seed)  # noqa: E731
    swd, floor = mean("swd"), mean("swd_floor")
    out = {"metrics": {"swd": {"value": swd, "floor": floor, "vs_floor": {"estimate": swd / floor}},
                       "precision": {"value": mean("precision")}, "recall": {"value": mean("recall")}},
           "seeds": len(per_seed)}
    if all("off_squares" in s for s in per_seed):
        out["off_squares"] = mean("off_squares")
    return out


def check(kind: str, dataset: str, figures: dict) -> dict:
    """Whether one stored evaluation meets its goal: {"met": bool | None, "why": [str]}.

    figures: {"metrics": {key: {"value", "floor", "vs_floor"}}, "off_squares"?}; met is None where
    there is no numeric goal (signals).
    """
    m = figures["metrics"]
    why, ok = [], True
    if kind == "points":
        ratio = m["swd"]["vs_floor"]["estimate"]
        ok &= ratio <= SWD_RATIO_2D
        over = f"mean of {figures['seeds']} sample seeds: " if figures.get("seeds", 1) > 1 else ""
        why.append(f"{over}SWD {ratio:.2f}x real's own ({'<=' if ratio <= SWD_RATIO_2D else '>'} {SWD_RATIO_2D})")
        for key in ("precision", "recall"):
            v = m[key]["value"]
            ok &= v >= PR_2D
            why.append(f"{key} {v:.3f} ({'>=' if v >= PR_2D else '<'} {PR_2D})")
        if dataset == "checkerboard":
            off = figures["off_squares"]
            ok &= off <= OFF_SQUARES
            why.append(f"off the squares {off:.1%} ({'<=' if off <= OFF_SQUARES else '>'} {OFF_SQUARES:.0%})")
        return {"met": bool(ok), "why": why}
    if kind == "image":
        conf = m["confident"]["value"]
        is_gap = 1 - m["is"]["value"] / m["is"]["floor"]
        ok = conf >= CONFIDENT and is_gap <= IS_WITHIN
        why = [f"confidently classified {conf:.1%} ({'>=' if conf >= CONFIDENT else '<'} {CONFIDENT:.0%})",
               f"IS {is_gap:.1%} below real's ({'<=' if is_gap <= IS_WITHIN else '>'} {IS_WITHIN:.0%})"]
        return {"met": bool(ok), "why": why}
    return {"met": None, "why": ["no numeric goal"]}
