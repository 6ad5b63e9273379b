"""The edge's per-row locations fitted by a polynomial ``x = p(y)``, ISO 12233:2023 / sfrmat5 (order up to 5).

ISO 12233:2023 (and P. D. Burns' sfrmat5, ``polyfit`` of order ``npol`` = 5) fits the edge with a polynomial so
that an edge bent by distortion projects onto one sharp ESF. A fixed 5th order also fits some of the rows'
noise; here the order is chosen per edge: every order 1..``max_order`` comes from one QR factorisation of
the (centred, scaled) Vandermonde matrix -- the fits are nested, so each order's residual sum is the highest
order's plus the squares of the projections beyond ``order + 1`` -- and the lowest order that no higher order beats
by an F-test at ``ALPHA`` (Draper & Smith, "Applied Regression Analysis", extra sum of squares) is kept
(the highest order is tried against the line first: a straight edge stops there),
unless it bends the line by less than ``MIN_SAGITTA_PX`` anywhere (then it changes nothing measurable and
the line stays: straight edges measure exactly as ISO 12233:2017's linear fit).
Rows more than 4 sigma off the fit are dropped (sigma from the mean absolute residual) and the fit redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import f as f_dist

try:  # the optional compiled kernel (setup.py): the same fit in one call; the numpy below is the reference
    from calibration import _sfrk as _kernel
except ImportError:  # pragma: no cover - a machine without a C compiler
    _kernel = None

#: F-test level for keeping a higher order.
ALPHA = 1e-3
#: A polynomial that leaves the line by less than this (px) anywhere over the rows is not needed.
MIN_SAGITTA_PX = 0.05
#: Residuals beyond this many sigmas (1.2533 x mean |residual|) drop a row.
OUTLIER_SIGMAS = 4.0
MIN_OUTLIER_LIMIT_PX = 0.05


class FitError(ValueError):
    """Too few rows with an edge location to fit."""


@dataclass(frozen=True)
class EdgeFit:
    """``x = p(t)`` with ``t = (y - centre) / scale``; ``coef_t`` lowest power first; ``slope_px`` is the linear
    fit's dx/dy (the edge angle); ``keep`` the rows used; ``bend_px`` the largest distance (px, over the rows
    used) between the polynomial and the linear fit: 0 for a line; ``rms_px`` the RMS residual of the rows kept when
    the fit computed it (the C kernel does), else None; ``values`` the fit at ``rows`` (the ``y`` it was fitted
    on) when computed with it."""

    coef_t: np.ndarray
    centre: float
    scale: float
    slope_px: float
    keep: np.ndarray
    bend_px: float = 0.0
    rms_px: float | None = None
    rows: np.ndarray | None = None
    values: np.ndarray | None = None

    @property
    def order(self) -> int:
        return self.coef_t.size - 1

    def __call__(self, y: np.ndarray) -> np.ndarray:
        t = (np.asarray(y, dtype=np.float64) - self.centre) * (1.0 / self.scale)
        coef = self.coef_t
        out = t * float(coef[-1])
        out += float(coef[-2])
        for c in coef[-3::-1]:  # Horner's rule, beyond the line
            out *= t
            out += float(c)
        return out

    def fitted(self, y: np.ndarray) -> np.ndarray:
        """The fit at ``y``: the values computed with the fit when ``y`` is the array it was fitted on."""
        if self.values is not None and y is self.rows:
            return self.values
        return self(y)

    def polyval_coef(self) -> np.ndarray:
        """The same polynomial in ``y`` (``np.polyval`` order, highest first): ``t = a y + b`` expanded."""
        return polyval_coef(self.coef_t, self.centre, self.scale)


def polyval_coef(coef_t: np.ndarray, centre: float, scale: float) -> np.ndarray:
    """``x = p(t)``, ``t = (y - centre) / scale`` (``coef_t`` lowest power first) as a polynomial in ``y``
    (``np.polyval`` order, highest first): ``t = a y + b`` expanded."""
    a, b = 1.0 / scale, -centre / scale
    order = len(coef_t) - 1
    if order == 1:  # the loop below, unrolled for the line
        c0, c1 = float(coef_t[0]), float(coef_t[1])
        return np.array([0.0 + c1 * a, c0 + c1 * b])
    out = [0.0] * (order + 1)  # lowest power of y first
    power = [1.0]  # coefficients of (a y + b)^k, lowest first
    for c in coef_t:
        for i, pc in enumerate(power):
            out[i] += float(c) * pc
        power = [b * (power[i] if i < len(power) else 0.0) + a * (power[i - 1] if i else 0.0)
                 for i in range(len(power) + 1)]
    return np.array(out[::-1])


@lru_cache(maxsize=256)
def _f_crit(dof_num: int, dof_den: int) -> float:
    return float(f_dist.isf(ALPHA, dof_num, dof_den))


@lru_cache(maxsize=64)
def f_table(cols: int) -> np.ndarray:
    """``_f_crit(dnum, dden)`` for dnum 0..4 (row) and dden 0..cols-1 (column), as the C kernel reads it."""
    dnum = np.maximum(np.arange(5), 1)[:, None]
    dden = np.maximum(np.arange(cols), 1)[None, :]
    return np.ascontiguousarray(f_dist.isf(ALPHA, dnum, dden), dtype=np.float64)


def _choose_order(rss: np.ndarray, n: int, max_order: int) -> int:
    """Lowest order k no higher order j beats: F = ((rss_k - rss_j) / (j - k)) / (rss_j / (n - j - 1))."""
    for k in range(1, max_order + 1):
        better = False
        for j in range(k + 1, max_order + 1):
            dof = n - j - 1
            if dof < 1 or rss[j] <= 0.0:
                continue
            if (rss[k] - rss[j]) / (j - k) > _f_crit(j - k, dof) * rss[j] / dof:
                better = True
                break
        if not better:
            return k
    return max_order


def _line(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The least-squares line in closed form (no LAPACK call), lowest power first."""
    inv_n = 1.0 / t.size
    tm, xm = float(t.sum()) * inv_n, float(x.sum()) * inv_n
    dt = t - tm
    slope_t = float(dt @ (x - xm)) / float(dt @ dt)
    return np.array([xm - slope_t * tm, slope_t])


def _fit_kept(t: np.ndarray, x: np.ndarray, max_order: int, select: bool) -> tuple[np.ndarray, float, float]:
    """Coefficients (lowest power first) of the chosen order on ``t``, the linear fit's slope in t, and the
    bend (px): the largest distance over ``t`` between the chosen polynomial and the line.

    Every order comes from one QR factorisation. With ``select`` the highest order is tried against the line
    first: when it is no significant improvement -- a straight edge, the common case -- the line is the answer;
    otherwise the order test picks one."""
    order = min(max_order, t.size - 2)
    line = _line(t, x)
    if order <= 1:
        return line, float(line[1]), 0.0
    vander = np.vander(t, order + 1, increasing=True)
    q, r = np.linalg.qr(vander)
    z = q.T @ x
    res_full = x - q @ z
    rss_full = float(res_full @ res_full)
    k = order
    if select:
        res_line = x - (line[0] + line[1] * t)
        rss_line = float(res_line @ res_line)
        dof = t.size - order - 1
        if rss_full <= 0.0 or (rss_line - rss_full) / (order - 1) <= _f_crit(order - 1, dof) * rss_full / dof:
            return line, float(line[1]), 0.0
        # each order's residual sum: the full fit's plus the projections it leaves out (not x.x less the
        # projections it keeps, which cancels to rounding noise on a near-perfect fit)
        beyond = np.cumsum((z * z)[::-1])[::-1]
        rss = rss_full + np.append(beyond[1:], 0.0)
        k = _choose_order(rss, t.size, order)
    bend = float(np.abs(q[:, 2:k + 1] @ z[2:k + 1]).max()) if k > 1 else 0.0  # nested: poly - line
    if select and k > 1 and bend < MIN_SAGITTA_PX:
        k, bend = 1, 0.0  # the bend is below anything measurable: the line it is
    return np.linalg.solve(r[:k + 1, :k + 1], z[:k + 1]), float(z[1] / r[1, 1]), bend


def fit_edge(y: np.ndarray, x: np.ndarray, max_order: int = 1, *, select: bool = True,
             rounds: int = 3, kernel: bool = True) -> EdgeFit:
    """Robust ``x = p(y)`` of order up to ``max_order`` (chosen per edge when ``select``, else exactly
    ``max_order``); non-finite ``x`` rows are skipped. FitError when too few rows are left. ``y`` and ``x``
    are 1-D float64; ``kernel=False`` runs the numpy reference even where ``calibration._sfrk`` is built."""
    if kernel and _kernel is not None and 1 <= max_order <= 5:
        return _fit_edge_kernel(y, x, max_order, select, rounds)
    finite = np.isfinite(x)
    keep = finite
    centre = 0.5 * (float(y[0]) + float(y[-1]))
    scale = max(0.5 * abs(float(y[-1]) - float(y[0])), 1.0)
    t_all = (y - centre) / scale
    coef = np.zeros(2)
    slope_t = bend = 0.0
    for _ in range(rounds):
        if np.count_nonzero(keep) < max_order + 2:
            raise FitError("no edge: too few rows with an edge location")
        coef, slope_t, bend = _fit_kept(t_all[keep], x[keep], max_order, select)
        fit = EdgeFit(coef, centre, scale, slope_t / scale, keep)
        res = np.abs(x - fit(y))
        kept_res = res[keep]
        limit = max(OUTLIER_SIGMAS * 1.2533 * float(kept_res.sum()) / kept_res.size, MIN_OUTLIER_LIMIT_PX)
        new_keep = finite & (res <= limit)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return EdgeFit(coef, centre, scale, slope_t / scale, keep, bend)


def _fit_edge_kernel(y: np.ndarray, x: np.ndarray, max_order: int, select: bool, rounds: int) -> EdgeFit:
    """``fit_edge`` in one C call (``calibration._sfrk.fit``: the same steps, a Gram-Schmidt QR)."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = y.size
    coef = np.empty(6)
    keep = np.empty(n, dtype=np.bool_)
    values = np.empty(n)
    table = f_table(max(n, 2))
    got = _kernel.fit(y, x, n, max_order, bool(select), rounds, table, table.shape[1], coef, keep.view(np.uint8),
                      values)
    if got is None:
        raise FitError("no edge: too few rows with an edge location")
    order, centre, scale, slope_t, bend, rms = got
    return EdgeFit(coef[:order + 1], centre, scale, slope_t / scale, keep, bend, rms, y, values)
