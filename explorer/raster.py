"""Draw many dots, segments and arrow heads onto an RGB uint8 array at once, with numpy.

Frames of 2-D runs hold hundreds of points, arrows and trail segments; drawing each with a Pillow
call cost about 100 ms a frame here (the Python call per shape, not the pixels), which bounded
how fast a run could play and export. These functions colour the same pixels in a few array
operations. Coordinates are pixels (x right, y down), floats; everything outside `clip`
(x0, y0, x1, y1, inclusive) is left alone. Shapes are aliased, as Pillow draws them.
"""
from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]


def _disc(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= radius * radius + radius  # round at small radii
    return dx[keep], dy[keep]


def _paint(canvas: np.ndarray, x: np.ndarray, y: np.ndarray, color: Color, clip: Box) -> None:
    x0, y0, x1, y1 = clip
    ok = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    canvas[y[ok], x[ok]] = color


def dots(canvas: np.ndarray, xy: np.ndarray, color: Color, radius: float, clip: Box) -> None:
    """Filled discs of `radius` px centred on the rows of `xy` (N, 2); non-finite rows are skipped."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return
    c = np.rint(xy).astype(np.int64)
    dx, dy = _disc(radius)
    _paint(canvas, (c[:, :1] + dx).ravel(), (c[:, 1:] + dy).ravel(), color, clip)


def segments(canvas: np.ndarray, p: np.ndarray, q: np.ndarray, color: Color, clip: Box) -> None:
    """1 px lines from each row of `p` (N, 2) to the same row of `q`; non-finite ones are skipped."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(p).all(axis=1) & np.isfinite(q).all(axis=1)
    p, q = p[ok], q[ok]
    if not len(p):
        return
    d = q - p
    # one sample per pixel along the longer axis, capped so a wild segment cannot cost much
    n = np.minimum(np.ceil(np.abs(d).max(axis=1)).astype(np.int64), 4096) + 1
    seg = np.repeat(np.arange(len(p)), n)
    start = np.cumsum(n) - n
    k = np.arange(n.sum()) - np.repeat(start, n)
    f = (k / np.maximum(n - 1, 1)[seg])[:, None]
    pts = np.rint(p[seg] + f * d[seg]).astype(np.int64)
    _paint(canvas, pts[:, 0], pts[:, 1], color, clip)


def polylines(canvas: np.ndarray, paths: np.ndarray, color: Color, clip: Box) -> None:
    """1 px polylines through the points of each path in `paths` (N, L, 2)."""
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim != 3 or paths.shape[1] < 2:
        return
    segments(canvas, paths[:, :-1].reshape(-1, 2), paths[:, 1:].reshape(-1, 2), color, clip)


def arrows(canvas: np.ndarray, p: np.ndarray, q: np.ndarray, color: Color, clip: Box, head: float = 4.0) -> None:
    """Lines p -> q with a small filled head at q (its length min(head, 0.6 |q - p|), half as wide)."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    segments(canvas, p, q, color, clip)
    d = q - p
    length = np.hypot(d[:, 0], d[:, 1])
    big = np.isfinite(length) & (length >= 1.0)
    if not big.any():
        return
    q, d, length = q[big], d[big], length[big]
    u = d / length[:, None]
    side = np.stack([-u[:, 1], u[:, 0]], axis=1)
    h = np.minimum(head, 0.6 * length)[:, None]
    base = q - u * h
    _triangles(canvas, q, base + side * h * 0.5, base - side * h * 0.5, color, clip)


def _triangles(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, color: Color, clip: Box) -> None:
    """Fill each triangle (a, b, c) (rows of N x 2): the pixels of its bounding box whose centre is inside."""
    r = int(np.ceil(np.abs(np.stack([b - a, c - a])).max())) + 1
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    ax = np.rint(a).astype(np.int64)
    px = ax[:, :1] + dx.ravel()  # (N, M) candidate pixels around each apex
    py = ax[:, 1:] + dy.ravel()

    def edge(s, e):  # sign of the cross product: which side of s -> e each pixel is on
        return (e[:, :1, 0] - s[:, :1, 0]) * (py - s[:, :1, 1]) - (e[:, :1, 1] - s[:, :1, 1]) * (px - s[:, :1, 0])

    A, B, C = a[:, None, :], b[:, None, :], c[:, None, :]
    e1, e2, e3 = edge(A, B), edge(B, C), edge(C, A)
    inside = ((e1 >= 0) & (e2 >= 0) & (e3 >= 0)) | ((e1 <= 0) & (e2 <= 0) & (e3 <= 0))
    _paint(canvas, px[inside], py[inside], color, clip)
