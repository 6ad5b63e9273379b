"""Polygons with reflectance: exact area-coverage rasterization and point sampling, vectorized.

A chart is a painter's list of polygons, each with the reflectance step (``delta``, 3 channels) it
makes over what it is painted on; each polygon lies wholly inside one region of constant
reflectance of the layers below (nesting), so reflectance = background + sum(inside_i * delta_i)
and a pixel's area average = background + sum(coverage_i * delta_i), exactly.

Coverage is the exact area of polygon and pixel (Green's theorem, the signed-area accumulation of
analytic font rasterizers such as font-rs / stb_truetype): for every edge crossing a pixel row,
the area between the edge and each pixel's right side in closed form, then a running sum along
the row. Cost grows with the polygons' perimeter in pixels plus the raster's area, not with the
number of pixels times polygons.
"""

from __future__ import annotations

import numpy as np

#: Pixels held by one band of the accumulator (rows x columns), bounds temporary memory.
_BAND_PIXELS = 1 << 21
#: Point-sample pairs (point, candidate polygon) processed at once.
_PAIR_CHUNK = 1 << 21


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area of a polygon (k,2); positive when clockwise on screen (x right, y down)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


class PolygonSet:
    """Polygons (each (k,2) mm, any simple shape) with their reflectance steps (S,3)."""

    def __init__(self, polygons: list[np.ndarray], deltas: np.ndarray) -> None:
        deltas = np.asarray(deltas, dtype=np.float64).reshape(len(polygons), 3)
        self.deltas = deltas
        self.neutral = bool(np.all(deltas == deltas[:, :1]))
        vmax = max((len(p) for p in polygons), default=3)
        n = len(polygons)
        # Edges padded to vmax per polygon; padding edges are horizontal (dy = 0) and count for nothing.
        ax = np.zeros((n, vmax))
        ay = np.zeros((n, vmax))
        bx = np.zeros((n, vmax))
        by = np.zeros((n, vmax))
        for i, poly in enumerate(polygons):
            p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            if signed_area(p) < 0:
                p = p[::-1]
            q = np.roll(p, -1, axis=0)
            k = len(p)
            ax[i, :k], ay[i, :k], bx[i, :k], by[i, :k] = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
        self._edges = (ax, ay, bx, by)
        arrays = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
        allp = np.concatenate(arrays) if n else None
        self.bbox = np.array(
            [[np.min(np.asarray(p)[:, 0]), np.min(np.asarray(p)[:, 1]),
              np.max(np.asarray(p)[:, 0]), np.max(np.asarray(p)[:, 1])] for p in polygons]
        ).reshape(n, 4)
        self._extent = (allp.min(axis=0), allp.max(axis=0)) if n else (np.zeros(2), np.ones(2))
        self.convex = np.array([_is_convex(np.asarray(p, dtype=np.float64).reshape(-1, 2)) for p in polygons],
                               dtype=bool)
        self._grid: tuple | None = None

    def __len__(self) -> int:
        return self.deltas.shape[0]

    # --- exact area raster -------------------------------------------------------------------
    def raster(self, x0_mm: float, y0_mm: float, px_per_mm: float, width_px: int, height_px: int,
               background: np.ndarray) -> np.ndarray:
        """Area average of reflectance over each pixel: (H,W,3) float32.

        Pixel (r, c) covers x in [x0 + c/ppm, x0 + (c+1)/ppm), y in [y0 + r/ppm, y0 + (r+1)/ppm).
        """
        W, H = int(width_px), int(height_px)
        out = np.empty((H, W, 3), dtype=np.float32)
        out[:] = np.asarray(background, dtype=np.float32).reshape(3)
        if W == 0 or H == 0 or len(self) == 0:
            return out
        ax, ay, bx, by = self._edges
        # Edges in pixel units, oriented top to bottom; weight -sign(dy) per oriented edge.
        X1, Y1 = (ax - x0_mm) * px_per_mm, (ay - y0_mm) * px_per_mm
        X2, Y2 = (bx - x0_mm) * px_per_mm, (by - y0_mm) * px_per_mm
        sign = -np.sign(Y2 - Y1)
        poly_idx = np.broadcast_to(np.arange(len(self))[:, None], X1.shape)
        swap = Y2 < Y1
        xt, yt = np.where(swap, X2, X1), np.where(swap, Y2, Y1)  # top end
        xb, yb = np.where(swap, X1, X2), np.where(swap, Y1, Y2)  # bottom end
        keep = (sign != 0) & (yb > 0) & (yt < H) & (np.minimum(xt, xb) < W)
        xt, yt, xb, yb, sign, poly_idx = (a[keep] for a in (xt, yt, xb, yb, sign, poly_idx))
        channels = 1 if self.neutral else 3
        weights = sign[:, None] * self.deltas[poly_idx][:, :channels]
        band = max(1, min(H, _BAND_PIXELS // max(W, 1)))
        for r0 in range(0, H, band):
            r1 = min(H, r0 + band)
            sel = (yb > r0) & (yt < r1)
            acc = _accumulate_band(xt[sel], yt[sel], xb[sel], yb[sel], weights[sel], r0, r1, W)
            if channels == 1:
                out[r0:r1] += acc[0][:, :, None].astype(np.float32)
            else:
                for k in range(3):
                    out[r0:r1, :, k] += acc[k].astype(np.float32)
        return out

    # --- point sampling ----------------------------------------------------------------------
    def sample(self, x_mm: np.ndarray, y_mm: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Reflectance at points (...) -> (..., 3) float32 (half-open edges: shared edges count once).

        A uniform grid indexes the polygons: a cell wholly inside a convex polygon takes its step
        at once, only polygons crossing a point's cell are tested edge by edge.
        """
        x = np.asarray(x_mm, dtype=np.float64)
        y = np.asarray(y_mm, dtype=np.float64)
        x, y = np.broadcast_arrays(x, y)
        shape = x.shape
        x, y = x.reshape(-1), y.reshape(-1)
        out = np.empty((x.size, 3), dtype=np.float64)
        out[:] = np.asarray(background, dtype=np.float64).reshape(3)
        if len(self) == 0 or x.size == 0:
            return out.reshape(*shape, 3).astype(np.float32)
        indptr, indices, cell_base, origin, cell, (nx, ny) = self._index()
        cx = np.floor((x - origin[0]) / cell).astype(np.int64)
        cy = np.floor((y - origin[1]) / cell).astype(np.int64)
        valid = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
        pts = np.flatnonzero(valid)
        cid = cy[pts] * nx + cx[pts]
        out[pts] += cell_base[cid]
        counts = indptr[cid + 1] - indptr[cid]
        partial = counts > 0
        pts, cid, counts = pts[partial], cid[partial], counts[partial]
        csum = np.cumsum(counts)
        ax, ay, bx, by = self._edges
        start = 0
        while start < pts.size:  # chunks keep the (point, polygon) pairs bounded
            done = csum[start - 1] if start else 0
            stop = max(int(np.searchsorted(csum, done + _PAIR_CHUNK, side="right")), start + 1)
            p_idx, c_cnt, c_id = pts[start:stop], counts[start:stop], cid[start:stop]
            rep = np.repeat(np.arange(p_idx.size), c_cnt)
            first = np.repeat(indptr[c_id] - (np.cumsum(c_cnt) - c_cnt), c_cnt)
            poly = indices[first + np.arange(rep.size)]
            px, py = x[p_idx][rep][:, None], y[p_idx][rep][:, None]
            y1, y2, x1, x2 = ay[poly], by[poly], ax[poly], bx[poly]
            span = (py >= np.minimum(y1, y2)) & (py < np.maximum(y1, y2))
            with np.errstate(divide="ignore", invalid="ignore"):
                xe = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            crossing = span & (px >= xe)
            inside = -np.sum(np.where(crossing, np.sign(y2 - y1), 0.0), axis=1)
            contrib = inside[:, None] * self.deltas[poly]
            for k in range(3):
                out[p_idx, k] += np.bincount(rep, weights=contrib[:, k], minlength=p_idx.size)
            start = stop
        return out.reshape(*shape, 3).astype(np.float32)

    def _index(self) -> tuple:
        """Uniform grid over the polygons' extent: per cell the step of the convex polygons holding it
        wholly, and (CSR) the polygons crossing it."""
        if self._grid is not None:
            return self._grid
        lo, hi = self._extent
        size = np.maximum(hi - lo, 1e-9)
        n_cells = int(min(max(64 * len(self), 4096), 1 << 18))
        cell = float(max(np.sqrt(size[0] * size[1] / n_cells), max(size) / 1024, 1e-6))
        nx, ny = int(np.ceil(size[0] / cell)) + 1, int(np.ceil(size[1] / cell)) + 1
        i0 = np.clip(np.floor((self.bbox[:, 0] - lo[0]) / cell).astype(np.int64), 0, nx - 1)
        j0 = np.clip(np.floor((self.bbox[:, 1] - lo[1]) / cell).astype(np.int64), 0, ny - 1)
        i1 = np.clip(np.floor((self.bbox[:, 2] - lo[0]) / cell).astype(np.int64), 0, nx - 1)
        j1 = np.clip(np.floor((self.bbox[:, 3] - lo[1]) / cell).astype(np.int64), 0, ny - 1)
        cell_base = np.zeros((nx * ny, 3))
        ax, ay, bx, by = self._edges
        cells, polys = [], []
        for s in range(len(self)):
            jj, ii = np.mgrid[j0[s]:j1[s] + 1, i0[s]:i1[s] + 1]
            jj, ii = jj.ravel(), ii.ravel()
            ids = jj * nx + ii
            if self.convex[s]:
                # wholly inside: the cell's 4 corners strictly inside every edge's half-plane;
                # wholly outside: all 4 strictly outside one edge's half-plane
                length = np.hypot(bx[s] - ax[s], by[s] - ay[s])[None, :]
                tol = 1e-9 * cell * length
                inner = np.ones(ids.size, dtype=bool)
                outer = np.ones((ids.size, length.size), dtype=bool)
                for cxo, cyo in ((0, 0), (1, 0), (0, 1), (1, 1)):
                    px = lo[0] + (ii + cxo) * cell
                    py = lo[1] + (jj + cyo) * cell
                    cross = ((bx[s] - ax[s])[None, :] * (py[:, None] - ay[s][None, :])
                             - (by[s] - ay[s])[None, :] * (px[:, None] - ax[s][None, :]))
                    inner &= np.all((cross > tol) | (length == 0), axis=1)
                    outer &= (cross < -tol) & (length > 0)
                np.add.at(cell_base, ids[inner], self.deltas[s])
                ids = ids[~inner & ~outer.any(axis=1)]
            cells.append(ids)
            polys.append(np.full(ids.size, s, dtype=np.int64))
        cells_a, polys_a = np.concatenate(cells), np.concatenate(polys)
        order = np.argsort(cells_a, kind="stable")
        indptr = np.zeros(nx * ny + 1, dtype=np.int64)
        np.cumsum(np.bincount(cells_a, minlength=nx * ny), out=indptr[1:])
        self._grid = (indptr, polys_a[order], cell_base, lo, cell, (nx, ny))
        return self._grid


def _is_convex(poly: np.ndarray) -> bool:
    """True if the polygon's turns all go one way (collinear vertices allowed)."""
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool(np.all(cross >= 0) or np.all(cross <= 0))


def _mean_positive(ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Mean of max(u, 0) along a straight segment where u goes linearly from ua to ub."""
    p, n = np.maximum(ua, ub), np.minimum(ua, ub)
    both = n >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = p * p / (2.0 * (p - n))
    return np.where(both, 0.5 * (ua + ub), np.where(p > 0, mixed, 0.0))


def _accumulate_band(xt: np.ndarray, yt: np.ndarray, xb: np.ndarray, yb: np.ndarray, weights: np.ndarray,
                     r0: int, r1: int, W: int) -> np.ndarray:
    """Exact coverage sum of edges (top (xt,yt) to bottom (xb,yb), px) over rows r0..r1-1: (C, rows, W)."""
    rows, C = r1 - r0, weights.shape[1]
    acc = np.zeros((C, rows * W), dtype=np.float64)
    step = np.zeros((C, rows * W + 1), dtype=np.float64)
    if xt.size == 0:
        return acc.reshape(C, rows, W)
    ra = np.maximum(np.floor(yt).astype(np.int64), r0)
    rb = np.minimum(np.ceil(yb).astype(np.int64), r1)
    nrow = np.maximum(rb - ra, 0)
    e = np.repeat(np.arange(xt.size), nrow)
    r = ra[e] + (np.arange(e.size) - np.repeat(np.cumsum(nrow) - nrow, nrow))
    # the edge clipped to row r
    slope = (xb - xt) / (yb - yt)
    ya = np.maximum(yt[e], r)
    yb_ = np.minimum(yb[e], r + 1.0)
    dy = yb_ - ya
    good = dy > 0
    e, r, ya, yb_, dy = e[good], r[good], ya[good], yb_[good], dy[good]
    xa = xt[e] + (ya - yt[e]) * slope[e]
    xz = xt[e] + (yb_ - yt[e]) * slope[e]
    xlo, xhi = np.minimum(xa, xz), np.maximum(xa, xz)
    c_lo = np.floor(xlo).astype(np.int64)
    c_hi = np.maximum(c_lo, np.ceil(xhi).astype(np.int64) - 1)
    w = weights[e]  # (P, C)
    base = (r - r0) * W
    # full-pixel steps right of the edge: +dy from column c_hi+1 on (running sum below)
    cs = np.maximum(c_hi + 1, 0)
    ok = cs < W
    for k in range(C):
        step[k] += np.bincount(base[ok] + cs[ok], weights=(w[ok, k] * dy[ok]), minlength=rows * W + 1)
    # partial pixels the edge crosses
    a = np.maximum(c_lo, 0)
    b = np.minimum(c_hi, W - 1)
    n = np.maximum(b - a + 1, 0)
    p = np.repeat(np.arange(e.size), n)
    c = a[p] + (np.arange(p.size) - np.repeat(np.cumsum(n) - n, n))
    g = dy[p] * (_mean_positive(c + 1 - xa[p], c + 1 - xz[p]) - _mean_positive(c - xa[p], c - xz[p]))
    flat = base[p] + c
    for k in range(C):
        acc[k] += np.bincount(flat, weights=g * w[p, k], minlength=rows * W)
    # running sum of steps along each row (steps never cross a row: cs < W)
    steps = step[:, :-1].reshape(C, rows, W)
    return acc.reshape(C, rows, W) + np.cumsum(steps, axis=2)
