"""Slanted-edge SFR (MTF) after ISO 12233:2017/2023 e-SFR, as in Peter D. Burns' sfrmat3/4/5.

References: ISO 12233:2017 and ISO 12233:2023 (ed. 4), edge-based SFR (e-SFR); P. D. Burns,
"Slanted-edge MTF for digital camera and scanner analysis", Proc. IS&T PICS 2000, 135-138; sfrmat3
(2015) and sfrmat5 (2023) by P. D. Burns (``sfrmat5.m``, ``project2.m``, ``fir2fix.m``, ``tukey2.m``).

The steps:

1. orientation: a horizontal edge is transposed so the edge runs down the rows; the polarity is
   made dark-to-light (the data negated, which changes nothing in the modulus of the MTF);
2. per-row edge location: centroid of the row derivative ``[-0.5, 0.5]`` under a window (Tukey or
   Hamming) centred on the current edge estimate, two passes as sfrmat; the first estimate is the
   row's area (the step position with the same integral), unbiased and far less noise-sensitive
   than sfrmat's ROI-centred first window on a noisy or off-centre edge;
3. polynomial fit ``x = p(y)`` of the locations, rows more than 4 sigma off dropped (1st order as
   ISO 12233:2017, up to 5th as sfrmat4/5); the angle from the linear fit;
4. the rows kept are an integer number of phase cycles (``round(floor(H |slope|) / |slope|)``) as
   ISO 12233 asks, so every sub-pixel phase is sampled equally;
5. projection of every pixel along the fitted edge into bins of 1/``oversample`` pixel (4x
   super-sampled ESF) with ``np.bincount``; empty bins are filled by linear interpolation between
   their neighbours (sfrmat ``project2``), bins outside the data take the nearest level. With
   ``bin_phase`` each bin's mean is moved from its samples' mean distance to the bin centre along the
   local ESF slope (first order): the rows' sub-pixel phases fill the bins unevenly, a jitter of up to
   half a phase step that a sharp, sparsely sampled edge (a CFA plane) turns into MTF errors of several %;
6. derivative of the ESF with the FIR ``[-0.5, 0.5]`` (the LSF), windowed about the edge: Tukey
   (alpha 0.5, flat centre) by default, Hamming as ISO 12233:2017 on request. ``lsf_span="full"``
   spans the whole ROI as ISO and sfrmat do; the default ``"auto"`` narrows it to where the LSF
   has signal -- three 10-90% rises, or twice the reach of any tail (flare, glare) that stands out
   of the noise, whichever is wider -- which keeps the noise of far, flat ESF out of the MTF
   (at SNR 100 the MTF50 scatter halves) and changes nothing where the ROI holds real tails;
7. modulus of the DFT normalised at zero frequency, divided by the derivative filter's frequency
   response (sfrmat ``fir2fix`` "dcorr": the 2-point difference is a box of one bin, response
   ``sinc(k/N)``) and -- unlike sfrmat, optional -- by the response of the binning itself (each bin
   averages samples spread uniformly over 1/``oversample`` px: a second ``sinc(k/N)``). Without
   this second correction MTF50 reads 0.5% low on a sharp (sigma 0.6 px) edge;
8. frequencies in cycles per pixel measured normal to the edge (the bin pitch is
   ``cos(angle) / oversample``, as sfrmat's ``delfac``); reported 0..1 c/px (Nyquist is 0.5);
   MTF50 on the cubic through the 4 samples around the crossing; MTF at Nyquist/2 (0.25 c/px).

Measured on analytic edges (Gaussian PSF sigma 0.6..2 px integrated over square pixels, 2..12 deg,
128 x 128): MTF50 within 0.01% without noise; with noise at SNR 100 a mean |error| of 0.3%.

For CFA data see ``calibration.sfr_cfa`` (a colour plane at half resolution, or the luminance).

Speed: where the optional C extension ``calibration._sfrk`` is built (setup.py; sources in ``calibration/_sfrk_c``)
the default options run in one C call per edge (``sfr_steps.measure_kernel``: the ROI's orientation, levels and
noise, the edge location and fit, the checks, the ESF and windowed LSF, and for a power-of-two LSF length its rfft
and the MTF, the GIL released); an edge it refuses goes through the step-by-step path, which names the reason, and
so do the other options (the same steps, one kernel each). About 12x fewer CPU seconds per edge than the numpy
below (``station bench sfr``), which stays the reference (``sfr(..., kernel=False)``) and the fallback without a
compiler; tests/unit/test_sfr_kernel.py holds the two to 1e-9 on varied edges.

Shading across the ROI (vignetting, an uneven light) tilts the ESF plateaus and biases the MTF (up to
1.25 % at the field edge of the twin's f/0.95 lens): divide by a flat field first (ISO 12233 practice), or pass
``plateau_slope=True``: one multiplicative shading plane is fitted to both plateaus and divided out
(on the twin as good as a flat when noise-free; it adds a little noise, so it is off by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from calibration import sfr_steps
from calibration.sfr_fit import EdgeFit, FitError, f_table, fit_edge, polyval_coef
from calibration.sfr_quality import edge_quality
from calibration.sfr_steps import LSF_TAIL_FRACTION, MAX_CORRECTION, TAIL_SMOOTH_PX, SfrError

__all__ = [
    "SfrError", "SfrResult", "sfr", "mtf_at", "mtf_crossing", "MAX_CORRECTION", "LSF_TAIL_FRACTION", "TAIL_SMOOTH_PX",
]

#: Frequencies reported, cycles/pixel (normal to the edge).
MAX_FREQ_CY_PX = 1.0
NYQUIST_CY_PX = 0.5
#: A per-row edge location scattering by more than this (RMS, px) around the fit is not one straight edge.
MAX_FIT_RMS_PX = 1.0
#: Edge contrast must exceed this many times the pixel noise.
MIN_CONTRAST_TO_NOISE = 5.0
MIN_ROI_PX = 8
#: Windowed-centroid passes after the area estimate (sfrmat: two, the second window on the first fit).
CENTROID_PASSES = 2
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)
#: ``lsf_span="auto"``: the LSF window's half-width is the largest of ``LSF_SPAN_RISES`` 10-90% rise
#: distances, ``LSF_MIN_HALF_WIDTH_PX``, and twice the distance out to which the ESF (``TAIL_SMOOTH_PX``
#: moving average) still differs from its plateau by more than ``LSF_TAIL_FRACTION`` of the contrast
#: and 5 sigma of its noise (``calibration.sfr_steps``): flare and glare tails stay in, flat noise stays out.
LSF_SPAN_RISES = 3.0
LSF_MIN_HALF_WIDTH_PX = 6.0


@dataclass(frozen=True)
class SfrResult:
    """One edge's e-SFR.

    ``angle_deg`` is the edge's tilt off the nearest pixel axis (vertical for ``orientation ==
    "vertical"``, horizontal otherwise), positive when it is turned clockwise as displayed (rows going
    down). ``edge_fit`` holds the coefficients of ``x = p(y)`` (``np.polyval`` order, highest first) in
    the ROI's own pixel coordinates (pixel centres at integers), where for a horizontal edge x and y
    are swapped (the ROI transposed). ``esf`` is the super-sampled edge profile (bin pitch
    ``esf_pitch_px`` normal to the edge, dark-to-light), ``lsf`` its windowed derivative.
    """

    mtf50_cy_px: float
    mtf_nyq2: float
    angle_deg: float
    freq_cy_px: np.ndarray
    mtf: np.ndarray
    esf: np.ndarray
    lsf: np.ndarray
    edge_fit: np.ndarray
    roi: tuple[int, int, int, int] | None = None
    orientation: str = "vertical"
    esf_pitch_px: float = 0.25
    fit_rms_px: float = 0.0
    contrast: float = 0.0
    empty_bins: int = 0
    extra: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)

    @property
    def flags(self) -> tuple[str, ...]:
        """Names of the ISO 12233 edge checks this edge fails (``calibration.sfr_quality``)."""
        return tuple(self.quality.get("flags", ()))

    def mtf_at(self, freq_cy_px: float) -> float:
        """MTF at ``freq_cy_px`` (linear interpolation; nan beyond the reported range)."""
        return mtf_at(self.freq_cy_px, self.mtf, freq_cy_px)


def mtf_crossing(freq: np.ndarray, mtf: np.ndarray, level: float = 0.5, *, kernel: bool = True) -> float:
    """First frequency where ``mtf`` falls below ``level``, on the cubic through the two samples either
    side (uniform ``freq``; linear at the ends of the array); nan if it never does. ``kernel=False``: the
    Python reference even where ``calibration._sfrk`` (the same steps in C) is built."""
    if kernel and sfr_steps._kernel is not None:
        f = np.ascontiguousarray(freq, dtype=np.float64)
        m = np.ascontiguousarray(mtf, dtype=np.float64)
        if f.ndim == 1 and f.shape == m.shape and f.size > 0:
            return sfr_steps._kernel.crossing(f, m, f.size, float(level))
    below = np.nonzero(mtf < level)[0]
    below = below[below > 0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    f0, f1 = float(freq[i - 1]), float(freq[i])
    m0, m1 = float(mtf[i - 1]), float(mtf[i])
    t = (m0 - level) / (m0 - m1)  # linear estimate, 0..1 between the samples
    if i >= 2 and i + 1 < mtf.size:
        # Lagrange cubic through nodes -1, 0, 1, 2 (samples i-2 .. i+1); Newton from the linear root.
        p = (float(mtf[i - 2]) - level, m0 - level, m1 - level, float(mtf[i + 1]) - level)
        for _ in range(8):
            b = (-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
                 -(t + 1) * t * (t - 2) / 2, (t + 1) * t * (t - 1) / 6)
            db = (-(3 * t * t - 6 * t + 2) / 6, (3 * t * t - 4 * t - 1) / 2,
                  -(3 * t * t - 2 * t - 2) / 2, (3 * t * t - 1) / 6)
            val = sum(pk * bk for pk, bk in zip(p, b, strict=True))
            der = sum(pk * dk for pk, dk in zip(p, db, strict=True))
            if der == 0:
                break
            step = val / der
            t -= step
            if abs(step) < 1e-12:
                break
        if not 0.0 <= t <= 1.0:
            t = (m0 - level) / (m0 - m1)
    return f0 + t * (f1 - f0)


def mtf_at(freq: np.ndarray, mtf: np.ndarray, freq_cy_px: float) -> float:
    """MTF at one frequency by linear interpolation; nan outside ``freq``'s range."""
    if freq_cy_px < freq[0] or freq_cy_px > freq[-1]:
        return float("nan")
    # np.interp's own steps for one point (its array machinery costs more than the arithmetic)
    j = int(np.searchsorted(freq, freq_cy_px, side="right")) - 1
    if j >= len(freq) - 1:
        return float(mtf[-1])
    x0, x1, y0, y1 = float(freq[j]), float(freq[j + 1]), float(mtf[j]), float(mtf[j + 1])
    return (y1 - y0) / (x1 - x0) * (freq_cy_px - x0) + y0


def sfr(roi: np.ndarray, *, oversample: int = 4, window: str = "tukey", tukey_alpha: float = 0.5,
        fit_order: int | str = "auto", correct_binning: bool = True, integer_cycles: bool = True,
        lsf_span: str = "auto", plateau_slope: bool = False, bin_phase: bool = False,
        roi_xywh: tuple[int, int, int, int] | None = None, clip_level: float | None = None,
        kernel: bool = True) -> SfrResult:
    """e-SFR of one slanted edge in ``roi`` ((H, W) linear-light values), ISO 12233:2017/2023.

    ``window`` ("tukey" with ``tukey_alpha``, "hamming" or "none") applies both to the per-row centroid
    and the LSF; ``lsf_span`` "auto" (default) or "full" (the whole ROI, as ISO and sfrmat). ``fit_order``
    is the edge polynomial's order: "auto" (default, ISO 12233:2023) chooses up to 5 per edge
    (``calibration.sfr_fit``), an integer fixes it (1: the linear fit of ISO 12233:2017, 5: sfrmat5's).
    ``correct_binning`` also divides by the 1/``oversample`` px bin's own response; ``integer_cycles`` keeps
    ISO's whole number of phase cycles of rows. ``plateau_slope`` divides out a shading plane fitted to both plateaus;
    ``bin_phase`` moves each ESF bin to its centre from where its samples lie (module notes, step 5).
    ``roi_xywh`` is only carried into the result; ``clip_level`` (the data's white, when known) lets the
    quality checks (``SfrResult.quality``, ISO 12233) count clipped pixels. ``kernel=False`` runs the numpy
    reference path even where the C kernels (``calibration._sfrk``) are built (tests, ``station bench sfr``).
    Raises ``SfrError`` (a ``ValueError``) with a one-line reason when the ROI cannot be measured.
    """
    a = np.asarray(roi, dtype=np.float64)
    select, max_order = _check_options(a, fit_order, oversample, window)
    use_kernel = kernel and sfr_steps._kernel is not None
    clipped = None if clip_level is None else float(np.count_nonzero(a >= clip_level)) / a.size
    if use_kernel and not plateau_slope and not bin_phase and lsf_span in ("auto", "full"):
        # the common options in two C calls; an edge refused there goes through the steps below, which say why
        opts = sfr_steps.measure_options(max_order, select, window, tukey_alpha, CENTROID_PASSES, oversample,
                                         lsf_span == "auto", LSF_SPAN_RISES, LSF_MIN_HALF_WIDTH_PX, integer_cycles,
                                         MIN_ROI_PX, MIN_CONTRAST_TO_NOISE, MAX_FIT_RMS_PX,
                                         MAX_FREQ_CY_PX + 1e-12, NYQUIST_CY_PX / 2.0)
        got = sfr_steps.measure_kernel(a, opts, oversample, f_table(max(max(a.shape), 2)), correct_binning)
        if got is not None:
            (transposed, negated, left, right, noise, _, order, coef_t, centre, scale_t, slope_t, bend, rms, rise_px,
             nkeep, inner_empty, half, esf, lsf, mtf) = got
            slope = slope_t / scale_t
            return _result(esf, lsf, slope, transposed, negated, left, right, right - left, noise, rise_px, half,
                           nkeep, inner_empty, polyval_coef(coef_t, centre, scale_t), order, rms, bend, oversample,
                           correct_binning, roi_xywh, clipped, True, mtf)
    prep = sfr_steps._prep_kernel if use_kernel else sfr_steps._prep_numpy
    a, transposed, negated, left, right, noise, scale, row_sums = prep(a)
    nlin, npix = a.shape
    contrast = right - left
    if contrast <= max(MIN_CONTRAST_TO_NOISE * noise, 1e-9 * scale) or scale == 0.0:
        raise SfrError(f"no edge in the ROI: contrast {contrast:.4g} against noise {noise:.3g} "
                       f"(needs >= {MIN_CONTRAST_TO_NOISE:g}x)")
    if use_kernel and not plateau_slope:
        fit, edge_x, rise_px = _locate_edge_kernel(a, row_sums, left, contrast, max_order, select, window,
                                                   tukey_alpha)
    else:
        # First estimate: the row's area (a step at x0 over [-0.5, W-0.5] integrates to W - 0.5 - x0).
        loc = (npix - 0.5) - (row_sums - npix * left) / contrast
        a, contrast, fit, edge_x, rise_px = _locate_edge(a, loc, contrast, max_order, select, window, tukey_alpha,
                                                         plateau_slope, use_kernel)
    _check_edge(fit, edge_x, npix)
    slope = fit.slope_px
    angle = math.degrees(math.atan(slope))
    if abs(angle) >= 45.0:
        raise SfrError(f"edge angle {abs(angle):.1f} deg is 45 deg or more off the pixel axis")
    cycles = math.floor(nlin * abs(slope))
    if cycles < 1:
        need = math.degrees(math.atan(1.0 / nlin))
        raise SfrError(f"edge angle {abs(angle):.2f} deg is too close to the pixel axis: the edge must shift "
                       f"by at least 1 px over the ROI (>= {need:.2f} deg for {nlin} rows)")

    # Keep an integer number of phase cycles (ISO 12233), the rows centred in the ROI.
    nkeep = min(nlin, max(MIN_ROI_PX, int(round(cycles / abs(slope))))) if integer_cycles else nlin
    r0 = (nlin - nkeep) // 2
    esf, lsf, inner_empty, half = _esf_lsf(a, edge_x, r0, nkeep, oversample, noise, contrast, rise_px, angle,
                                           lsf_span, window, tukey_alpha, bin_phase, use_kernel)
    return _result(esf, lsf, slope, transposed, negated, left, right, contrast, noise, rise_px, half, nkeep,
                   inner_empty, fit.polyval_coef(), fit.order, fit.rms_px, fit.bend_px, oversample, correct_binning,
                   roi_xywh, clipped, use_kernel)


def _result(esf: np.ndarray, lsf: np.ndarray, slope: float, transposed: bool, negated: bool, left: float,
            right: float, contrast: float, noise: float, rise_px: float, half: float, nkeep: int, inner_empty: int,
            edge_fit: np.ndarray, order: int, rms_px: float, bend_px: float, oversample: int,
            correct_binning: bool, roi_xywh: tuple[int, int, int, int] | None, clipped: float | None,
            use_kernel: bool, mtf_done: tuple | None = None) -> SfrResult:
    """Steps 7-8 and the result, from the LSF and the edge's figures (both paths of ``sfr``); ``mtf_done``: steps
    7-8 as ``sfr_steps.measure_kernel`` computed them, when it did."""
    angle = math.degrees(math.atan(slope))
    cos_angle = math.cos(math.atan(slope))
    pitch = cos_angle / oversample
    if mtf_done is not None:
        freq, mtf, mtf50, mtf_nyq2, _ = mtf_done
    elif use_kernel:
        got = sfr_steps.mtf_kernel(lsf, correct_binning, pitch, MAX_FREQ_CY_PX + 1e-12, NYQUIST_CY_PX / 2.0)
        if got is None:
            raise SfrError("no edge: the line spread function integrates to zero")
        freq, mtf, mtf50, mtf_nyq2, nreport = got
        freq, mtf = freq[:nreport], mtf[:nreport]  # the frequencies rise: those reported are a prefix
    else:
        freq, mtf = _mtf(lsf, correct_binning, pitch)
        mtf50, mtf_nyq2 = mtf_crossing(freq, mtf, 0.5, kernel=False), mtf_at(freq, mtf, NYQUIST_CY_PX / 2.0)
        report = freq <= MAX_FREQ_CY_PX + 1e-12
        freq, mtf = freq[report], mtf[report]
    levels = (-right, -left) if negated else (left, right)
    return SfrResult(
        mtf50_cy_px=mtf50, mtf_nyq2=mtf_nyq2, angle_deg=angle if transposed else -angle,  # clockwise as displayed
        freq_cy_px=freq, mtf=mtf, esf=esf, lsf=lsf, edge_fit=edge_fit,
        roi=tuple(int(v) for v in roi_xywh) if roi_xywh is not None else None,
        orientation="horizontal" if transposed else "vertical",
        esf_pitch_px=pitch, fit_rms_px=rms_px, contrast=contrast, empty_bins=inner_empty,
        extra={"rise_10_90_px": rise_px * cos_angle, "lsf_half_width_px": half / oversample * cos_angle,
               "noise": noise, "rows_used": nkeep, "fit_order": order},
        quality=edge_quality(*levels, noise, angle, nkeep, clipped, rms_px, bend_px),
    )


def _check_options(a: np.ndarray, fit_order: int | str, oversample: int, window: str) -> tuple[bool, int]:
    """SfrError (ValueError for ``window``) on a bad ROI shape or option; ``(select, max_order)`` of the fit."""
    if a.ndim != 2:
        raise SfrError(f"ROI must be a 2-D (H, W) array, got shape {a.shape}")
    if min(a.shape) < MIN_ROI_PX:
        raise SfrError(f"ROI {a.shape[1]}x{a.shape[0]} px is too small (at least {MIN_ROI_PX}x{MIN_ROI_PX})")
    select = fit_order == "auto"
    max_order = 5 if select else fit_order
    if not (isinstance(max_order, int) and 1 <= max_order <= 5):
        raise SfrError(f"fit_order must be 'auto' or 1..5, got {fit_order!r}")
    if oversample < 1:
        raise SfrError(f"oversample must be >= 1, got {oversample}")
    if window not in sfr_steps._WINDOW_KIND:
        raise ValueError(f"window must be 'hamming', 'tukey' or 'none', got {window!r}")
    return select, max_order


def _locate_edge(a: np.ndarray, loc: np.ndarray, contrast: float, max_order: int, select: bool, window: str,
                 alpha: float, plateau_slope: bool, use_kernel: bool):
    """Steps 2-3: the edge's fit from the rows' first locations ``loc`` through ``CENTROID_PASSES`` windowed
    centroid passes; returns ``a`` (divided by its shading plane with ``plateau_slope``), the contrast, the
    fit (its ``rms_px`` set), the edge's x in every row and the coarse 10-90% rise (px)."""
    nlin, npix = a.shape
    rows = np.arange(nlin, dtype=np.float64)
    k = max(1, npix // 8)
    try:
        edge_x = fit_edge(rows, loc, 1, kernel=use_kernel).fitted(rows)
        rise_px = sfr_steps._rise_10_90_px(a, edge_x, use_kernel)
        if plateau_slope:
            shading = sfr_steps._plateau_shading(a, edge_x, max(3.0 * rise_px, 4.0))
            if shading is not None:
                a = a / shading
                contrast = sfr_steps._median(a[:, -k:].mean(axis=1)) - sfr_steps._median(a[:, :k].mean(axis=1))
        half_width = min(max(3.0 * rise_px + 4.0, 6.0), npix / 2.0)
        for _ in range(CENTROID_PASSES):
            loc = sfr_steps._row_centroids(a, edge_x, half_width, window, alpha, use_kernel)
            fit = fit_edge(rows, loc, max_order, select=select, kernel=use_kernel)
            edge_x = fit.fitted(rows)
    except FitError as exc:
        raise SfrError(str(exc)) from None
    if fit.rms_px is None:
        resid = loc[fit.keep] - edge_x[fit.keep]
        fit = replace(fit, rms_px=float(np.sqrt(np.mean(resid ** 2))))
    return a, contrast, fit, edge_x, rise_px


def _locate_edge_kernel(a: np.ndarray, row_sums: np.ndarray, left: float, contrast: float, max_order: int,
                        select: bool, window: str, alpha: float) -> tuple[EdgeFit, np.ndarray, float]:
    """``_locate_edge`` (without the plateau shading) in one C call, ``calibration._sfrk.locate``: the fit, the
    edge's x in every row and the coarse rise."""
    nlin, npix = a.shape
    rows = np.arange(nlin, dtype=np.float64)
    coef = np.empty(6)
    keep = np.empty(nlin, dtype=np.bool_)
    edge_x = np.empty(nlin)
    table = f_table(max(nlin, 2))
    got = sfr_steps._kernel.locate(a, nlin, npix, row_sums, left, contrast, max_order, select,
                                   sfr_steps._WINDOW_KIND[window], alpha, CENTROID_PASSES, table, table.shape[1],
                                   coef, keep.view(np.uint8), edge_x)
    if got is None:
        raise SfrError("no edge: too few rows with an edge location")
    order, centre, scale, slope_t, bend, rms, _, rise_px = got
    return EdgeFit(coef[:order + 1], centre, scale, slope_t / scale, keep, bend, rms, rows, edge_x), edge_x, rise_px


def _check_edge(fit: EdgeFit, edge_x: np.ndarray, npix: int) -> None:
    """SfrError unless the rows make one straight edge (``MAX_FIT_RMS_PX``, half the rows) inside the ROI."""
    nlin = edge_x.size
    nkept = int(np.count_nonzero(fit.keep))
    if fit.rms_px > MAX_FIT_RMS_PX or nkept < 0.5 * nlin:
        raise SfrError(f"no straight edge: row edge locations scatter {fit.rms_px:.2f} px RMS around the fit "
                       f"({nkept} of {nlin} rows usable)")
    x_first, x_last = float(edge_x[0]), float(edge_x[-1])
    if min(x_first, x_last) < 0.0 or max(x_first, x_last) > npix - 1.0:
        raise SfrError(f"the edge leaves the ROI (x = {x_first:.1f} .. {x_last:.1f} of 0 .. {npix - 1})")


def _check_empty_bins(inner_empty: int, nbin: int, angle: float) -> None:
    """SfrError when more than an eighth of the ESF's bins inside its span are empty (or none is filled)."""
    if inner_empty < 0 or inner_empty > nbin // 8:
        empty = inner_empty if inner_empty >= 0 else nbin
        raise SfrError(f"{empty} empty ESF bins: edge angle {abs(angle):.1f} deg or the ROI too short")


def _esf_lsf(a: np.ndarray, edge_x: np.ndarray, r0: int, nkeep: int, oversample: int, noise: float,
             contrast: float, rise_px: float, angle: float, lsf_span: str, window: str, alpha: float, bin_phase: bool,
             use_kernel: bool) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Steps 5-6: the ESF of rows ``r0 .. r0 + nkeep``, its windowed LSF, the empty bins inside the ESF and the
    window's half-width (bins); one C call (``calibration._sfrk.esf_lsf``) for the common options."""
    nlin, npix = a.shape
    nbin = oversample * npix
    if use_kernel and not bin_phase and lsf_span in ("auto", "full"):
        esf, lsf = np.empty(nbin), np.empty(nbin)
        inner_empty, half = sfr_steps._kernel.esf_lsf(
            a, nlin, npix, edge_x, r0, nkeep, oversample, nbin, noise, contrast, rise_px, lsf_span == "auto",
            LSF_SPAN_RISES, LSF_MIN_HALF_WIDTH_PX, LSF_TAIL_FRACTION, TAIL_SMOOTH_PX,
            sfr_steps._WINDOW_KIND[window], alpha, np.empty(nbin, dtype=np.int64), esf, lsf)
        _check_empty_bins(inner_empty, nbin, angle)
        return esf, lsf, inner_empty, half
    counts, sums, phase_sums = sfr_steps._project_rows(a, edge_x, r0, 1, nkeep, oversample, nbin, bin_phase, use_kernel)
    if use_kernel and phase_sums is None:
        esf = np.empty(nbin)
        inner_empty = sfr_steps._kernel.esf(counts, sums, nbin, esf)
    else:
        esf, inner_empty = sfr_steps._esf_numpy(counts, sums, phase_sums)
    _check_empty_bins(inner_empty, nbin, angle)
    lsf, half = _windowed_lsf(esf, counts, oversample, noise, contrast, rise_px, lsf_span, window, alpha, use_kernel)
    return esf, lsf, inner_empty, half


def _windowed_lsf(esf: np.ndarray, counts: np.ndarray, oversample: int, noise: float, contrast: float,
                  rise_px: float, lsf_span: str, window: str, alpha: float,
                  use_kernel: bool) -> tuple[np.ndarray, float]:
    """Step 6: the ESF's derivative ``[-0.5, 0.5]`` under the window, and the window's half-width (bins)."""
    nbin = esf.size
    centre = nbin // 2 - 1
    half = float(max(centre, nbin - 1 - centre))
    if lsf_span == "auto":
        tail = (sfr_steps._kernel.tail(esf, counts, nbin, oversample, noise, contrast, LSF_TAIL_FRACTION,
                                       TAIL_SMOOTH_PX)
                if use_kernel else sfr_steps._tail_extent_bins(esf, counts, oversample, noise, contrast))
        half = min(half, max(max(LSF_SPAN_RISES * rise_px, LSF_MIN_HALF_WIDTH_PX) * oversample, 2.0 * tail))
    elif lsf_span != "full":
        raise SfrError(f"lsf_span must be 'auto' or 'full', got {lsf_span!r}")
    if use_kernel:
        lsf = np.empty(nbin)
        sfr_steps._kernel.lsf(esf, nbin, centre, half, sfr_steps._WINDOW_KIND[window], alpha, lsf)
    else:
        lsf = np.zeros(nbin)
        lsf[:-1] = 0.5 * (esf[1:] - esf[:-1])  # FIR [-0.5, 0.5]; lsf[j] sits at bin boundary j + 1
        lsf *= sfr_steps._window((np.arange(nbin) - centre) / half, window, alpha)
    return lsf, half


def _mtf(lsf: np.ndarray, correct_binning: bool, pitch_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 7-8: frequencies (cycles/px normal to the edge, bin pitch ``pitch_px``) and the MTF of ``lsf``."""
    spec = np.abs(np.fft.rfft(lsf))
    if spec[0] <= 0:
        raise SfrError("no edge: the line spread function integrates to zero")
    kk, divisor = sfr_steps._spectrum_axis(lsf.size, correct_binning)
    mtf = spec / spec[0]
    mtf /= divisor
    return kk / pitch_px, mtf


#: The CFA helpers moved to ``calibration.sfr_cfa``; still importable from here.
_CFA_NAMES = ("sfr_cfa", "cfa_plane", "cfa_at", "demosaic_luminance")


def __getattr__(name: str):  # PEP 562: resolved on first use, so neither module imports the other at load
    if name in _CFA_NAMES:
        from calibration import sfr_cfa

        return getattr(sfr_cfa, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
