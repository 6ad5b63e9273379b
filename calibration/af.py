"""AF calibration of a voice-coil focused camera: infinity and macro actuator positions from through-focus
sweeps, and the hyperfocal check (what Qualcomm's ``is_afc`` / Rockchip's AF OTP items store per unit).

Sharpness is the normalized Tenengrad (Sobel gradient energy over squared mean, Krotkov 1988; Pertuz et
al., Pattern Recognition 46 (2013) "Analysis of focus measure operators", GRA6) of one green CFA plane in
a centred ROI. The best code of a sweep is the vertex of a parabola through the log sharpness at the
best sample and its two neighbours (a Gaussian peak).

The actuator model is linear: lens extension beyond infinity focus ``e = (code - c_inf) * k`` (um), and the
thin lens puts an object at ``D`` in focus at ``e(D) = f^2 / (D - f)``. Two sweeps at known chart
distances give both ``c_inf`` and ``k``; one gives ``c_inf`` with the nominal ``k``. Depth of focus (image
side) is ``+-N c`` with ``c`` the acceptable circle of confusion; the hyperfocal distance is
``H = f^2 / (N c) + f``: focused there, everything from ``H / 2`` to infinity is sharp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


def sharpness(raw: np.ndarray, black_level: float, roi_fraction: float = 0.3) -> float:
    """Normalized Tenengrad of the first green site's plane (RGGB/BGGR: (0, 1); others work alike) in the
    centred ROI covering ``roi_fraction`` of each side."""
    h, w = raw.shape
    rh, rw = int(h * roi_fraction) // 2 * 2, int(w * roi_fraction) // 2 * 2
    top, left = (h - rh) // 4 * 2, (w - rw) // 4 * 2
    plane = raw[top:top + rh:2, left + 1:left + rw:2].astype(np.float32) - np.float32(black_level)
    gx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3)
    mean = float(plane.mean())
    if mean <= 0:
        raise ValueError("AF: the ROI has no signal above black (is the light on, the chart up?)")
    return float(np.mean(gx * gx + gy * gy, dtype=np.float64)) / (mean * mean)


def peak_code(codes: list[float] | np.ndarray, scores: list[float] | np.ndarray) -> float:
    """The code of best focus: the vertex of a parabola through log(score) at the best sample and its
    neighbours; ValueError when the best sample is at an end of the sweep (the peak is outside it)."""
    c = np.asarray(codes, dtype=np.float64)
    s = np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-300))
    order = np.argsort(c)
    c, s = c[order], s[order]
    i = int(np.argmax(s))
    if i == 0 or i == len(c) - 1:
        raise ValueError(f"AF: sharpest at the sweep's end (code {c[i]:g}); widen the sweep")
    a, b, _ = np.polyfit(c[i - 1:i + 2], s[i - 1:i + 2], 2)
    if a >= 0:
        return float(c[i])
    return float(min(max(-b / (2.0 * a), c[i - 1]), c[i + 1]))


def extension_um(focal_length_mm: float, distance_mm: float) -> float:
    """Thin-lens extension beyond infinity focus for an object at ``distance_mm`` (lens to object), um."""
    if math.isinf(distance_mm):
        return 0.0
    return focal_length_mm * focal_length_mm / (distance_mm - focal_length_mm) * 1000.0


def hyperfocal_mm(focal_length_mm: float, f_number: float, coc_mm: float) -> float:
    """Hyperfocal distance ``f^2 / (N c) + f``, mm."""
    return focal_length_mm * focal_length_mm / (f_number * coc_mm) + focal_length_mm


@dataclass(frozen=True)
class AfCalibration:
    """The unit's actuator: infinity code, um per code, and the lens data it was computed with."""

    infinity_code: float
    um_per_code: float
    focal_length_mm: float
    f_number: float
    coc_mm: float
    measured: tuple[tuple[float, float], ...]  # (chart distance mm, best code) of each sweep

    def code_for(self, distance_mm: float) -> float:
        return self.infinity_code + extension_um(self.focal_length_mm, distance_mm) / self.um_per_code

    @property
    def depth_of_focus_um(self) -> float:
        """Half-width of the image-side depth of focus, ``N c``, um."""
        return self.f_number * self.coc_mm * 1000.0

    @property
    def hyperfocal_mm(self) -> float:
        return hyperfocal_mm(self.focal_length_mm, self.f_number, self.coc_mm)

    def to_dict(self, macro_distance_mm: float) -> dict[str, Any]:
        """The phone's AF block: infinity, macro and hyperfocal codes, with what they rest on."""
        return {"infinity_code": round(self.infinity_code, 2), "macro_code": round(self.code_for(macro_distance_mm), 2),
                "macro_distance_mm": macro_distance_mm, "hyperfocal_code": round(self.code_for(self.hyperfocal_mm), 2),
                "hyperfocal_mm": round(self.hyperfocal_mm, 1), "um_per_code": round(self.um_per_code, 5),
                "depth_of_focus_um": round(self.depth_of_focus_um, 2),
                "sweeps": [{"distance_mm": d, "best_code": round(c, 2)} for d, c in self.measured]}


def calibrate_af(measured: list[tuple[float, float]], focal_length_mm: float, f_number: float, coc_mm: float,
                 nominal_um_per_code: float) -> AfCalibration:
    """``c_inf`` (and ``k`` from two or more sweeps: least squares of ``code = c_inf + e(D) / k``) from
    (chart distance mm, best code) pairs; ValueError when there is none or the distances coincide."""
    if not measured:
        raise ValueError("AF: no through-focus sweep to calibrate from")
    ext = np.array([extension_um(focal_length_mm, d) for d, _ in measured])
    codes = np.array([c for _, c in measured], dtype=np.float64)
    if len(measured) == 1 or np.ptp(ext) < 1.0:
        if len(measured) > 1:
            raise ValueError("AF: the sweeps' chart distances are too close to separate offset and slope")
        k = float(nominal_um_per_code)
        c_inf = float(codes[0] - ext[0] / k)
    else:
        (inv_k, c_inf), *_ = np.linalg.lstsq(np.stack([ext, np.ones_like(ext)], axis=1), codes, rcond=None)
        k = 1.0 / float(inv_k)
    return AfCalibration(float(c_inf), k, focal_length_mm, f_number, coc_mm,
                         tuple((float(d), float(c)) for d, c in measured))


def hyperfocal_check(sharpness_at_hyperfocal: float, best_sharpness: float, min_ratio: float = 0.5) -> dict[str, Any]:
    """Focused at the hyperfocal code, a chart far away (beyond H / 2) stays near its best sharpness."""
    ratio = sharpness_at_hyperfocal / best_sharpness if best_sharpness > 0 else 0.0
    return {"ratio": ratio, "min_ratio": min_ratio, "pass": bool(ratio >= min_ratio)}
