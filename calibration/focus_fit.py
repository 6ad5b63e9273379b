"""Focus from images, pure functions: a focus metric for a sweep, the vertex of a through-focus curve and a
plane through best-focus positions over the field (the M adapter's back focus and tilt). Frames in, numbers out.

The metric is the Tenengrad (Sobel gradient energy; Krotkov, IJCV 1 (1987); Pertuz et al., Pattern Recognition
46 (2013) "Analysis of focus measure operators") of the CFA quad means, normalised by the squared mean and summed
over three pyramid levels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def pyramid_sharpness(cfa: np.ndarray) -> float:
    """Contrast-normalised gradient energy (Tenengrad, Sobel) of the quad-mean image, summed over three
    pyramid levels so that it still ranks frames blurred by tens of pixels. Exposure-invariant."""
    h, w = cfa.shape
    image = cv2.resize(cfa[: h // 2 * 2, : w // 2 * 2].astype(np.float32), (w // 2, h // 2),
                       interpolation=cv2.INTER_AREA)  # the mean of each 2x2 quad
    total = 0.0
    for _ in range(3):
        mean = float(image.mean())
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
        total += float(np.mean(gx * gx + gy * gy, dtype=np.float64)) / max(mean * mean, 1e-12)
        image = cv2.pyrDown(image)
    return total


def parabola_vertex(x: np.ndarray, y: np.ndarray, half_width: int = 3) -> float:
    """Vertex of ``y = A + B (x - x0)^2`` fitted (``numpy.polyfit``) over the points within ``half_width`` of the
    lowest one (NaN when it opens downward or lies outside the points fitted)."""
    ok = np.isfinite(y)
    if ok.sum() < 4:
        return math.nan
    i = int(np.nanargmin(np.where(ok, y, np.nan)))
    sel = ok & (np.abs(np.arange(len(x)) - i) <= half_width)
    if sel.sum() < 4:
        return math.nan
    c2, c1, _ = np.polyfit(x[sel], y[sel], 2)
    if not c2 > 0:
        return math.nan
    vertex = -c1 / (2.0 * c2)
    return float(vertex) if x[sel].min() <= vertex <= x[sel].max() else math.nan


def fit_plane(xy: np.ndarray, z: np.ndarray, outlier_sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane ``z = a + b x + c y`` with one round of ``outlier_sigma`` rejection:
    (coefficients, used)."""
    used = np.isfinite(z)
    coef = np.full(3, np.nan)
    for _ in range(2):
        if used.sum() < 3:
            break
        a = np.column_stack([np.ones(used.sum()), xy[used, 0], xy[used, 1]])
        coef, *_ = np.linalg.lstsq(a, z[used], rcond=None)
        res = z - (coef[0] + coef[1] * xy[:, 0] + coef[2] * xy[:, 1])
        sigma = float(np.sqrt(np.mean(res[used] ** 2)))
        keep = np.isfinite(z) & (np.abs(res) <= max(outlier_sigma * sigma, 1e-4))
        if keep.sum() == used.sum():
            break
        used = keep
    return coef, used
