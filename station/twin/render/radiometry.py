"""Radiometry of the twin's render (DESIGN 5, steps 1 and 3): the relative illumination
``cos^4 * (1 + a2 r^2 + a4 r^4)`` and each channel's electron rate, ``E = rho E_chart T / (4 N_w^2)`` with the
working f-number ``N_w = N v / f``, or the bare M sensor's ``T rho E_chart sin^2(alpha)``."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from station.twin import optics
from station.twin.render.charts import chart_definition, mean_reflectance
from station.twin.render.state import CHANNELS, SAPPHIRE_TRANSMISSION, OpticalState
from station.twin.sensor import SensorSpec, channel_gains, electrons_per_lux_s_m2


def relative_illumination(state: OpticalState, width: int, height: int, step: int = 8
                           ) -> tuple[np.ndarray, float, float]:
    """V(u, v) over the frame (float32) and the falloff coefficients (a2, a4).

    Exact on a grid every ``step`` px, bilinear in between (V is smooth: error ~ step^2 V'' / 8 < 1e-5).
    """
    a2, a4 = state.lens.falloff_coefficients(state.f_number) if state.lens else (0.0, 0.0)
    return _relative_map(state.cx, state.cy, state.fx, state.fy, a2, a4, width, height, step), a2, a4


@lru_cache(maxsize=2)
def _relative_map(cx: float, cy: float, fx: float, fy: float, a2: float, a4: float, width: int, height: int,
                  step: int) -> np.ndarray:
    """``relative_illumination``'s map (read-only, kept: it changes only with the lens state)."""
    pad = 1  # grid nodes beyond the frame: the interpolation never extrapolates
    nu, nv = -(-width // step) + 2 * pad, -(-height // step) + 2 * pad
    gu = (np.arange(nu) - pad) * step + (step - 1) / 2.0
    gv = (np.arange(nv) - pad) * step + (step - 1) / 2.0
    u = ((gu - cx) / fx)[None, :]
    v = ((gv - cy) / fy)[:, None]
    coarse = optics.relative_illumination(np.sqrt(u * u + v * v), a2, a4).astype(np.float32)
    fine = cv2.resize(coarse, (nu * step, nv * step), interpolation=cv2.INTER_LINEAR)
    fine = fine[pad * step:pad * step + height, pad * step:pad * step + width]
    fine.setflags(write=False)
    return fine


def electron_rates(world: Any, state: OpticalState, spec: SensorSpec, chart_name: str,
                    chart_size: tuple[float, float] | None, serial: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Electrons per second per pixel, per channel, for reflectance 1 on the axis (and the sums behind)."""
    lux = float(world.illuminance_lux())
    cct = float(getattr(world.light, "cct_k", 5000.0))
    unit = (channel_gains(serial) if getattr(world, "faults", {}).get("unit_variation")  # this unit's, or
            else {"r": 1.0, "g": 1.0, "b": 1.0})  # the golden module's channel sensitivities
    eta = {c: v * unit[c] for c, v in electrons_per_lux_s_m2(round(cct, 1)).items()}
    if state.lens is None:
        chart = chart_definition(chart_name, chart_size)
        half_angle_sin2 = (chart.width_mm * chart.height_mm / math.pi) / (
            chart.width_mm * chart.height_mm / math.pi + state.chart_distance_mm**2)
        reflectance = mean_reflectance(chart_name, chart_size)
        sensor_lux = {c: lux * SAPPHIRE_TRANSMISSION * reflectance[k] * half_angle_sin2
                      for k, c in enumerate(CHANNELS)}
        info = {"model": "bare sensor: T_sapphire * rho_mean * E * sin^2(alpha)", "sin2_alpha": half_angle_sin2,
                "transmission": SAPPHIRE_TRANSMISSION, "mean_reflectance": list(reflectance)}
    else:
        working = state.f_number * state.image_distance_mm / state.lens.focal_length_mm
        factor = state.lens.transmission / (4.0 * working * working)
        sensor_lux = {c: lux * factor for c in CHANNELS}
        info = {"model": "rho * E * T / (4 N_w^2)", "working_f_number": working,
                "transmission": state.lens.transmission}
    rates = {c: sensor_lux[c] * eta[c] * spec.pixel_area_m2 for c in CHANNELS}
    info.update({"illuminance_lux": lux, "cct_k": cct, "sensor_illuminance_lux": sensor_lux, "channel_gains": unit,
                 "electrons_per_lux_s_m2": eta, "electrons_per_s": rates})
    return rates, info
