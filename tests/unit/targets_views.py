"""Views of a chart for the targets tests: exact chart raster, perspective warp, area downsampling."""

from __future__ import annotations

import cv2
import numpy as np

from targets.base import Chart


def perspective(chart: Chart, width_px: int = 640, height_px: int = 480, seed: int = 0,
                jitter_px: float = 25.0) -> np.ndarray:
    """A homography (chart mm -> image px) framing the chart with some perspective."""
    rng = np.random.default_rng(seed)
    src = np.array([[0, 0], [chart.width_mm, 0], [chart.width_mm, chart.height_mm], [0, chart.height_mm]],
                   dtype=np.float32)
    mx, my = 0.08 * width_px, 0.08 * height_px
    dst = np.array([[mx, my], [width_px - mx, my], [width_px - mx, height_px - my], [mx, height_px - my]])
    dst = (dst + rng.uniform(-jitter_px, jitter_px, (4, 2))).astype(np.float32)
    H = cv2.getPerspectiveTransform(src, dst)
    return H / H[2, 2]


def render(chart: Chart, H: np.ndarray, width_px: int = 640, height_px: int = 480, k: int = 4,
           blur_px: float = 0.7) -> np.ndarray:
    """(H,W,3) float32 linear view: chart raster (exact area) at k x the view's scale, warped at k x
    resolution, area-averaged down by k, then a Gaussian blur of ``blur_px`` sigma."""
    scale = float(np.max(np.linalg.svd(H[:2, :2] - np.outer(H[:2, 2], H[2, :2]), compute_uv=False)))
    ppm = k * max(scale, 1.0) * 1.5
    pad = 2.0 / ppm
    tw, th = int(np.ceil((chart.width_mm + 2 * pad) * ppm)), int(np.ceil((chart.height_mm + 2 * pad) * ppm))
    tex = chart.raster(-pad, -pad, ppm, tw, th)
    T = np.array([[1 / ppm, 0, -pad + 0.5 / ppm], [0, 1 / ppm, -pad + 0.5 / ppm], [0, 0, 1]])  # tex px -> mm
    A = np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1]])  # view px -> big px
    border = tuple(float(v) for v in chart.background)
    big = cv2.warpPerspective(tex, A @ H @ T, (width_px * k, height_px * k), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    view = cv2.resize(big, (width_px, height_px), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(view, (0, 0), blur_px) if blur_px > 0 else view


def to_u8(view: np.ndarray) -> np.ndarray:
    """Linear reflectance view -> 8-bit gray (linear, 1.0 -> 255)."""
    return np.clip(view.mean(axis=2) * 255.0, 0, 255).round().astype(np.uint8)
