"""Captures as a person looks at them in a report: white-balanced, exposed to the chart's white, ROIs drawn.

White balance: the frame's own ``as_shot_neutral`` when it carries one (DNG AsShotNeutral), else the grey
world of the lit, unclipped part of the frame (the station's charts are neutral: flat field, black and white
edges, ChArUco, grey steps). Exposure: the white-balanced image's 99.5th percentile maps to white. The
rendering is ``Frame.preview8`` (block means per 2x2 quad, sRGB transfer, IEC 61966-2-1); the ROIs (sensor
pixels ``x, y, w, h``) are drawn as rectangles on the downscaled preview.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from station.errors import InputError
from station.frame import Frame

#: ROI rectangle colour (RGB): yellow reads on grey charts and on colour patches alike.
ROI_RGB = (255, 210, 0)
#: Pixels above this fraction of full scale count as clipped and stay out of the white-balance estimate.
CLIP_FRACTION = 0.98
#: Samples taken along each axis of a CFA plane for the statistics (whole-frame work stays cheap).
STAT_SAMPLES = 256


def _quad_planes(frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subsampled R, G (mean of the greens) and B planes above black, float32 (strided views, then one copy)."""
    step = max(1, max(frame.height, frame.width) // (2 * STAT_SAMPLES))
    planes = [frame.cfa_plane(name)[::step, ::step].astype(np.float32) - np.float32(frame.black_level)
              for name in ("R", "Gr", "Gb", "B")]
    return planes[0], 0.5 * (planes[1] + planes[2]), planes[3]


def neutral_gains(frame: Frame) -> tuple[float, float, float]:
    """R, G, B white-balance gains (G = 1): from ``as_shot_neutral``, else the grey world of the lit, unclipped
    quads (at or above the green median, every channel under ``CLIP_FRACTION`` of full scale)."""
    if frame.extra.get("as_shot_neutral"):
        return frame.white_balance_gains()
    r, g, b = _quad_planes(frame)
    full = np.float32(CLIP_FRACTION * (frame.white_level - frame.black_level))
    lit = (g >= np.median(g)) & (r < full) & (g < full) & (b < full) & (r > 0) & (b > 0)
    if not lit.any():
        return (1.0, 1.0, 1.0)
    mean_r, mean_g, mean_b = float(r[lit].mean()), float(g[lit].mean()), float(b[lit].mean())
    if min(mean_r, mean_g, mean_b) <= 0:
        return (1.0, 1.0, 1.0)
    return (mean_g / mean_r, 1.0, mean_g / mean_b)


def gains_of_neutral(rgb_mean: Sequence[float]) -> tuple[float, float, float]:
    """White-balance gains (G = 1) that make a neutral patch's mean R, G, B (above black) grey."""
    r, g, b = (float(v) for v in rgb_mean)
    if min(r, g, b) <= 0:
        return (1.0, 1.0, 1.0)
    return (g / r, 1.0, g / b)


def preview_rgb(frame: Frame, rois: Sequence[tuple[int, int, int, int]] = (), max_side: int = 768,
                gains: tuple[float, float, float] | None = None) -> np.ndarray:
    """The white-balanced 8-bit RGB preview of ``frame`` (longer side <= ``max_side``) with ``rois`` drawn;
    ``gains`` (R, G, B) when the procedure knows the neutral (a chart's grey patches), else ``neutral_gains``."""
    if max_side < 8:
        raise InputError(f"capture preview: max_side {max_side} px is too small (>= 8)")
    gains = gains if gains is not None else neutral_gains(frame)
    r, g, b = _quad_planes(frame)
    balanced_max = np.maximum(np.maximum(r * np.float32(gains[0]), g), b * np.float32(gains[2]))
    top = max(float(np.percentile(balanced_max, 99.5)), 1.0)
    neutral = [1.0 / gains[0], 1.0, 1.0 / gains[2]]
    balanced = dataclasses.replace(frame, extra={**frame.extra, "as_shot_neutral": neutral})  # no pixel copy
    rgb = balanced.preview8(max_side=max_side, exposure_gain=(frame.white_level - frame.black_level) / top)
    if rois:
        rgb = np.ascontiguousarray(rgb)
        sx, sy = rgb.shape[1] / frame.width, rgb.shape[0] / frame.height
        for x, y, w, h in rois:
            top_left = (int(round(x * sx)), int(round(y * sy)))
            bottom_right = (max(top_left[0] + 1, int(round((x + w) * sx)) - 1),
                            max(top_left[1] + 1, int(round((y + h) * sy)) - 1))
            cv2.rectangle(rgb, top_left, bottom_right, ROI_RGB, 1)
    return rgb


def capture_png(frame: Frame, rois: Sequence[tuple[int, int, int, int]] = (), max_side: int = 768,
                gains: tuple[float, float, float] | None = None) -> bytes:
    """``preview_rgb`` as PNG bytes."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(preview_rgb(frame, rois, max_side, gains)[..., ::-1]))
    if not ok:
        raise InputError("capture preview: PNG encoding failed")
    return buf.tobytes()
