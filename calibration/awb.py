"""White balance against the golden module: a unit's raw R/G and B/G on a flat grey, their ratios to the
golden module's, and the calibration transform that maps the golden (reference) sensor's colour space to
this unit's (Android ``SENSOR_CALIBRATION_TRANSFORM1/2``; DNG 1.6 ``CameraCalibration1/2``, sec. 6.3).

A unit whose channel sensitivities differ from the golden module's by per-channel factors sees raw values
``c_unit = g_c c_golden``. With G as the reference channel, the transform is the diagonal
``diag((R/G)_unit / (R/G)_golden, 1, (B/G)_unit / (B/G)_golden)``, one per reference illuminant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def channel_means(raw: np.ndarray, black_level: float, cfa: str, roi_fraction: float = 0.25) -> dict[str, float]:
    """Mean of each colour over the centred ROI (``roi_fraction`` of width and height), black subtracted;
    the two greens averaged."""
    h, w = raw.shape
    rh, rw = max(int(h * roi_fraction) // 2 * 2, 2), max(int(w * roi_fraction) // 2 * 2, 2)
    top, left = (h - rh) // 4 * 2, (w - rw) // 4 * 2
    roi = raw[top:top + rh, left:left + rw]
    sums: dict[str, list[float]] = {}
    for index, colour in enumerate(cfa.upper()):
        plane = roi[index // 2::2, index % 2::2]
        sums.setdefault(colour, []).append(float(plane.mean(dtype=np.float64)) - float(black_level))
    return {c: float(np.mean(v)) for c, v in sums.items()}


def channel_ratios(raw: np.ndarray, black_level: float, cfa: str, roi_fraction: float = 0.25) -> tuple[float, float]:
    """(R/G, B/G) of a flat grey capture; ValueError when G has no signal."""
    means = channel_means(raw, black_level, cfa, roi_fraction)
    if means["G"] <= 0:
        raise ValueError("AWB: the green channel has no signal above black (is the light on?)")
    return means["R"] / means["G"], means["B"] / means["G"]


@dataclass(frozen=True)
class AwbCalibration:
    """One illuminant's result: the unit's ratios, the golden ones, and unit / golden."""

    cct_k: float
    r_g: float
    b_g: float
    golden_r_g: float
    golden_b_g: float

    @property
    def r_ratio(self) -> float:
        return self.r_g / self.golden_r_g

    @property
    def b_ratio(self) -> float:
        return self.b_g / self.golden_b_g

    def calibration_transform(self) -> list[list[float]]:
        """Android ``SENSOR_CALIBRATION_TRANSFORM``: reference (golden) sensor space -> this unit's."""
        return np.diag([self.r_ratio, 1.0, self.b_ratio]).tolist()

    def to_dict(self) -> dict[str, Any]:
        return {"cct_k": self.cct_k, "r_g": self.r_g, "b_g": self.b_g, "golden_r_g": self.golden_r_g,
                "golden_b_g": self.golden_b_g, "r_ratio": self.r_ratio, "b_ratio": self.b_ratio,
                "calibration_transform": self.calibration_transform()}


def awb_against_golden(raw: np.ndarray, black_level: float, cfa: str, cct_k: float,
                       golden: Mapping[str, Any]) -> AwbCalibration:
    """The unit's ratios on a flat grey at ``cct_k`` against ``golden`` (``r_g``, ``b_g`` at that CCT)."""
    r_g, b_g = channel_ratios(raw, black_level, cfa)
    return AwbCalibration(float(cct_k), r_g, b_g, float(golden["r_g"]), float(golden["b_g"]))


def android_transforms(results: list[AwbCalibration], illuminants: list[str]) -> dict[str, Any]:
    """``SENSOR_REFERENCE_ILLUMINANT1/2`` and ``SENSOR_CALIBRATION_TRANSFORM1/2`` (row-major 3x3)."""
    out: dict[str, Any] = {}
    for index, (result, illuminant) in enumerate(zip(results, illuminants, strict=True), start=1):
        out[f"SENSOR_REFERENCE_ILLUMINANT{index}"] = illuminant
        out[f"SENSOR_CALIBRATION_TRANSFORM{index}"] = [v for row in result.calibration_transform() for v in row]
    return out
