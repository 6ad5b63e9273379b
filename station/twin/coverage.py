"""Exact area coverage of polygons over a pixel grid, from their edges alone (vectorized, one pass).

The signed-area accumulation of analytic font rasterizers (font-rs, stb_truetype; Green's theorem):
every edge adds, to each pixel of each row it crosses, the area between the edge and the pixel's
right side, and its full height to every pixel further right (a running sum along the row). For
closed polygons the sum is each pixel's exact covered area fraction, times the polygon's weight.
Pixel (r, c) covers x in [c, c+1), y in [r, r+1). Edges need no polygon bookkeeping: a set of
closed polygons is just the list of their directed edges, each with its polygon's weight.
The steps sit along the edges only: they are summed sparsely and the frame is written once.
"""

from __future__ import annotations

import numpy as np


def _mean_positive(ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Mean of max(u, 0) along a segment where u runs linearly from ua to ub."""
    hi, lo = np.maximum(ua, ub), np.minimum(ua, ub)
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = hi * hi / (2.0 * (hi - lo))
    return np.where(lo >= 0, 0.5 * (ua + ub), np.where(hi > 0, mixed, 0.0))


def coverage_raster(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, weight: np.ndarray,
                    width: int, height: int, background: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """``scale * (background + sum of weight * covered fraction)`` over pixels, (H, W) float32, for closed
    polygons' directed edges.

    A polygon whose shoelace area ``sum(x_i y_(i+1) - x_(i+1) y_i) / 2`` is negative (counter-clockwise
    on screen, x right, y down) adds ``+weight`` times its coverage; one traversed the other way adds
    ``-weight``: give its edges ``-weight`` (or reverse them) to add it positively.
    """
    xa, ya, xb, yb, weight = (np.asarray(a, dtype=np.float64).ravel() for a in (xa, ya, xb, yb, weight))
    dy_all = yb - ya
    keep = (dy_all != 0) & (np.maximum(ya, yb) > 0) & (np.minimum(ya, yb) < height) & (np.minimum(xa, xb) < width)
    if not keep.any():
        return np.full((height, width), scale * background, dtype=np.float32)
    flat, delta = _row_steps(xa[keep], ya[keep], xb[keep], yb[keep], weight[keep], width, height)
    return _fill_rows(flat, delta, width, height, background, scale)


def _row_steps(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, weight: np.ndarray,
               width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The edges' steps on the accumulation grid (H, W + 1): flat index ``r (W + 1) + c`` and the value
    whose running sum along the row is the coverage (the last column collects steps right of the image)."""
    dy_all = yb - ya
    sign = np.sign(dy_all)
    down = dy_all > 0
    xt, yt = np.where(down, xa, xb), np.where(down, ya, yb)  # top end
    xz, yz = np.where(down, xb, xa), np.where(down, yb, ya)  # bottom end
    slope = (xz - xt) / (yz - yt)
    # split every edge at the pixel rows it crosses
    r_first = np.maximum(np.floor(yt), 0).astype(np.int64)
    r_last = np.minimum(np.ceil(yz), height).astype(np.int64)
    nrow = np.maximum(r_last - r_first, 0)
    e = np.repeat(np.arange(xt.size), nrow)
    r = r_first[e] + (np.arange(e.size) - np.repeat(np.cumsum(nrow) - nrow, nrow))
    y0 = np.maximum(yt[e], r)
    y1 = np.minimum(yz[e], r + 1.0)
    good = y1 > y0
    e, r, y0, y1 = e[good], r[good], y0[good], y1[good]
    x0 = xt[e] + (y0 - yt[e]) * slope[e]
    x1 = xt[e] + (y1 - yt[e]) * slope[e]
    dy = (y1 - y0) * sign[e] * weight[e]  # signed, weighted height of the piece
    # columns each piece touches: the area right of the piece within column c, as a difference
    c_lo = np.floor(np.minimum(x0, x1)).astype(np.int64)
    c_hi = np.floor(np.maximum(x0, x1)).astype(np.int64)
    ncol = c_hi - c_lo + 2  # columns c_lo..c_hi, then the step into c_hi + 1
    p = np.repeat(np.arange(e.size), ncol)
    k = np.arange(p.size) - np.repeat(np.cumsum(ncol) - ncol, ncol)
    c = c_lo[p] + k
    last = k == ncol[p] - 1
    covered = _mean_positive(c + 1 - x0[p], c + 1 - x1[p]) - _mean_positive(c - x0[p], c - x1[p])
    a = np.where(last, 1.0, covered) * dy[p]
    previous = np.where(k == 0, 0.0, np.concatenate(([0.0], a[:-1])))
    return r[p] * (width + 1) + np.clip(c, 0, width), a - previous


def _fill_rows(flat: np.ndarray, delta: np.ndarray, width: int, height: int, background: float,
               scale: float) -> np.ndarray:
    """``scale * (background + running sum of the steps along each row)``, (H, W) float32.

    The steps are few (along the edges): they are summed per grid cell and along the rows sparsely
    (float64), and the frame is written once, as runs of constant value between steps.
    """
    acc_width = width + 1
    order = np.argsort(flat, kind="stable")  # runs of ascending cells (one edge, one row): fast
    flat, delta = flat[order], delta[order]
    first = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    cell, step = flat[first], np.add.reduceat(delta, first)
    row, col = np.divmod(cell, acc_width)
    running = np.cumsum(step)
    row_first = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
    before = np.concatenate(([0.0], running))[row_first]  # the sum over the rows above
    value = running - np.repeat(before, np.diff(np.concatenate((row_first, [row.size]))))
    inside = col < width  # the last column only ends its row
    pos, value, row, col = row[inside] * width + col[inside], value[inside], row[inside], col[inside]
    # every row starts at the background, unless a step sits in its first column
    restart = np.ones(height, dtype=bool)
    restart[row[col == 0]] = False
    starts = np.flatnonzero(restart) * width
    at = np.searchsorted(pos, starts)
    pos = np.insert(pos, at, starts)
    value = np.insert(value, at, 0.0)
    runs = np.diff(np.concatenate((pos, [height * width])))
    levels = ((value + background) * scale).astype(np.float32)
    return np.repeat(levels, runs).reshape(height, width)
