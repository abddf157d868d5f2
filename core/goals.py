"""The project's quality goals for its shipped models, and the figures they need beyond core.evaluate's:
the share of checkerboard samples off the squares, and how plain the shapes' grounds are.

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
# shapes at image quality (stricter than the classes above): FID within 2x real data's own, KID above its
# floor by at most the floor's own size, precision at least 0.9, and grounds as dark and as flat as the data's
FID_WITHIN_IMG = 2.0
PRECISION_IMG = 0.90
GROUND_FLAT = 1 / 255  # a ground is flat when its pixels sit within one 8-bit level of its level (median)

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


def grounds(x) -> dict:
    """How plain the grounds of shapes-like images are (a shape on a flat grey ground, as core.data.shapes draws).

    x: (N, C, H, W) in [-1, 1]. Each image's ground is read on its 1-pixel frame, which the shape rarely
    reaches: its level is the frame's per-channel median (in [0, 1], averaged over channels), its grain the
    median absolute deviation of the frame's pixels from that median, its tint the spread of the channels'
    medians. Returns the level's median, 99th percentile, least and greatest, the grain's median and 90th
    percentile over the images, and the share of images tinted by more than GROUND_FLAT.
    """
    x = (torch.as_tensor(x).double().clamp(-1, 1) + 1) / 2
    frame = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], 2)
    med = frame.median(2).values                                  # (N, C)
    level = med.mean(1)
    grain = (frame - med[:, :, None]).abs().median(2).values.mean(1)
    tint = med.amax(1) - med.amin(1)
    q = lambda v, p: float(torch.quantile(v, p))  # noqa: E731
    return {"level_median": q(level, 0.5), "level_p99": q(level, 0.99), "level_min": float(level.min()),
            "level_max": float(level.max()), "grain_median": q(grain, 0.5), "grain_p90": q(grain, 0.9),
            "tinted": float((tint > GROUND_FLAT).double().mean())}


def check_image_quality(figures: dict) -> dict:
    """shapes at image quality: {"met", "why"} from a stored evaluation with "grounds" and "grounds_real".

    FID at most FID_WITHIN_IMG x real data's own; KID above its floor by at most |floor|; precision at least
    PRECISION_IMG; the grounds' median and 99th percentile level within the real grounds' range, their grain
    (90th percentile) and tint under GROUND_FLAT, as the data's are.
    """
    m, g, real = figures["metrics"], figures["grounds"], figures["grounds_real"]
    fid = m["fid"]["value"] / m["fid"]["floor"]
    kid_over = m["kid"]["value"] - m["kid"]["floor"]
    prec = m["precision"]["value"]
    lo, hi = real["level_min"], real["level_max"]
    dark = lo <= g["level_median"] <= hi and lo <= g["level_p99"] <= hi
    flat = g["grain_p90"] <= GROUND_FLAT and g["tinted"] <= real["tinted"]
    tests = [(fid <= FID_WITHIN_IMG, f"FID {fid:.1f}x real's own ({'<=' if fid <= FID_WITHIN_IMG else '>'} "
                                     f"{FID_WITHIN_IMG:g})"),
             (kid_over <= abs(m["kid"]["floor"]), f"KID {kid_over:+.3g} above its floor "
                                                  f"({'<=' if kid_over <= abs(m['kid']['floor']) else '>'} "
                                                  f"{abs(m['kid']['floor']):.3g})"),
             (prec >= PRECISION_IMG, f"precision {prec:.3f} ({'>=' if prec >= PRECISION_IMG else '<'} "
                                     f"{PRECISION_IMG})"),
             (dark, f"ground level median {g['level_median']:.3f}, 99th pct {g['level_p99']:.3f} "
                    f"({'within' if dark else 'outside'} real's {lo:.3f}-{hi:.3f})"),
             (flat, f"ground grain (90th pct) {g['grain_p90'] * 255:.1f}/255, tinted {g['tinted']:.1%} "
                    f"({'flat' if flat else 'not flat'}: real {real['grain_p90'] * 255:.1f}/255, "
                    f"{real['tinted']:.1%})")]
    return {"met": all(ok for ok, _ in tests), "why": [w for _, w in tests]}


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
