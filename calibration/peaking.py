"""Focus peaking: DESIGN 7's reference response and mask, the threshold calibration, and verification.

Reference (written from DESIGN 7's table): the peaking response is the 5-point Laplacian magnitude of the
8-bit preview luma, ``P = |4 Y'(x,y) - Y'(x-1,y) - Y'(x+1,y) - Y'(x,y-1) - Y'(x,y+1)|`` (0..1020); at the
frame's border a missing neighbour is the border pixel itself (edge replication), so a flat border
gives 0. A pixel is flagged where ``P >= T_peak``.

Calibration of ``T_peak`` (per sensor, lens, aperture, gain) from a motorized focus sweep of a binary
(two-level) chart and flat fields at the same gain. A sweep carries focus positions, not blur, so the
blur of every frame is measured from the frames themselves:

1. the sharpest frame (largest mean P^2) gives the chart's geometry: its two levels (Otsu, then the
   median of each class), the boundary at the mid-level between them (in linear light), and the
   *edge pixels*: the pixels with an 8-neighbour on the other side of the mid-level (the thresholded
   frame's 3x3 morphological gradient: the boundary dilated by 1 px), after a 3x3 median removes
   noise specks;
2. edge profiles: up to ``MAX_PROFILES`` light-side boundary pixels whose normal (gradient direction)
   crosses exactly one boundary within the profile's reach; each frame is sampled along them (linear
   light: the 8-bit luma decoded with the sRGB curve unless ``tone="linear"``);
3. per profile the line spread function (the ESF's derivative) and its variance about its own centroid
   (shift-invariant, so focus breathing does not matter), first over the whole profile, then over a
   window of 3 RMS widths + 2 px; a frame's LSF variance is the 10 %-trimmed mean over profiles.
   Variances of convolved kernels add, and a blur circle (pillbox) of diameter d has a line spread
   variance of d^2/16, so the defocus of a frame is ``d = 4 sqrt(var - var_0)``, var_0 the variance of
   everything else (lens base PSF, pixel aperture, demosaic, sampling);
4. var_0 and best focus: thin-lens defocus is linear in the focus displacement near focus, so the LSF
   variance is a parabola in the focus position, ``var = var_0 + a^2 (p - p_0)^2 / 16``, fitted to the
   frames within 3 CoC of the sharpest; var_0 at its vertex (never above the sharpest frame's
   variance), best focus ``p_0`` (the sharpest frame when the vertex falls outside the sweep);
5. in focus: ``d <= coc_px`` (DESIGN 7, default 2 preview pixels). Beyond twice the depth of field:
   the depth of field is the focus range where ``d <= coc``; with d linear in |p - p_0| a focus range
   twice as wide about best focus is where ``d <= 2 coc``, so frames with ``d > 2 coc`` are beyond it;
6. ``T_peak``: every threshold T = 1..1020 is scored at once from the histograms of P (cumulative
   counts): on every flat frame at most 0.1 % of pixels flag, on every in-focus frame at least 50 % of
   the edge pixels flag, on every frame beyond twice the depth of field at most 5 % of them flag. Each
   is monotone in T, so the feasible thresholds are one interval; the threshold chosen is its middle in
   log space (the geometric mean, rounded), the largest margin to both ends in ratio.

Steps 1-3 are ``calibration.peaking_edges``.

Errors: a sweep that never comes into focus, or no threshold meeting all three, raise
``PeakingCalibrationError`` saying which; no threshold is given then.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.peaking_edges import (
    _HIST_CHUNK,
    MIN_PROFILES,
    PeakingCalibrationError,
    chart_edges,
    lsf_variance,
)
from calibration.preview import preview_luma

#: Largest peaking response: |4*255 - 0|.
P_MAX = 1020
#: Limits (DESIGN 7): flat-field flag rate, in-focus edge coverage, edge coverage beyond twice the DoF.
MAX_FLAT_RATE = 0.001
MIN_IN_FOCUS_COVERAGE = 0.50
MAX_FAR_COVERAGE = 0.05
#: Acceptable circle of confusion, preview pixels (DESIGN 7 default).
DEFAULT_COC_PX = 2.0
#: Frames within this many CoC (relative blur) of the sharpest feed the focus parabola.
FIT_REACH_COC = 3.0
#: Rows of the peaking response worked out at once.
_RESPONSE_BAND_ROWS = 512


# --- reference response and mask -----------------------------------------------------------------

def peaking_response(luma: np.ndarray) -> np.ndarray:
    """P = |4 Y'(x,y) - Y'(x-1,y) - Y'(x+1,y) - Y'(x,y-1) - Y'(x,y+1)| (DESIGN 7), int16 (H, W), 0..1020.

    ``luma``: 8-bit preview luma (H, W), or the RGB preview (its luma is taken). Border: a missing
    neighbour is the border pixel itself (edge replication).
    """
    y = preview_luma(luma).astype(np.int16)
    p = 4 * y
    p[:, 1:] -= y[:, :-1]
    p[:, :1] -= y[:, :1]
    p[:, :-1] -= y[:, 1:]
    p[:, -1:] -= y[:, -1:]
    p[1:, :] -= y[:-1, :]
    p[:1, :] -= y[:1, :]
    p[:-1, :] -= y[1:, :]
    p[-1:, :] -= y[-1:, :]
    return np.abs(p, out=p)


def response_bands(luma: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(r0, r1, P)``: the peaking response of rows ``r0..r1``, a band of rows at a time (each band worked out
    with a row of context either side), equal to those rows of ``peaking_response(luma)`` (issue 13: the int16
    temporaries of a 50 MP frame stay a few MB)."""
    luma = preview_luma(luma)
    height = luma.shape[0]
    for r0 in range(0, height, _RESPONSE_BAND_ROWS):
        r1 = min(r0 + _RESPONSE_BAND_ROWS, height)
        a0, a1 = max(0, r0 - 1), min(height, r1 + 1)
        yield r0, r1, peaking_response(luma[a0:a1])[r0 - a0:r1 - a0]


def response_histogram(luma: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``histogram(peaking_response(luma)[where])`` (``where`` a bool (H, W) mask, None: all), band by band."""
    hist = np.zeros(P_MAX + 1, np.int64)
    for r0, r1, response in response_bands(luma):
        hist += histogram(response if where is None else response[where[r0:r1]])
    return hist


def response_counts(luma: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``_counts(peaking_response(luma), where)``, band by band: pixels with P >= T for every T = 0..P_MAX."""
    return np.cumsum(response_histogram(luma, where)[::-1])[::-1]


def peaking_mask(luma: np.ndarray, t: int) -> np.ndarray:
    """Peaking (DESIGN 7): bool (H, W), True where P >= ``t``."""
    return peaking_response(luma) >= int(t)


def _counts(response: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Pixels with P >= T for every T = 0..P_MAX (int64, P_MAX + 1 entries)."""
    values = response[where] if where is not None else response.ravel()
    return np.cumsum(histogram(values)[::-1])[::-1]


def histogram(values: np.ndarray) -> np.ndarray:
    """Pixels at each P = 0..P_MAX (int64), counted a million at a time (no whole-frame intp copy)."""
    flat = values.ravel()
    hist = np.zeros(P_MAX + 1, np.int64)
    for i in range(0, flat.size, _HIST_CHUNK):
        hist += np.bincount(flat[i:i + _HIST_CHUNK].astype(np.intp), minlength=P_MAX + 1)
    return hist


# --- verification ---------------------------------------------------------------------------------

def edge_coverage(mask: np.ndarray, edge_mask: np.ndarray) -> float:
    """Fraction of the edge pixels flagged in a peaking mask (any nonzero = flagged)."""
    edges = np.asarray(edge_mask, dtype=bool)
    n = int(edges.sum())
    if n == 0:
        raise ValueError("edge mask is empty")
    return float(np.count_nonzero(np.asarray(mask)[edges])) / n


def verify_peaking(mask: np.ndarray, edge_mask: np.ndarray, in_focus: bool) -> dict[str, Any]:
    """A phone's peaking mask on a chart frame against the chart's edge pixels and the true focus state.

    ``in_focus`` True: at least 50 % of the edge pixels must be flagged; False (a frame beyond twice the
    depth of field): at most 5 %.
    """
    coverage = edge_coverage(mask, edge_mask)
    if in_focus:
        return {"coverage": coverage, "state": "in_focus", "min_coverage": MIN_IN_FOCUS_COVERAGE,
                "pass": coverage >= MIN_IN_FOCUS_COVERAGE}
    return {"coverage": coverage, "state": "beyond_2dof", "max_coverage": MAX_FAR_COVERAGE,
            "pass": coverage <= MAX_FAR_COVERAGE}


def verify_peaking_flat(mask: np.ndarray) -> dict[str, Any]:
    """A phone's peaking mask on a flat field: at most 0.1 % of the pixels flagged."""
    m = np.asarray(mask)
    rate = float(np.count_nonzero(m)) / m.size
    return {"flag_rate": rate, "max_flag_rate": MAX_FLAT_RATE, "pass": rate <= MAX_FLAT_RATE}


@dataclass
class FocusFit:
    """LSF variance against focus: ``var = var0 + c2 (p - p0)^2``; ``valid`` when the vertex is in the sweep."""

    var0: float
    p0: float
    c2: float
    valid: bool


def fit_focus(focus: np.ndarray, variance: np.ndarray, coc_px: float) -> FocusFit:
    """The focus parabola of the module's step 4 (positions may be in any unit, any order)."""
    i_best = int(np.argmin(variance))
    v_min = float(variance[i_best])
    near = np.flatnonzero(variance - v_min <= (FIT_REACH_COC * coc_px) ** 2 / 16.0)
    if len(np.unique(focus[near])) < 3:
        near = np.argsort(np.abs(focus - focus[i_best]), kind="stable")[:3]
    if len(np.unique(focus[near])) < 3:
        return FocusFit(v_min, float(focus[i_best]), 0.0, False)
    centre, scale = float(focus[near].mean()), float(np.ptp(focus[near])) or 1.0
    u = (focus[near] - centre) / scale
    a, b, c = np.polyfit(u, variance[near], 2)
    if not a > 0:
        return FocusFit(v_min, float(focus[i_best]), 0.0, False)
    u0 = -b / (2.0 * a)
    p0 = centre + scale * u0
    var0 = float(min(max(c - b * b / (4.0 * a), 0.0), v_min))
    valid = bool(focus.min() <= p0 <= focus.max())
    return FocusFit(var0, float(p0) if valid else float(focus[i_best]), float(a / scale**2), valid)


# --- calibration -------------------------------------------------------------------------------------

@dataclass
class PeakingCalibration:
    """T_peak and what it was chosen from. Per-frame lists follow the order of the frames given."""

    threshold: int
    best_focus: float
    in_focus: tuple[float, float]  # focus positions of the first and last in-focus frame
    coc_px: float
    focus: list[float]
    blur_px: list[float]  # estimated defocus blur circle diameter
    in_focus_frames: list[bool]
    beyond_2dof_frames: list[bool]  # blur > 2 coc
    coverage: list[float]  # edge pixels flagged at the threshold
    flat_rate: float  # largest fraction of pixels flagged on a flat at the threshold
    feasible: tuple[int, int]  # the interval of thresholds meeting all three constraints
    edge_pixels: int
    lsf_variance_px2: list[float] = field(default_factory=list)
    base_variance_px2: float = 0.0
    edge_mask: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "best_focus": self.best_focus, "in_focus": list(self.in_focus),
            "coc_px": self.coc_px, "flat_rate": self.flat_rate, "feasible": list(self.feasible),
            "edge_pixels": self.edge_pixels, "base_variance_px2": self.base_variance_px2,
            "frames": [{"focus": f, "blur_px": b, "in_focus": i, "beyond_2dof": o, "coverage": c}
                       for f, b, i, o, c in zip(self.focus, self.blur_px, self.in_focus_frames,
                                                self.beyond_2dof_frames, self.coverage, strict=True)],
        }


def _first_at_most(values: np.ndarray, limit: float) -> int | None:
    """Smallest T with values[T] <= limit (values non-increasing in T), None if none."""
    hits = np.flatnonzero(values <= limit)
    return int(hits[0]) if len(hits) else None


def calibrate_peaking(frames: Sequence[tuple[float, np.ndarray]], flats: Sequence[np.ndarray],
                      coc_px: float = DEFAULT_COC_PX, chart_edges_mask: np.ndarray | None = None, *,
                      tone: str = "srgb") -> PeakingCalibration:
    """T_peak from a focus sweep ``[(focus_position, luma8), ...]`` of a binary chart and flat ``luma8``
    frames at the same gain (see the module docstring for the method and the constraints).

    ``chart_edges_mask``: the edge pixels when known (from the chart's geometry), else they come from
    the sharpest frame. ``tone``: how the preview encodes light (``srgb`` or ``linear``), used only to
    measure blur. Raises ``PeakingCalibrationError`` when the sweep never comes into focus or no
    threshold meets all three constraints.
    """
    if not coc_px > 0:
        raise ValueError(f"coc_px {coc_px!r}: expected a positive number of pixels")
    if len(frames) < 2:
        raise PeakingCalibrationError(f"a focus sweep needs two or more frames, got {len(frames)}")
    if not flats:
        raise PeakingCalibrationError("no flat-field frames: the threshold must be checked against noise")
    focus = np.array([float(p) for p, _ in frames])
    lumas = [preview_luma(img) for _, img in frames]
    shape = lumas[0].shape
    for p, img in zip(focus, lumas, strict=True):
        if img.shape != shape:
            raise PeakingCalibrationError(f"frame at focus {p:g} is {img.shape}, expected {shape}")
    sharpness = [float(np.mean(np.square(peaking_response(img), dtype=np.float64))) for img in lumas]
    best = int(np.argmax(sharpness))
    reach = max(8.0, 4.0 * coc_px)
    edges = chart_edges(lumas[best], tone=tone, reach_px=reach)
    if len(edges.points) < MIN_PROFILES:
        raise PeakingCalibrationError(f"only {len(edges.points)} clean edge profiles in the sharpest frame (focus "
                                      f"{focus[best]:g}); need {MIN_PROFILES} edges with one boundary within "
                                      f"{reach:g} px")
    edge_mask = edges.edge_mask if chart_edges_mask is None else np.asarray(chart_edges_mask, dtype=bool)
    if edge_mask.shape != shape or not edge_mask.any():
        raise PeakingCalibrationError(f"chart edge mask must be a non-empty {shape} mask")

    variance = np.array([lsf_variance(img, edges, tone=tone, reach_px=reach) for img in lumas])
    fit, blur, in_focus, far = focus_state(focus, variance, coc_px)
    n_edges = int(edge_mask.sum())
    coverage = np.array([_counts(peaking_response(img), edge_mask) / n_edges for img in lumas])  # (F, P_MAX+1)
    flat_rates = []
    for img in flats:
        flat = preview_luma(img)
        if flat.shape != shape:
            raise PeakingCalibrationError(f"flat frame is {flat.shape}, the sweep's frames {shape}")
        flat_rates.append(_counts(peaking_response(flat)) / flat.size)
    return choose_threshold(focus, variance, (fit, blur, in_focus, far), coverage, np.max(flat_rates, axis=0),
                            edge_mask, coc_px)


def focus_state(focus: np.ndarray, variance: np.ndarray,
                coc_px: float) -> tuple[FocusFit, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 4-5: the focus parabola, each frame's blur, which frames are in focus and which beyond 2 DoF."""
    fit = fit_focus(focus, variance, coc_px)
    blur = 4.0 * np.sqrt(np.maximum(variance - fit.var0, 0.0))
    in_focus = blur <= coc_px
    far = blur > 2.0 * coc_px
    if not in_focus.any():
        i = int(np.argmin(blur))
        raise PeakingCalibrationError(f"focus sweep never reaches focus: smallest blur {blur[i]:.2f} px > coc "
                                      f"{coc_px:g} px (at focus {focus[i]:g})")
    return fit, blur, in_focus, far


def choose_threshold(focus: np.ndarray, variance: np.ndarray,
                     state: tuple[FocusFit, np.ndarray, np.ndarray, np.ndarray], coverage: np.ndarray,
                     flat_rate: np.ndarray, edge_mask: np.ndarray, coc_px: float) -> PeakingCalibration:
    """Step 6: T_peak from the frames' edge coverage (F, P_MAX+1) and the flats' largest flag rate (P_MAX+1)."""
    fit, blur, in_focus, far = state
    t_flat = _first_at_most(flat_rate, MAX_FLAT_RATE)
    focus_ok = np.flatnonzero(coverage[in_focus].min(0) >= MIN_IN_FOCUS_COVERAGE)
    t_focus = int(focus_ok[-1]) if len(focus_ok) else None
    t_far = _first_at_most(coverage[far].max(0), MAX_FAR_COVERAGE) if far.any() else 1
    lo = max(1, t_flat if t_flat is not None else P_MAX + 1, t_far if t_far is not None else P_MAX + 1)
    if t_focus is None or t_focus < 1 or lo > t_focus:
        raise PeakingCalibrationError(_conflict(t_flat, t_focus, t_far, far.any()))
    threshold = int(min(max(round(math.sqrt(lo * t_focus)), lo), t_focus))

    positions = focus[in_focus]
    return PeakingCalibration(
        threshold=threshold, best_focus=float(fit.p0), in_focus=(float(positions.min()), float(positions.max())),
        coc_px=float(coc_px), focus=focus.tolist(), blur_px=[float(b) for b in blur],
        in_focus_frames=[bool(v) for v in in_focus], beyond_2dof_frames=[bool(v) for v in far],
        coverage=[float(c[threshold]) for c in coverage], flat_rate=float(flat_rate[threshold]),
        feasible=(lo, t_focus), edge_pixels=int(edge_mask.sum()), lsf_variance_px2=variance.tolist(),
        base_variance_px2=fit.var0, edge_mask=edge_mask)


def _conflict(t_flat: int | None, t_focus: int | None, t_far: int | None, has_far: bool) -> str:
    """Which constraints leave no threshold, in words."""
    focus_txt = ("in-focus frames reach 50 % edge coverage at no threshold" if t_focus is None or t_focus < 1
                 else f"in-focus frames need T <= {t_focus} for 50 % edge coverage")
    parts = []
    if t_flat is None:
        parts.append("flat-field noise flags more than 0.1 % of pixels at every threshold")
    elif t_focus is None or t_flat > t_focus:
        parts.append(f"flat-field noise needs T >= {t_flat} for at most 0.1 % flagged")
    if has_far:
        if t_far is None:
            parts.append("frames beyond twice the depth of field flag more than 5 % of edge pixels at every "
                         "threshold")
        elif t_focus is None or t_far > t_focus:
            parts.append(f"frames beyond twice the depth of field need T >= {t_far} for at most 5 % flagged")
    conflicts = " and ".join(parts) if parts else "the constraints leave no threshold"
    return f"no peaking threshold meets all constraints: {conflicts}, but {focus_txt}"
