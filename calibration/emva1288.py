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
  of two or more exposures); it can sit below the white level when the full well fills first;
- ``exclude_mask``: defect pixels (EMVA 4.0's defect-pixel chapter: hot in the darks, dead / weak / stuck
  in the flats, ``calibration.defects``) left out of every statistic above, spatial and temporal, and of the
  highpass's lowpass (normalised convolution): a phone line limits them separately, and a few of them would
  otherwise swamp the DSNU. With no pixel excluded the arithmetic is exactly that of the whole ROI.

Modules: ``emva1288_results`` (the result types), ``emva1288_stats`` (statistics, fits, clip level),
``emva1288_descriptor`` (the emva1288 package's descriptor format, parsed from text). This module
analyses arrays: it reads no files (``station.emva_files`` and the CLI do).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.emva1288_descriptor import EmvaDescriptor, parse_descriptor
from calibration.emva1288_results import PhotonTransferCurve, SensorAnalysisError, SensorChannelResult
from calibration.emva1288_stats import (
    HIGHPASS_BOXES,
    HIGHPASS_MARGIN_PX,
    LINEARITY_FIT_RANGE,
    MONO_CHANNEL,
    PLATEAU_RISE_FRACTION,
    channel_slices,
    clip_level,
    fit_through_origin,
    highpass_1288,
    linearity,
    pair_stats,
    saturation_index,
    spatial_variance,
)

__all__ = ["DESCRIPTOR_EXPOSURE_UNIT_S", "GAIN_FIT_MAX_FRACTION", "HIGHPASS_BOXES",
           "HIGHPASS_MARGIN_PX", "LINEARITY_FIT_RANGE", "MIN_DARK_VAR_DN2", "MONO_CHANNEL", "PLATEAU_RISE_FRACTION",
           "QUANTISATION_VAR_DN2", "EmvaDescriptor", "PhotonTransferCurve", "SensorAnalysisError",
           "SensorChannelResult", "analyze_descriptor", "analyze_pairs", "channel_slices", "clip_level",
           "highpass_1288", "parse_descriptor"]

#: Quantisation noise variance of an ideal ADC, DN^2 (EMVA 1288: sigma_q^2 = 1/12).
QUANTISATION_VAR_DN2 = 1.0 / 12.0
#: Lower limit for the dark variance (EMVA 1288 / emva1288 package: 0.24 DN^2).
MIN_DARK_VAR_DN2 = 0.24
#: Fit range for K: up to this fraction of mu_y.sat.
GAIN_FIT_MAX_FRACTION = 0.70


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
                  spatial_darks: Sequence[Frame] | None = None,
                  exclude_mask: np.ndarray | None = None) -> dict[str, SensorChannelResult]:
    """EMVA 1288 photon transfer per channel from flat pairs ``(exposure_s, A, B)`` and darks.

    ``darks``: pairs ``(exposure_s, A, B)`` (at the flats' exposures, or any: their mean and variance
    are interpolated linearly in exposure), or a plain list of two or more dark frames taken at one
    exposure. ``cfa``: ``"RGGB"``... for R, Gr, Gb, B channels, None for one channel ``Y``.
    The dark frames give the offset (no black level is needed). ``photons``: mean photons
    per pixel for each flat (EMVA descriptor): the irradiation axis (sorting, linearity, clip level)
    instead of exposure time, so the light may also vary at one exposure time.
    ``spatial_flats`` / ``spatial_darks``: frame stacks for PRNU / DSNU (else the flat pair nearest
    50 % saturation and the dark frames are used). ``exclude_mask``: boolean, the frames' shape, True for
    the (defect) pixels every statistic leaves out; each result's ``excluded_px`` counts its channel's.

    Raises SensorAnalysisError on a single exposure, no darks, mismatched frame or mask sizes.
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
    if exclude_mask is not None and np.shape(exclude_mask) != shape:
        raise SensorAnalysisError(f"exclude mask is {np.shape(exclude_mask)}, frames are {shape}")
    photons_arr = light if photons is not None else None
    excluded = None if exclude_mask is None else np.asarray(exclude_mask, dtype=bool)
    return {name: _analyze_channel(name, sl, flats, exposures, dark_pairs, dark_stacks, photons_arr,
                                   spatial_flats, spatial_darks, _kept(excluded, sl, name))
            for name, sl in channel_slices(cfa).items()}


def _kept(excluded: np.ndarray | None, sl: tuple[slice, slice], name: str) -> np.ndarray | None:
    """The channel's pixels that count (None: all of them, the whole-ROI arithmetic unchanged)."""
    if excluded is None or not excluded[sl].any():
        return None
    keep = ~excluded[sl]
    if np.count_nonzero(keep) < 2:
        raise SensorAnalysisError(f"channel {name}: fewer than two pixels left once the excluded ones are out")
    return keep


def _dark_model(dark_pairs: list[Pair], sl: tuple[slice, slice],
                keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dark exposures, means and temporal variances per pair (sorted by exposure)."""
    t = np.array([p[0] for p in dark_pairs])
    stats = np.array([pair_stats(a[sl], b[sl], keep) for _, a, b in dark_pairs])
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
                     spatial_darks: Sequence[Frame] | None, keep: np.ndarray | None) -> SensorChannelResult:
    stats = np.array([pair_stats(a[sl], b[sl], keep) for _, a, b in flats])
    raw_mean, raw_var = stats[:, 0], stats[:, 1]
    t_dark, dark_mean_p, dark_var_p = _dark_model(dark_pairs, sl, keep)
    dark_mean = _at(t_dark, dark_mean_p, exposures)
    dark_var = _at(t_dark, dark_var_p, exposures)
    mean = raw_mean - dark_mean
    var = raw_var - dark_var

    sat = saturation_index(var)
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
    K = fit_through_origin(mean[fit_slice], var[fit_slice])
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
    le, le_min, le_max, lin_fit = linearity(light, mean, sat)
    clip = clip_level(light, raw_mean, mean, sat, gain_fit)

    # DSNU: the largest dark stack (or the given spatial darks).
    dstack = [np.asarray(f)[sl] for f in spatial_darks] if spatial_darks else \
        [f[sl] for f in max(dark_stacks, key=len)]
    s2_y_dark, dark_spatial_mean = spatial_variance(dstack, keep=keep)
    dsnu_e = float(np.sqrt(max(s2_y_dark, 0.0)) / K)
    s2_y_dark_hp, _ = spatial_variance(dstack, highpass=True, keep=keep)
    dsnu_hp_e = float(np.sqrt(max(s2_y_dark_hp, 0.0)) / K)

    # PRNU: the spatial flat stack, or the flat pair closest to 50 % of saturation.
    if spatial_flats:
        fstack = [np.asarray(f)[sl] for f in spatial_flats]
    else:
        half = int(np.argmin(np.abs(mean[: sat + 1] - 0.5 * mu_y_sat)))
        fstack = [flats[half][1][sl], flats[half][2][sl]]
    s2_y, flat_mean = spatial_variance(fstack, keep=keep)
    signal = flat_mean - dark_spatial_mean
    prnu = float(100.0 * np.sqrt(max(s2_y - s2_y_dark, 0.0)) / signal) if signal > 0 else float("nan")
    s2_y_hp, _ = spatial_variance(fstack, highpass=True, keep=keep)
    prnu_hp = float(100.0 * np.sqrt(max(s2_y_hp - s2_y_dark_hp, 0.0)) / signal) if signal > 0 else float("nan")

    curve = PhotonTransferCurve(exposures.copy(), mean, var, dark_mean, raw_mean, photons, gain_fit, lin_fit, sat)
    return SensorChannelResult(
        channel=name, system_gain_dn_per_e=K, read_noise_dn=read_noise_dn, read_noise_e=read_noise_e,
        clip_level_dn=clip, mu_y_sat_dn=mu_y_sat, linearity_error_pct=le, dsnu_e=dsnu_e, prnu_pct=prnu,
        dsnu_highpass_e=dsnu_hp_e, prnu_highpass_pct=prnu_hp,
        linearity_error_min_pct=le_min, linearity_error_max_pct=le_max, saturation_capacity_e=mu_y_sat / K,
        excluded_px=0 if keep is None else int(keep.size - np.count_nonzero(keep)), curve=curve,
    )


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
