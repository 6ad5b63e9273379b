"""Defocus and PSF of the twin's lens (DESIGN 5, step 3): the thin-lens blur circle each pixel sees, and a
field-varying defocus as a few blended levels of the Gaussian * pillbox PSF (``optics.PSF_MODEL``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from station.twin import optics
from station.twin.render.projection import sensor_to_normalized
from station.twin.render.state import BLUR_LEVEL_RATIO, MAX_BLUR_LEVELS, OpticalState


def blur_diameter_px(state: OpticalState, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Thin-lens blur circle diameter (px) at sensor pixels (u, v), for the chart depth each one sees."""
    lens = state.lens
    x, y = sensor_to_normalized(u, v, state, "g")
    rotation, translation = optics.chart_extrinsics(state.pan_deg, state.tilt_deg, state.chart_distance_mm, 0, 0)
    normal = rotation[:, 2]  # chart plane normal in the camera frame
    plane = float(normal @ translation)
    denom = normal[0] * x + normal[1] * y + normal[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(denom > 1e-9, plane / denom, np.inf)  # axial object distance, mm
    image = optics.image_distance_mm(lens.focal_length_mm, depth)
    sensor_z = np.full_like(x, state.image_distance_mm)
    if state.tilt_x_deg or state.tilt_y_deg:
        n = optics.sensor_normal(state.tilt_x_deg, state.tilt_y_deg)
        sensor_z = state.image_distance_mm * n[2] / (n[0] * x + n[1] * y + n[2])
    diameter = optics.blur_circle_mm(state.pupil_mm, sensor_z, image) / state.pitch_mm
    return np.where(np.isfinite(diameter), diameter, 0.0)


def blur_field(state: OpticalState, width: int, height: int, margin: int, step: int = 16) -> np.ndarray:
    """Blur circle diameter (px) on a coarse grid over the window (H+2m, W+2m), every ``step`` px.

    Grid node (i, j) sits where ``cv2.resize`` by the integer factor ``step`` puts its source sample
    (``_upsample``), window pixel ``(i + 0.5) * step - 0.5``.
    """
    out_w, out_h = width + 2 * margin, height + 2 * margin
    nu, nv = -(-out_w // step), -(-out_h // step)
    gu = np.arange(nu) * step + (step - 1) / 2.0 - margin
    gv = np.arange(nv) * step + (step - 1) / 2.0 - margin
    uu, vv = np.meshgrid(gu, gv)
    return blur_diameter_px(state, uu, vv).astype(np.float32)


def _upsample(coarse: np.ndarray, step: int, width: int, height: int) -> np.ndarray:
    """A smooth field on ``blur_field``'s grid, bilinearly resized to (height, width) float32."""
    fine = cv2.resize(coarse, (coarse.shape[1] * step, coarse.shape[0] * step), interpolation=cv2.INTER_LINEAR)
    return fine[:height, :width]


def psf_width_px(sigma_px: float, diameter_px: float) -> float:
    """RMS width (px, per axis) of the Gaussian * pillbox PSF: a disc of diameter d has variance d^2/16."""
    return math.sqrt(sigma_px * sigma_px + diameter_px * diameter_px / 16.0)


def blur_range(state: OpticalState, width: int, height: int, step: int = 64) -> tuple[float, float]:
    """Smallest and largest blur circle diameter (px) over the frame."""
    uu, vv = np.meshgrid(np.linspace(-0.5, width - 0.5, width // step + 2),
                         np.linspace(-0.5, height - 0.5, height // step + 2))
    d = blur_diameter_px(state, uu, vv)
    return float(d.min()), float(d.max())


@dataclass(frozen=True)
class BlurLevels:
    """A field-varying defocus as a few blur-circle levels and each pixel's blend weights."""

    diameters: tuple[float, ...]
    weights: tuple[np.ndarray | None, ...]  # float32 like the window; None where a level has no pixel


def blur_levels(coarse_px: np.ndarray, sigma_px: float, step: int, width: int, height: int) -> BlurLevels:
    """Levels of blur circle diameter spanning a coarse field, evenly spaced in log PSF RMS width.

    Adjacent levels differ by at most ``BLUR_LEVEL_RATIO`` in RMS width (at most ``MAX_BLUR_LEVELS``);
    each pixel blends its two neighbouring levels linearly in log width (weights computed on the
    coarse grid of ``blur_field`` and resized to the window, (height, width)).
    """
    field = np.asarray(coarse_px, dtype=np.float64)
    log_width = np.log(np.sqrt(sigma_px * sigma_px + field * field / 16.0 + 1e-6))
    lo, hi = float(log_width.min()), float(log_width.max())
    n = int(min(MAX_BLUR_LEVELS, max(2, math.ceil((hi - lo) / math.log(BLUR_LEVEL_RATIO)) + 1)))
    levels = np.linspace(lo, hi, n)
    diameters = tuple(float(4.0 * math.sqrt(max(math.exp(2 * w) - 1e-6 - sigma_px * sigma_px, 0.0)))
                      for w in levels)
    position = (log_width - lo) * ((n - 1) / max(hi - lo, 1e-12))
    weights: list[np.ndarray | None] = []
    for i in range(n):
        weight = np.maximum(1.0 - np.abs(position - i), 0.0).astype(np.float32)
        weights.append(_upsample(weight, step, width, height) if weight.any() else None)
    return BlurLevels(diameters, tuple(weights))


def apply_psf(image: np.ndarray, sigma_px: float, blur: float | BlurLevels) -> np.ndarray:
    """PSF on a window: one kernel for a uniform defocus, else the blend of the levels' blurs."""
    if not isinstance(blur, BlurLevels):
        return optics.blur(image, sigma_px, float(blur))
    out = np.zeros_like(image)
    for diameter, weight in zip(blur.diameters, blur.weights, strict=True):
        if weight is not None:
            out += weight * optics.blur(image, sigma_px, diameter)
    return out
