"""Zebra: the reference masks of DESIGN 7's table, their calibration from a light sweep, and verification.

Reference masks (what the camera app must do, written from the table, not from any firmware):

- preview luma ``Y' = 0.2126 R' + 0.7152 G' + 0.0722 B'`` of the 8-bit preview (ITU-R BT.709 weights),
  rounded half up, computed exactly in integers: ``(2126 R' + 7152 G' + 722 B' + 5000) // 10000``;
- luma zebra: a pixel is flagged where ``Y' >= T_luma`` (8-bit code);
- raw zebra: a 2x2 CFA quad is flagged where any of its four samples ``>= T_raw`` (absolute DN), and the
  flag is drawn on the preview pixels of that quad. The phone's preview has one pixel per CFA sample, so
  quad (i, j) (CFA rows 2i, 2i+1, columns 2j, 2j+1) maps to preview rows 2i..2i+1, columns 2j..2j+1.

Calibration (DESIGN 7, "Calibration targets"):

- raw clip level per CFA channel from a light sweep: the absolute DN where the channel's mean output
  stops rising with the light (``calibration.emva1288``'s plateau rule, on the mean of a central region
  of each channel so vignetting does not stretch the knee); it can sit below the white level;
- ``T_raw = clip - margin (clip - black)`` with ``clip`` the *lowest* clip level among the channels:
  a quad is flagged when any one of its samples is high, so the threshold must sit below the first
  channel to clip, else that channel's clipping would never be flagged;
- ``T_luma``: the preview luma at which the brightest raw channel reaches ``T_raw``, read off the phone's
  own preview frames of the same sweep (mean luma against the brightest channel's mean raw level,
  interpolated linearly between sweep steps), never from a nominal gamma.

Verification compares a phone's zebra mask with raw truth: the fraction of raw-clipped pixels it
misses and the fraction of pixels well below clip (under 95 %) it flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from calibration.emva1288 import channel_slices, clip_level
from calibration.preview import preview_luma

#: Default zebra margin below the clip level, as a fraction of (clip - black) (DESIGN 7).
DEFAULT_MARGIN = 0.02
#: Centre region (fraction of each side) whose mean stands for a channel's level in a sweep frame.
ROI_FRACTION = 0.5
#: Limits of the phone's zebra against raw truth (issue 5): missed clipped / falsely flagged pixels.
MAX_MISSED_FRACTION = 0.005
MAX_FALSE_FLAG_FRACTION = 0.005
#: Pixels whose quad stays below this fraction of (clip - black) above black must not be flagged.
FALSE_FLAG_LEVEL = 0.95
#: Quad rows of a zebra check counted at once (bounds the temporaries at 50 MP, issue 13).
VERIFY_BAND_QUAD_ROWS = 512
#: Linear fit range for the sweep's response: points below this fraction of the channel's top mean.
_LINEAR_FRACTION = 0.70
#: A channel whose mean rises less than this over the whole sweep (DN) has no clip level to find.
_MIN_RISE_DN = 10.0


class ZebraCalibrationError(ValueError):
    """A sweep cannot give a zebra threshold (never reaches clipping, previews do not span T_raw...)."""


# --- reference masks -------------------------------------------------------------------------------

def luma_zebra(luma: np.ndarray, t_luma: int) -> np.ndarray:
    """Luma zebra (DESIGN 7): bool (H, W), True where ``Y' >= t_luma`` (8-bit code); RGB input is lumaed."""
    return preview_luma(luma) >= int(t_luma)


def quad_max(cfa: np.ndarray) -> np.ndarray:
    """(H/2, W/2): the largest of the four samples of each 2x2 CFA quad."""
    if cfa.ndim != 2 or cfa.shape[0] % 2 or cfa.shape[1] % 2:
        raise ValueError(f"a CFA frame must be 2-D with even sides, got shape {cfa.shape}")
    h, w = cfa.shape
    return cfa.reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3))


def quads_on_preview(quads: np.ndarray) -> np.ndarray:
    """A quad-grid array (H/2, W/2) drawn on the full-resolution preview (H, W): each quad on its 2x2 pixels."""
    return np.repeat(np.repeat(quads, 2, axis=0), 2, axis=1)


def raw_zebra(cfa: np.ndarray, t_raw_dn: float) -> np.ndarray:
    """Raw zebra (DESIGN 7): bool (H, W) in preview geometry, True on the four preview pixels of every
    2x2 CFA quad with any sample ``>= t_raw_dn`` (absolute DN); quad (i, j) -> rows 2i..2i+1, cols 2j..2j+1."""
    return quads_on_preview(quad_max(cfa) >= t_raw_dn)


# --- calibration from a light sweep ----------------------------------------------------------------

def centre_region(shape: tuple[int, ...], fraction: float) -> tuple[slice, slice]:
    """Slices of the centred region covering ``fraction`` of each side (whole quads)."""
    out = []
    for n in shape[:2]:
        keep = max(2, int(round(n * fraction)) // 2 * 2)
        start = (n - keep) // 4 * 2
        out.append(slice(start, start + keep))
    return out[0], out[1]


def channel_means(cfa_data: np.ndarray, cfa: str, roi_fraction: float = ROI_FRACTION) -> dict[str, float]:
    """Mean DN of each CFA channel (R, Gr, Gb, B) over the frame's central region."""
    rows, cols = centre_region(cfa_data.shape, roi_fraction)
    centre = cfa_data[rows, cols]
    return {name: float(centre[sl].mean(dtype=np.float64)) for name, sl in channel_slices(cfa).items()}


def _sweep_means(frames: Sequence[tuple[float, np.ndarray]], cfa: str,
                 roi_fraction: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if len(frames) < 3:
        raise ZebraCalibrationError(f"a light sweep needs three or more frames, got {len(frames)}")
    shape = np.shape(frames[0][1])
    means = []
    for level, data in frames:
        data = np.asarray(data)
        if data.shape != shape:
            raise ZebraCalibrationError(f"sweep frame at level {float(level):g} is {data.shape}, expected {shape}")
        means.append(channel_means(data, cfa, roi_fraction))
    return _ordered_means([float(level) for level, _ in frames], means)


def _ordered_means(levels_in: Sequence[float],
                   means: Sequence[dict[str, float]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Levels ascending (checked finite and distinct) and each channel's means in that order."""
    if len(levels_in) < 3:
        raise ZebraCalibrationError(f"a light sweep needs three or more frames, got {len(levels_in)}")
    levels = np.array([float(level) for level in levels_in])
    if not np.all(np.isfinite(levels)):
        raise ZebraCalibrationError("sweep levels must be finite numbers")
    order = np.argsort(levels, kind="stable")
    levels = levels[order]
    if len(np.unique(levels)) != len(levels):
        raise ZebraCalibrationError("sweep levels must all differ (one frame per light level or exposure)")
    stats: dict[str, list[float]] = {}
    for i in order:
        for name, value in means[i].items():
            stats.setdefault(name, []).append(value)
    return levels, {name: np.array(v) for name, v in stats.items()}


def _plateau(levels: np.ndarray, raw_mean: np.ndarray, black: float) -> float | None:
    """The clip level of one channel by ``calibration.emva1288``'s rule, or None if it never plateaus."""
    above = raw_mean - black
    top = float(above.max())
    if top - float(above.min()) < _MIN_RISE_DN:
        return None  # a channel that never responds (dark, dead) has no knee to find
    linear = np.flatnonzero(above <= _LINEAR_FRACTION * top)
    gain_fit = (int(linear.min()), int(linear.max())) if len(linear) >= 2 else (0, 0)
    return clip_level(levels, raw_mean, above, int(np.argmax(raw_mean)), gain_fit)


def clip_levels_from_sweep(frames: Sequence[tuple[float, np.ndarray]], cfa: str, black_level: float, *,
                           roi_fraction: float = ROI_FRACTION) -> dict[str, float | None]:
    """Raw clip level (absolute DN) per CFA channel from a light sweep: ``{R, Gr, Gb, B: DN or None}``.

    ``frames``: ``(level, cfa_data)`` with ``level`` anything proportional to the light (source level
    %, lux, exposure time, or exposure x level), in any order. A channel's clip level is where its mean
    (central region) stops rising: the median over the sweep's final plateau, every step of which
    rises by less than 2 % of the channel's linear response (``calibration.emva1288``, the EMVA 1288
    saturation plateau). A channel that never plateaus in the sweep (a dim channel under coloured
    light) gets None. Raises ``ZebraCalibrationError`` when no channel reaches clipping.
    """
    levels, means = _sweep_means(frames, cfa, roi_fraction)
    return _clip_levels(levels, means, black_level)


def clip_levels_from_means(levels: Sequence[float], means: Sequence[dict[str, float]],
                           black_level: float) -> dict[str, float | None]:
    """``clip_levels_from_sweep`` from each frame's channel means (``channel_means``) instead of its pixels: a
    50 MP sweep keeps four numbers a frame, not the frame (issue 13). Same result, bit for bit."""
    levels_sorted, by_channel = _ordered_means(levels, means)
    return _clip_levels(levels_sorted, by_channel, black_level)


def _clip_levels(levels: np.ndarray, means: dict[str, np.ndarray], black_level: float) -> dict[str, float | None]:
    clips = {name: _plateau(levels, m, float(black_level)) for name, m in means.items()}
    if all(c is None for c in clips.values()):
        name = max(means, key=lambda n: means[n][-1])
        m = means[name]
        k = min(2, len(m) - 1)
        rise = 100.0 * (m[-1] - m[-1 - k]) / max(m[-1 - k] - float(black_level), 1e-9)
        raise ZebraCalibrationError(
            f"sweep never reaches clipping: brightest channel mean {name} {m[-1]:.1f} DN rose {rise:.1f}% over "
            f"the last {k} steps (up to level {levels[-1]:g}); extend the sweep to brighter light")
    return clips


def lowest_clip(clips: dict[str, float | None]) -> float:
    """The lowest clip level among the channels that clipped (the one the raw zebra must catch first)."""
    found = [c for c in clips.values() if c is not None]
    if not found:
        raise ZebraCalibrationError("no channel reached clipping")
    return float(min(found))


def raw_threshold(clip_dn: float, black_dn: float, margin: float = DEFAULT_MARGIN) -> int:
    """T_raw = clip - margin (clip - black) (DESIGN 7; default 2 %), rounded to the nearest DN (the phone
    takes a whole DN). ``clip_dn``: the lowest channel clip level (``lowest_clip``)."""
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"zebra margin {margin!r}: expected 0 <= margin < 1")
    if not clip_dn > black_dn:
        raise ValueError(f"clip level {clip_dn} DN must exceed the black level {black_dn} DN")
    return int(np.floor(clip_dn - margin * (clip_dn - black_dn) + 0.5))


def luma_threshold(previews: Sequence[np.ndarray], raws: Sequence[np.ndarray], t_raw: float, cfa: str,
                   black: float, *, roi_fraction: float = ROI_FRACTION) -> int:
    """T_luma: the preview luma (8-bit code) at which the brightest raw channel reaches ``t_raw``.

    ``previews[k]`` (RGB8 or luma) is the phone's own preview of the sweep frame ``raws[k]`` (CFA DN).
    Per frame, x = the brightest channel's mean raw level, y = the mean preview luma (both over the
    central region, so the preview may have any resolution); y is interpolated linearly in x at
    ``t_raw`` between the sweep steps that bracket it, and rounded.
    """
    if len(previews) != len(raws):
        raise ZebraCalibrationError(f"{len(previews)} previews for {len(raws)} raw frames")
    _check_luma_sweep(len(raws), t_raw, black)
    x, y = [], []
    for preview, raw in zip(previews, raws, strict=True):
        x.append(max(channel_means(np.asarray(raw), cfa, roi_fraction).values()))
        y.append(centre_luma_mean(preview, roi_fraction))
    return luma_threshold_from_means(x, y, t_raw, black)


def _check_luma_sweep(frames: int, t_raw: float, black: float) -> None:
    if frames < 2:
        raise ZebraCalibrationError("T_luma needs previews of two or more sweep frames")
    if not t_raw > black:
        raise ZebraCalibrationError(f"T_raw {t_raw} DN is not above the black level {black} DN")


def centre_luma_mean(preview: np.ndarray, roi_fraction: float = ROI_FRACTION) -> float:
    """Mean preview luma (``preview_luma``) over the centred region, float64 (as ``luma_threshold`` takes it)."""
    luma = preview_luma(np.asarray(preview))
    rows, cols = centre_region(luma.shape, roi_fraction)
    return float(luma[rows, cols].mean(dtype=np.float64))


def luma_threshold_from_means(raw_top_dn: Sequence[float], luma_mean: Sequence[float], t_raw: float,
                              black: float) -> int:
    """``luma_threshold`` from each previewed frame's brightest channel mean (DN, ``channel_means``) and centre
    luma mean (``centre_luma_mean``): a sweep keeps two numbers a frame, not its pixels (issue 13)."""
    if len(raw_top_dn) != len(luma_mean):
        raise ZebraCalibrationError(f"{len(luma_mean)} preview means for {len(raw_top_dn)} raw frames")
    _check_luma_sweep(len(raw_top_dn), t_raw, black)
    xs, ys = np.array(raw_top_dn, dtype=np.float64), np.array(luma_mean, dtype=np.float64)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if not xs[0] <= t_raw <= xs[-1]:
        raise ZebraCalibrationError(
            f"the previewed frames do not span T_raw {t_raw:g} DN: their brightest channel runs "
            f"{xs[0]:.1f}..{xs[-1]:.1f} DN")
    above = int(np.flatnonzero(xs >= t_raw)[0])
    if above == 0:
        return int(np.clip(np.floor(ys[0] + 0.5), 0, 255))
    x0, x1, y0, y1 = xs[above - 1], xs[above], ys[above - 1], ys[above]
    value = y1 if x1 == x0 else y0 + (y1 - y0) * (t_raw - x0) / (x1 - x0)
    return int(np.clip(np.floor(value + 0.5), 0, 255))


# --- verification ----------------------------------------------------------------------------------

def _truth_on_mask(quads: np.ndarray, mask_shape: tuple[int, int]) -> np.ndarray:
    """A quad-grid truth on the mask's grid: 2x2 per quad at full resolution, itself at quad resolution,
    else nearest-neighbour resampling (a preview of another size)."""
    h, w = quads.shape
    if mask_shape == (2 * h, 2 * w):
        return quads_on_preview(quads)
    if mask_shape == (h, w):
        return quads
    return cv2.resize(quads.astype(np.uint8), (mask_shape[1], mask_shape[0]),
                      interpolation=cv2.INTER_NEAREST).astype(bool)


def verify_zebra(phone_mask: np.ndarray, cfa_data: np.ndarray, clip_dn: float, black_dn: float, *,
                 false_flag_level: float = FALSE_FLAG_LEVEL, max_missed: float = MAX_MISSED_FRACTION,
                 max_false_flag: float = MAX_FALSE_FLAG_FRACTION) -> dict[str, Any]:
    """The phone's zebra mask (any nonzero = flagged, preview geometry) against raw truth from ``cfa_data``.

    Raw-clipped pixels: those of quads with any sample ``>= clip_dn``. Pixels below 95 % of clip: those
    of quads whose every sample is below ``black + 0.95 (clip - black)``. Returns the missed fraction of
    the first, the flagged fraction of the second (None when a set is empty), their counts, the limits
    (issue 5: 0.5 % each) and ``pass``.
    """
    mask = np.asarray(phone_mask)
    if mask.ndim != 2:
        raise ValueError(f"a zebra mask must be 2-D, got shape {mask.shape}")
    cfa = np.asarray(cfa_data)
    below_dn = black_dn + false_flag_level * (clip_dn - black_dn)
    if cfa.ndim != 2 or cfa.shape[0] % 2 or cfa.shape[1] % 2:
        quad_max(cfa)  # raises, saying why
    height, width = cfa.shape[0] // 2, cfa.shape[1] // 2
    scale = 2 if mask.shape == (2 * height, 2 * width) else 1 if mask.shape == (height, width) else 0
    bands = range(0, height, VERIFY_BAND_QUAD_ROWS) if scale else [0]
    n_clipped = n_below = missed = false = 0
    for q0 in bands:  # counts are sums over rows: band by band they are the whole frame's (issue 13)
        q1 = min(q0 + VERIFY_BAND_QUAD_ROWS, height) if scale else height
        top = quad_max(cfa[2 * q0:2 * q1])
        flagged = mask[scale * q0:scale * q1] != 0 if scale else mask != 0
        clipped = _truth_on_mask(top >= clip_dn, flagged.shape)
        below = _truth_on_mask(top < below_dn, flagged.shape)
        n_clipped += int(np.count_nonzero(clipped))
        n_below += int(np.count_nonzero(below))
        missed += int(np.count_nonzero(clipped & ~flagged))
        false += int(np.count_nonzero(below & flagged))
    missed_fraction = missed / n_clipped if n_clipped else None
    false_fraction = false / n_below if n_below else None
    ok = (missed_fraction is None or missed_fraction <= max_missed) and \
         (false_fraction is None or false_fraction <= max_false_flag)
    return {"missed_fraction": missed_fraction, "false_flag_fraction": false_fraction,
            "clipped_pixels": n_clipped, "missed_pixels": missed, "below_pixels": n_below,
            "false_flag_pixels": false, "below_level_dn": below_dn, "clip_level_dn": float(clip_dn),
            "max_missed_fraction": max_missed, "max_false_flag_fraction": max_false_flag, "pass": bool(ok)}
