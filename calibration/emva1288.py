"""Sensor characterisation after EMVA 1288 (Release 4.0 Linear): photon transfer from flat-field and dark pairs.

For every exposure, per CFA channel (R, Gr, Gb, B; or one channel ``Y`` for a mono sensor):

- mean output ``mu_y`` = mean of (A + B) / 2; temporal variance ``sigma2_y`` = var(A - B) / 2
  (EMVA 1288 4.0, 6.2: the variance of the difference, about its own mean, so a slow light drift
  between A and B does not count as noise);
- the same from dark pairs (``mu_y.dark``, ``sigma2_y.dark``), subtracted;
- saturation: the exposure where the temporal variance peaks; ``mu_y.sat`` the mean above dark there;
- system gain K (DN/e-): slope, through the origin, of ``sigma2_y - sigma2_y.dark`` against
  ``mu_y - mu_y.dark`` from the darkest point up to 70 % of ``mu_y.sat`` (EMVA's photon transfer method);
- temporal dark noise ``sigma_y.dark`` (DN): the dark variance extrapolated to zero exposure when darks
  were taken at three or more exposure times, else their mean (floored at 0.24 DN^2 as EMVA);
  ``sigma_d = sqrt(sigma2_y.dark - 1/12) / K`` (e-, the quantisation noise removed);
- linearity error LE (%): deviation from the straight line fitted between 5 % and 95 % of ``mu_y.sat``
  (the relative-deviation weighted fit of EMVA), LE = (max - min) / 2 of the deviations;
- DSNU (e-) = sqrt(s2_y.dark) / K and PRNU (%) = sqrt(s2_y - s2_y.dark) / (mu_y - mu_y.dark) from the
  spatial variance of the frame average, less the temporal variance that averaging leaves (EMVA 4.0, 8.2,
  eqs. for DSNU1288 and PRNU1288: the total variance, so any shading of the light or the optics counts);
  PRNU at the flat exposure closest to 50 % of saturation;
- the same after EMVA 4.0's highpass filter for uneven illumination (8.1: each image less its smoothed
  self, a 7x7 box, then an 11x11 box, then a 3x3 binomial filter; the spatial and the temporal variance
  both from the filtered images less the 9 px border the filter reaches past, the means from the unfiltered
  ones): ``dsnu_highpass_e`` and
  ``prnu_highpass_pct``, the pixel-to-pixel nonuniformity without the low-frequency part (vignetting,
  cos^4 falloff, an uneven light), which a flat-field correction removes anyway;
- clip level (absolute DN, black included): where the mean output stops rising with exposure (a plateau
  of two or more exposures); it can sit below the white level when the full well fills first.

The EMVA 1288 descriptor file format as the emva1288 package reads it (``v``, ``n bits width height``,
``b exposure photons``, ``d exposure``, ``i path``; exposure times in ns) is read by ``load_descriptor``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.cfa import CHANNELS, CfaError
from calibration.cfa import channel_slices as cfa_channel_slices

#: Quantisation noise variance of an ideal ADC, DN^2 (EMVA 1288: sigma_q^2 = 1/12).
QUANTISATION_VAR_DN2 = 1.0 / 12.0
#: Lower limit for the dark variance (EMVA 1288 / emva1288 package: 0.24 DN^2).
MIN_DARK_VAR_DN2 = 0.24
#: Fit range for K: up to this fraction of mu_y.sat.
GAIN_FIT_MAX_FRACTION = 0.70
#: Fit range for the linearity: between these fractions of mu_y.sat.
LINEARITY_FIT_RANGE = (0.05, 0.95)
#: A step is on the plateau when the mean rises by less than this fraction of the linear response's rise.
PLATEAU_RISE_FRACTION = 0.02

CHANNEL_ORDER = CHANNELS
MONO_CHANNEL = "Y"


class SensorAnalysisError(ValueError):
    """The frames cannot give an EMVA 1288 result (one exposure only, no darks, mismatched sizes...)."""


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class PhotonTransferCurve:
    """The per-exposure data behind a channel's result (all above dark)."""

    exposure_s: np.ndarray
    mean_dn: np.ndarray  # mu_y - mu_y.dark
    variance_dn2: np.ndarray  # sigma2_y - sigma2_y.dark
    dark_mean_dn: np.ndarray  # mu_y.dark at each exposure (absolute DN)
    raw_mean_dn: np.ndarray  # mu_y (absolute DN, black included)
    photons: np.ndarray | None = None  # mean photons per pixel, when known (EMVA descriptor)
    gain_fit: tuple[int, int] = (0, 0)  # index range [first, last] of the K fit
    linearity_fit: tuple[int, int] = (0, 0)
    saturation_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exposure_s": self.exposure_s.tolist(), "mean_dn": self.mean_dn.tolist(),
            "variance_dn2": self.variance_dn2.tolist(), "dark_mean_dn": self.dark_mean_dn.tolist(),
            "gain_fit": list(self.gain_fit), "linearity_fit": list(self.linearity_fit),
            "saturation_index": self.saturation_index,
        }
        if self.photons is not None:
            out["photons"] = self.photons.tolist()
        return out


@dataclass
class SensorChannelResult:
    """EMVA 1288 figures of one channel. DN are digital numbers of the input frames."""

    channel: str
    system_gain_dn_per_e: float
    read_noise_dn: float
    read_noise_e: float
    clip_level_dn: float | None
    mu_y_sat_dn: float
    linearity_error_pct: float
    dsnu_e: float
    prnu_pct: float
    dsnu_highpass_e: float = float("nan")
    prnu_highpass_pct: float = float("nan")
    linearity_error_min_pct: float = float("nan")
    linearity_error_max_pct: float = float("nan")
    saturation_capacity_e: float = float("nan")
    curve: PhotonTransferCurve | None = field(default=None, repr=False)

    #: Keys of ``to_dict`` (the CLI's JSON per channel).
    KEYS = ("system_gain_dn_per_e", "read_noise_dn", "read_noise_e", "clip_level_dn", "mu_y_sat_dn",
            "linearity_error_pct", "dsnu_e", "prnu_pct")

    def to_dict(self, *, curve: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {k: _json_number(getattr(self, k)) for k in self.KEYS}
        out["linearity_error_min_pct"] = _json_number(self.linearity_error_min_pct)
        out["linearity_error_max_pct"] = _json_number(self.linearity_error_max_pct)
        out["saturation_capacity_e"] = _json_number(self.saturation_capacity_e)
        out["dsnu_highpass_e"] = _json_number(self.dsnu_highpass_e)
        out["prnu_highpass_pct"] = _json_number(self.prnu_highpass_pct)
        if curve and self.curve is not None:
            out["curve"] = self.curve.to_dict()
        return out


def _json_number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


# --------------------------------------------------------------------------------------------------
# Channels and statistics
# --------------------------------------------------------------------------------------------------
def channel_slices(cfa: str | None) -> dict[str, tuple[slice, slice]]:
    """Per channel, the (row, col) slices selecting its pixels: R, Gr, Gb, B for a 2x2 CFA, else Y."""
    if cfa is None or cfa.upper() in ("", "MONO", "GRAY", "Y"):
        return {MONO_CHANNEL: (slice(None), slice(None))}
    try:
        return cfa_channel_slices(cfa)
    except CfaError as exc:
        raise SensorAnalysisError(f"{exc} (or None for a monochrome sensor)") from None


def _pair_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of (A+B)/2 and temporal variance var(A-B)/2 (EMVA 1288 4.0, eqs. for mu_y and sigma2_y)."""
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    mean = 0.5 * (float(a64.mean()) + float(b64.mean()))
    diff = a64 - b64
    var = float(diff.var()) / 2.0
    return mean, var


#: EMVA 1288 4.0, 8.1: the lowpass whose output is subtracted (box 7x7, box 11x11, binomial 3x3).
HIGHPASS_BOXES = (7, 11)
_BINOMIAL_3 = np.array([0.25, 0.5, 0.25])
#: Reach of that lowpass (3 + 5 + 1 px): the border band where it would read a reflected border is left
#: out of the highpass statistics (on a 30 % falloff a reflected border read PRNU 4 % high).
HIGHPASS_MARGIN_PX = 9


def highpass_1288(image: np.ndarray) -> np.ndarray:
    """EMVA 1288 4.0 (8.1, correction for uneven illumination): ``y - B3 * B11 * B7 * y`` (float64), box
    filters of 7 and 11 px and a 3x3 binomial, borders reflected. Removes shading, keeps pixel-scale
    nonuniformity (white noise keeps 99 % of its variance)."""
    y = np.ascontiguousarray(image, dtype=np.float64)
    smooth = y
    for size in HIGHPASS_BOXES:
        smooth = cv2.blur(smooth, (size, size), borderType=cv2.BORDER_REFLECT)
    smooth = cv2.sepFilter2D(smooth, -1, _BINOMIAL_3, _BINOMIAL_3, borderType=cv2.BORDER_REFLECT)
    return y - smooth


def _stack_stats(frames: Sequence[np.ndarray], highpass: bool = False) -> tuple[float, float, float, int]:
    """From L >= 2 frames (each ``highpass_1288``-filtered with ``highpass``, less the
    ``HIGHPASS_MARGIN_PX`` border): mean, mean temporal variance (ddof=1 per pixel), spatial variance of
    the frame average (ddof=1) and L."""
    if highpass:
        m = HIGHPASS_MARGIN_PX
        inner = all(min(np.shape(f)) > 4 * m for f in frames)
        stack = np.stack([highpass_1288(f)[m:-m, m:-m] if inner else highpass_1288(f) for f in frames])
    else:
        stack = np.stack([np.asarray(f, dtype=np.float64) for f in frames])
    L = stack.shape[0]
    avg = stack.mean(axis=0)
    temporal = float(stack.var(axis=0, ddof=1).mean())
    spatial = float(avg.var(ddof=1))
    return float(avg.mean()), temporal, spatial, L


def _spatial_variance(frames: Sequence[np.ndarray], highpass: bool = False) -> tuple[float, float]:
    """EMVA spatial variance s2_y (DN^2) of L frames: var of their average less sigma2_stack / L; and the
    mean. ``highpass``: of the ``highpass_1288``-filtered frames (the mean is then ~0)."""
    mean, temporal, spatial, L = _stack_stats(frames, highpass)
    return spatial - temporal / L, mean


def _fit_through_origin(x: np.ndarray, y: np.ndarray) -> float:
    denom = float(np.dot(x, x))
    if denom <= 0:
        raise SensorAnalysisError("no signal above dark in the fit range")
    return float(np.dot(x, y) / denom)


def _saturation_index(variance: np.ndarray) -> int:
    """Index of the maximum temporal variance, scanning down from the brightest point as the emva1288
    package does (a noise spike past saturation does not move it)."""
    best, best_i = -np.inf, 0
    for i in range(len(variance) - 1, -1, -1):
        prev = variance[abs(i - 1)]
        if variance[i] >= best or prev >= best:
            best, best_i = variance[i], i
        elif variance[i] < best and prev < best:
            break
    return int(best_i)


def _linearity(x: np.ndarray, y: np.ndarray, sat: int) -> tuple[float, float, float, tuple[int, int]]:
    """EMVA 1288 linearity: line y = a x + b fitted to minimise relative deviations between 5 % and
    95 % of saturation; returns LE = (max - min) / 2, min, max (%), and the fit index range."""
    y_sat = y[sat]
    lo, hi = LINEARITY_FIT_RANGE
    idx = np.flatnonzero((y >= lo * y_sat) & (y <= hi * y_sat) & (np.arange(len(y)) <= sat))
    if len(idx) < 2:
        return float("nan"), float("nan"), float("nan"), (0, 0)
    i0, i1 = int(idx.min()), int(idx.max())
    X, Y = x[i0 : i1 + 1], y[i0 : i1 + 1]
    if np.any(Y <= 0):
        return float("nan"), float("nan"), float("nan"), (i0, i1)
    # Minimise sum(((a X + b) - Y) / Y)^2 (as EMVA / the emva1288 package): weights 1 / Y.
    w = 1.0 / Y
    A = np.column_stack([X * w, w])
    (a, b), *_ = np.linalg.lstsq(A, np.ones_like(Y), rcond=None)
    fit = a * X + b
    dev = 100.0 * (Y - fit) / fit
    return float((dev.max() - dev.min()) / 2.0), float(dev.min()), float(dev.max()), (i0, i1)


def clip_level(light: np.ndarray, raw_mean: np.ndarray, mean: np.ndarray, sat: int,
                gain_fit: tuple[int, int]) -> float | None:
    """Absolute DN where the mean output stops rising with the light (exposure or photons): the median
    over the final plateau of two or more points, each rising less than ``PLATEAU_RISE_FRACTION`` of
    what the linear response would; None if the sweep never reaches it."""
    i0, i1 = gain_fit
    x = light[i0 : i1 + 1]
    if len(x) >= 2 and np.ptp(x) > 0:
        slope = float(np.polyfit(x, mean[i0 : i1 + 1], 1)[0])
    else:
        slope = float(mean[sat] / light[sat]) if light[sat] > 0 else 0.0
    if slope <= 0:
        return None
    n = len(light)
    flat = np.zeros(n, dtype=bool)
    for i in range(1, n):
        rise = raw_mean[i] - raw_mean[i - 1]
        flat[i] = rise < PLATEAU_RISE_FRACTION * slope * (light[i] - light[i - 1])
    # The plateau: from the first point i such that every step from i onwards is flat.
    start = None
    for i in range(n - 1, 0, -1):
        if not flat[i]:
            break
        start = i - 1
    if start is None or n - start < 2:
        return None
    # The points reached by a flat step; the plateau's first point may still be on its way up (a mean
    # over partly clipped pixels), and the median shrugs off a noisy one.
    return float(np.median(raw_mean[start + 1 :]))


# --------------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------------
Frame = np.ndarray
Pair = tuple[float, Frame, Frame]


def _normalise_darks(darks: Sequence[Any]) -> tuple[list[Pair], list[list[Frame]]]:
    """Darks as (exposure_s, A, B) pairs, or as a list of frames (one exposure): -> pairs, stacks."""
    if not darks:
        raise SensorAnalysisError("no dark frames: EMVA 1288 needs dark pairs (or two or more dark frames)")
    if all(isinstance(d, tuple | list) and len(d) == 3 and np.ndim(d[1]) == 2 for d in darks):
        pairs = [(float(t), np.asarray(a), np.asarray(b)) for t, a, b in darks]
        stacks: dict[float, list[Frame]] = {}
        for t, a, b in pairs:
            stacks.setdefault(t, []).extend([a, b])
        return pairs, list(stacks.values())
    frames = [np.asarray(d) for d in darks]
    if any(f.ndim != 2 for f in frames):
        raise SensorAnalysisError("dark frames must be 2-D arrays or (exposure_s, A, B) pairs")
    if len(frames) < 2:
        raise SensorAnalysisError("only one dark frame: EMVA 1288 needs at least two (a dark pair)")
    pairs = [(float("nan"), frames[i], frames[i + 1]) for i in range(len(frames) - 1)]  # every frame counts
    return pairs, [frames]


def analyze_pairs(flats: Sequence[Pair], darks: Sequence[Any], *, cfa: str | None = None,
                  photons: Sequence[float] | None = None,
                  spatial_flats: Sequence[Frame] | None = None,
                  spatial_darks: Sequence[Frame] | None = None) -> dict[str, SensorChannelResult]:
    """EMVA 1288 photon transfer per channel from flat pairs ``(exposure_s, A, B)`` and darks.

    ``darks``: pairs ``(exposure_s, A, B)`` (at the flats' exposures, or any: their mean and variance
    are interpolated linearly in exposure), or a plain list of two or more dark frames taken at one
    exposure. ``cfa``: ``"RGGB"``... for R, Gr, Gb, B channels, None for one channel ``Y``.
    The dark frames give the offset (no black level is needed). ``photons``: mean photons
    per pixel for each flat (EMVA descriptor): the irradiation axis (sorting, linearity, clip level)
    instead of exposure time, so the light may also vary at one exposure time.
    ``spatial_flats`` / ``spatial_darks``: frame stacks for PRNU / DSNU (else the flat pair nearest
    50 % saturation and the dark frames are used).

    Raises SensorAnalysisError on a single exposure, no darks or mismatched frame sizes.
    """
    if not flats:
        raise SensorAnalysisError("no flat-field pairs")
    given = [(float(t), np.asarray(a), np.asarray(b)) for t, a, b in flats]
    if photons is not None and len(photons) != len(given):
        raise SensorAnalysisError(f"{len(photons)} photon counts for {len(given)} flat pairs")
    # The irradiation axis: photons when known (the light may vary at one exposure time), else exposure.
    light = np.asarray(photons, dtype=np.float64) if photons is not None else np.array([p[0] for p in given])
    order = np.argsort(light, kind="stable")
    flats = [given[i] for i in order]
    light = light[order]
    exposures = np.array([p[0] for p in flats])
    if len(np.unique(light)) < 2:
        raise SensorAnalysisError(
            f"flat pairs at a single exposure ({exposures[0]:g} s): the photon transfer slope needs two or more")
    dark_pairs, dark_stacks = _normalise_darks(darks)
    shape = flats[0][1].shape
    for t, a, b in flats:
        if a.shape != shape or b.shape != shape:
            raise SensorAnalysisError(f"flat pair at {t:g} s is {a.shape}/{b.shape}, expected {shape}")
    for _, a, b in dark_pairs:
        if a.shape != shape or b.shape != shape:
            raise SensorAnalysisError(f"dark frame is {a.shape if a.shape != shape else b.shape}, flats are {shape}")
    for frames in [*(spatial_flats and [spatial_flats] or []), *(spatial_darks and [spatial_darks] or [])]:
        if any(np.shape(f) != shape for f in frames):
            raise SensorAnalysisError(f"spatial frames must be {shape} like the flats")
    photons_arr = light if photons is not None else None
    return {name: _analyze_channel(name, sl, flats, exposures, dark_pairs, dark_stacks, photons_arr,
                                   spatial_flats, spatial_darks)
            for name, sl in channel_slices(cfa).items()}


def _dark_model(dark_pairs: list[Pair], sl: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dark exposures, means and temporal variances per pair (sorted by exposure)."""
    t = np.array([p[0] for p in dark_pairs])
    stats = np.array([_pair_stats(a[sl], b[sl]) for _, a, b in dark_pairs])
    order = np.argsort(t)
    return t[order], stats[order, 0], stats[order, 1]


def _at(t_dark: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Dark values at the flats' exposures: exact match, linear fit in exposure, or the mean."""
    finite = np.isfinite(t_dark)
    if not finite.all() or len(np.unique(t_dark)) < 2:
        return np.full(len(t), float(values.mean()))
    out = np.empty(len(t))
    fit = np.polyfit(t_dark, values, 1)
    for i, ti in enumerate(t):
        hit = np.flatnonzero(np.isclose(t_dark, ti, rtol=1e-9, atol=0))
        out[i] = values[hit].mean() if len(hit) else np.polyval(fit, ti)
    return out


def _analyze_channel(name: str, sl: tuple[slice, slice], flats: list[Pair], exposures: np.ndarray,
                     dark_pairs: list[Pair], dark_stacks: list[list[Frame]], photons: np.ndarray | None,
                     spatial_flats: Sequence[Frame] | None,
                     spatial_darks: Sequence[Frame] | None) -> SensorChannelResult:
    stats = np.array([_pair_stats(a[sl], b[sl]) for _, a, b in flats])
    raw_mean, raw_var = stats[:, 0], stats[:, 1]
    t_dark, dark_mean_p, dark_var_p = _dark_model(dark_pairs, sl)
    dark_mean = _at(t_dark, dark_mean_p, exposures)
    dark_var = _at(t_dark, dark_var_p, exposures)
    mean = raw_mean - dark_mean
    var = raw_var - dark_var

    sat = _saturation_index(var)
    mu_y_sat = float(mean[sat])
    if not mu_y_sat > 0:
        raise SensorAnalysisError(f"channel {name}: no signal above dark at saturation")
    upto = np.flatnonzero((mean <= GAIN_FIT_MAX_FRACTION * mu_y_sat) & (np.arange(len(mean)) <= sat))
    if len(upto) < 2:
        raise SensorAnalysisError(
            f"channel {name}: fewer than two flat exposures below 70 % of saturation ({mu_y_sat:.1f} DN):"
            " add darker exposures")
    gain_fit = (0, int(upto.max()))
    fit_slice = slice(gain_fit[0], gain_fit[1] + 1)
    K = _fit_through_origin(mean[fit_slice], var[fit_slice])
    if not K > 0:
        raise SensorAnalysisError(f"channel {name}: temporal variance does not grow with the signal (K = {K:.4g})")

    # Temporal dark noise: extrapolated to zero exposure when darks span three or more exposure times.
    finite_t = t_dark[np.isfinite(t_dark)]
    if len(np.unique(finite_t)) > 2 and len(finite_t) == len(t_dark):
        s2_dark = float(np.polyfit(t_dark, dark_var_p, 1)[1])
    else:
        s2_dark = float(dark_var_p[0]) if len(np.unique(t_dark)) > 1 else float(dark_var_p.mean())
    s2_dark = max(s2_dark, MIN_DARK_VAR_DN2)
    read_noise_dn = float(np.sqrt(s2_dark))
    read_noise_e = float(np.sqrt(max(s2_dark - QUANTISATION_VAR_DN2, 0.0)) / K)

    light = photons if photons is not None else exposures
    le, le_min, le_max, lin_fit = _linearity(light, mean, sat)
    clip = clip_level(light, raw_mean, mean, sat, gain_fit)

    # DSNU: the largest dark stack (or the given spatial darks).
    dstack = [np.asarray(f)[sl] for f in spatial_darks] if spatial_darks else \
        [f[sl] for f in max(dark_stacks, key=len)]
    s2_y_dark, dark_spatial_mean = _spatial_variance(dstack)
    dsnu_e = float(np.sqrt(max(s2_y_dark, 0.0)) / K)
    s2_y_dark_hp, _ = _spatial_variance(dstack, highpass=True)
    dsnu_hp_e = float(np.sqrt(max(s2_y_dark_hp, 0.0)) / K)

    # PRNU: the spatial flat stack, or the flat pair closest to 50 % of saturation.
    if spatial_flats:
        fstack = [np.asarray(f)[sl] for f in spatial_flats]
    else:
        half = int(np.argmin(np.abs(mean[: sat + 1] - 0.5 * mu_y_sat)))
        fstack = [flats[half][1][sl], flats[half][2][sl]]
    s2_y, flat_mean = _spatial_variance(fstack)
    signal = flat_mean - dark_spatial_mean
    prnu = float(100.0 * np.sqrt(max(s2_y - s2_y_dark, 0.0)) / signal) if signal > 0 else float("nan")
    s2_y_hp, _ = _spatial_variance(fstack, highpass=True)
    prnu_hp = float(100.0 * np.sqrt(max(s2_y_hp - s2_y_dark_hp, 0.0)) / signal) if signal > 0 else float("nan")

    curve = PhotonTransferCurve(exposures.copy(), mean, var, dark_mean, raw_mean, photons, gain_fit, lin_fit, sat)
    return SensorChannelResult(
        channel=name, system_gain_dn_per_e=K, read_noise_dn=read_noise_dn, read_noise_e=read_noise_e,
        clip_level_dn=clip, mu_y_sat_dn=mu_y_sat, linearity_error_pct=le, dsnu_e=dsnu_e, prnu_pct=prnu,
        dsnu_highpass_e=dsnu_hp_e, prnu_highpass_pct=prnu_hp,
        linearity_error_min_pct=le_min, linearity_error_max_pct=le_max, saturation_capacity_e=mu_y_sat / K,
        curve=curve,
    )


# --------------------------------------------------------------------------------------------------
# The EMVA 1288 descriptor file (as the emva1288 package's ParseEmvaDescriptorFile reads it)
# --------------------------------------------------------------------------------------------------
@dataclass
class EmvaDescriptor:
    """A parsed descriptor. Exposures are in the file's unit (ns for the emva1288 package).

    ``bright[kind][exposure][photons] -> [paths]``, ``dark[kind][exposure] -> [paths]``, ``kind`` is
    ``temporal`` (two images) or ``spatial`` (more), as the emva1288 package classifies them.
    """

    path: Path
    version: str | None
    bits: int | None
    width: int | None
    height: int | None
    bright: dict[str, dict[float, dict[float, list[Path]]]]
    dark: dict[str, dict[float, list[Path]]]


def parse_descriptor(text: str, path: str | os.PathLike[str]) -> EmvaDescriptor:
    """Parse the ``text`` of the EMVA 1288 descriptor file ``path``; image paths are resolved against its folder
    ('\\' or '/'). No file is read here. Raises SensorAnalysisError naming the line on a malformed file.
    """
    path = Path(path)
    base = path.parent
    lines = [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1)]
    lines = [(n, s) for n, s in lines if s and not s.startswith("#")]
    version = None
    fmt: tuple[int, int, int] | None = None
    bright: dict[str, dict[float, dict[float, list[Path]]]] = {"temporal": {}, "spatial": {}}
    dark: dict[str, dict[float, list[Path]]] = {"temporal": {}, "spatial": {}}

    def bad(n: int, msg: str) -> SensorAnalysisError:
        return SensorAnalysisError(f"{path}:{n}: {msg}")

    def number(n: int, text: str) -> float:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            raise bad(n, f"{text!r} is not a number") from None

    i = 0
    while i < len(lines):
        n, line = lines[i]
        parts = line.split()
        i += 1
        if len(parts) < 2:
            raise bad(n, f"malformed line {line!r}")
        tag = parts[0]
        if tag == "v":
            version = parts[1]
        elif tag == "n":
            if len(parts) != 4:
                raise bad(n, f"{line!r} should be 'n bits width height'")
            if fmt is not None:
                raise bad(n, "only one 'n bits width height' line is allowed")
            fmt = (int(number(n, parts[1])), int(number(n, parts[2])), int(number(n, parts[3])))
        elif tag in ("b", "d"):
            if tag == "b" and len(parts) != 3:
                raise bad(n, f"{line!r} should be 'b exposure photons'")
            if tag == "d" and len(parts) != 2:
                raise bad(n, f"{line!r} should be 'd exposure'")
            exposure = number(n, parts[1])
            names: list[Path] = []
            while i < len(lines) and lines[i][1].split()[0] == "i":
                m, img_line = lines[i]
                img_parts = img_line.split(maxsplit=1)
                if len(img_parts) != 2:
                    raise bad(m, f"{img_line!r} should be 'i filename'")
                names.append(base.joinpath(*img_parts[1].strip().replace("\\", "/").split("/")))
                i += 1
            if len(names) < 2:
                raise bad(n, "each image series needs at least two images")
            kind = "temporal" if len(names) == 2 else "spatial"
            if tag == "b":
                photons = number(n, parts[2])
                step = bright[kind].setdefault(exposure, {})
                if photons in step:
                    raise bad(n, f"a second bright series at photon count {photons:g}")
                step[photons] = names
            else:
                if exposure in dark[kind]:
                    raise bad(n, f"a second dark series at exposure {exposure:g}")
                dark[kind][exposure] = names
        elif tag == "i":
            raise bad(n, "an 'i' line outside a 'b' or 'd' series")
        else:
            raise bad(n, f"unknown line {line!r}")
    bits, width, height = fmt if fmt is not None else (None, None, None)
    return EmvaDescriptor(path, version, bits, width, height, bright, dark)


#: Seconds per descriptor exposure unit (the emva1288 package and its data sets use ns).
DESCRIPTOR_EXPOSURE_UNIT_S = 1e-9


def analyze_descriptor(desc: EmvaDescriptor, read_image: Callable[[Path], np.ndarray], *,
                       exposure_unit_s: float = DESCRIPTOR_EXPOSURE_UNIT_S) -> dict[str, SensorChannelResult]:
    """EMVA 1288 on a descriptor's images (mono: one channel ``Y``): temporal pairs for the photon
    transfer, spatial stacks (when present) for DSNU / PRNU. ``read_image(path)`` gives each image's array
    (the caller reads the files)."""
    flats: list[Pair] = []
    photons: list[float] = []
    for exposure, steps in desc.bright["temporal"].items():
        for photon_count, names in steps.items():
            a, b = (read_image(p) for p in names)
            flats.append((exposure * exposure_unit_s, a, b))
            photons.append(photon_count)
    darks: list[Pair] = []
    for exposure, names in desc.dark["temporal"].items():
        a, b = (read_image(p) for p in names)
        darks.append((exposure * exposure_unit_s, a, b))
    if not flats:
        raise SensorAnalysisError(f"{desc.path}: no bright ('b') image pairs")
    if not darks:
        raise SensorAnalysisError(f"{desc.path}: no dark ('d') image pairs")
    spatial_flats = spatial_darks = None
    if desc.bright["spatial"]:
        exposure = next(iter(desc.bright["spatial"]))
        names = next(iter(desc.bright["spatial"][exposure].values()))
        spatial_flats = [read_image(p) for p in names]
        dark_names = desc.dark["spatial"].get(exposure)
        if dark_names:
            spatial_darks = [read_image(p) for p in dark_names]
    return analyze_pairs(flats, darks, cfa=None, photons=photons, spatial_flats=spatial_flats,
                         spatial_darks=spatial_darks)
