"""The twin makes a line: stations with their own systematic errors, phones that vary unit to unit.

Three injectable "faults" switch it on (``--twin-fault line_station=N``, ``--twin-fault line_unit``):

- ``line_station=N``: this twin is station N (1, 2, ...) of a simulated line. Its systematic errors
  are drawn from a generator seeded by N alone, so station N is the same station in every run:
  the light box's non-uniformity (relative illuminance at the frame corner, the light calibration),
  the rail's zero offset (mount offset) and the chart holder's distance error, and a tilt of the
  chart holder. ``station_errors(N)`` is their truth.
- ``line_unit``: the phone (its seed) varies unit to unit: the main lens's aberration blur and its
  falloff coefficient, drawn from a generator seeded by the phone seed. About one unit in twelve
  has a decentred element (9 um more blur, in quadrature), so a line has units that fail.
  ``unit_variation(seed)`` is their truth.
- ``line_repeat=K``: the K-th repeat of a unit on a station: the same unit and station, fresh
  temporal noise (``noise_seed``), so repeat runs measure repeatability.

The render (``station.twin.render.state.optical_state`` and
``station.twin.render.frame.render_mean_electrons``) reads these through ``true_distance_mm``,
``true_tilt_deg``, ``unit_lens`` and ``light_field``; everything here is a pure function of the
world's faults and seed (no calibration import: DESIGN 1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

LINE_FAULTS = {
    "line_station": "this twin is station N (1..99) of a simulated line, with its seeded systematic errors "
                    "(light non-uniformity, rail offset, chart distance, chart tilt)",
    "line_unit": "the phone varies unit to unit by its seed (main lens blur and falloff; some units defective)",
    "line_repeat": "the run's repeat number N on a line: the frames' temporal noise differs from repeat to repeat",
}
#: Standard deviations of the station errors across a line (representative bench tolerances).
STATION_SIGMA = {"light_corner_pct": 2.0, "rail_offset_mm": 2.0, "chart_distance_mm": 3.0, "chart_tilt_deg": 0.3}
#: Unit-to-unit spread: main-lens blur (um, mean and sigma), falloff a2 (sigma), defect rate and factor.
UNIT_BLUR_UM = (2.0, 0.8)
UNIT_A2_SIGMA = 0.12
UNIT_DEFECT_RATE = 1.0 / 12.0
#: A defective unit (a decentred element) adds this blur, um, in quadrature: its MTF50 fails its limit.
UNIT_DEFECT_BLUR_UM = 9.0


def station_errors(station: int) -> dict[str, float]:
    """Station ``station``'s systematic errors (its truth): light corner %, rail and chart mm, tilt deg."""
    rng = np.random.default_rng([0x5A7, int(station)])
    return {name: float(round(rng.normal(0.0, sigma), 6)) for name, sigma in STATION_SIGMA.items()}


def unit_variation(seed: int) -> dict[str, Any]:
    """Phone ``seed``'s main-lens variation (its truth): blur sigma um, falloff a2 delta, defective."""
    rng = np.random.default_rng([0x0417, int(seed)])
    blur = max(0.3, rng.normal(*UNIT_BLUR_UM))
    a2_delta = rng.normal(0.0, UNIT_A2_SIGMA)
    defective = bool(rng.random() < UNIT_DEFECT_RATE)
    if defective:
        blur = math.hypot(blur, UNIT_DEFECT_BLUR_UM)
    return {"aberration_sigma_um": float(blur), "falloff_a2_delta": float(a2_delta), "defective": defective}


def _faults(world: Any) -> dict[str, Any]:
    faults = getattr(world, "faults", None)
    return faults if isinstance(faults, dict) else {}


def _station(world: Any) -> dict[str, float] | None:
    number = _faults(world).get("line_station")
    if number is None or number is False:
        return None
    return station_errors(int(number))


def true_distance_mm(world: Any, commanded_mm: float) -> float:
    """Lens-to-chart distance the station really has at a commanded rail distance."""
    errors = _station(world)
    return commanded_mm if errors is None else commanded_mm + errors["rail_offset_mm"] + errors["chart_distance_mm"]


def true_tilt_deg(world: Any, commanded_deg: float) -> float:
    """Chart tilt the station really has at a commanded tilt."""
    errors = _station(world)
    return commanded_deg if errors is None else commanded_deg + errors["chart_tilt_deg"]


def unit_lens(world: Any, lens: Any) -> Any:
    """The phone's own main lens as this unit has it (the catalog lens when ``line_unit`` is off)."""
    if not _faults(world).get("line_unit"):
        return lens
    unit = unit_variation(int(getattr(world, "seed", 1)))
    vignetting = {n: (a2 + unit["falloff_a2_delta"], a4) for n, (a2, a4) in lens.vignetting.items()}
    return dataclasses.replace(lens, aberration_sigma_um=unit["aberration_sigma_um"], vignetting=vignetting)


def noise_seed(world: Any) -> int:
    """The seed of the frames' temporal noise: the world's seed, mixed with ``line_repeat`` when set."""
    seed = int(getattr(world, "seed", 1))
    repeat = _faults(world).get("line_repeat")
    if repeat is None or repeat is False:
        return seed
    return seed + 1_000_003 * int(repeat)


def light_field(world: Any, width: int, height: int) -> np.ndarray | None:
    """The light box's relative illuminance over the frame, ``1 + c (r / r_corner)^2`` (None: uniform).

    ``c`` is the station's ``light_corner_pct / 100``; ``r`` the distance from the frame centre, px.
    """
    errors = _station(world)
    if errors is None or errors["light_corner_pct"] == 0.0:
        return None
    c = errors["light_corner_pct"] / 100.0
    half_w, half_h = (width - 1) / 2.0, (height - 1) / 2.0
    corner2 = half_w * half_w + half_h * half_h
    x2 = ((np.arange(width, dtype=np.float32) - half_w) ** 2)[None, :]
    y2 = ((np.arange(height, dtype=np.float32) - half_h) ** 2)[:, None]
    return (1.0 + c * (x2 + y2) / corner2).astype(np.float32)


def line_truth(stations: int, seeds: list[int]) -> dict[str, Any]:
    """The truth of a simulated line: every station's errors and every unit's variation."""
    if stations < 1 or not all(math.isfinite(s) for s in seeds):
        raise ValueError("a line needs at least one station")
    return {"stations": {str(n): station_errors(n) for n in range(1, stations + 1)},
            "units": {str(seed): unit_variation(seed) for seed in seeds},
            "sigmas": {"station": STATION_SIGMA, "unit_blur_um": list(UNIT_BLUR_UM),
                       "unit_a2_sigma": UNIT_A2_SIGMA, "defect_rate": UNIT_DEFECT_RATE}}
