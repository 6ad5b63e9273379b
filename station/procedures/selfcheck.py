"""Station self-check: the light is linear against the lux meter, the closed loop reaches a target illuminance,
the mount homes and repeats. First in the factory plan: a failure here is the station's, not the phone's.

- light linearity: the meter's illuminance at ``LEVELS_PCT`` of the light's full scale, a straight-line fit
  (least squares), its R^2 and the largest deviation from it in % of the highest reading;
- closed loop: ``station.devices.light.set_illuminance`` to ``CLOSED_LOOP_TARGET_LUX``, then the meter read
  again: the error in % of the target;
- homing: ``$H`` twice (the second time from far away): the rail positions reached differ by the homing error;
- repeatability: ``REPEATS`` approaches of ``REPEAT_TARGET_MM``, alternately from below and from above (the
  backlash shows): the spread (max - min) of the positions reached.

Where the rail is: the controller's ``MPos`` on a bench; on the twin its truth (the same value, but from the
world rather than from the controller under test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from station.devices.light import set_illuminance
from station.measurements import Declared, measures
from station.procedures.captures import lit
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

LEVELS_PCT = (20.0, 40.0, 60.0, 80.0)
CLOSED_LOOP_TARGET_LUX = 1000.0
HOME_FROM_MM = 1000.0
REPEAT_TARGET_MM = 800.0
REPEAT_FROM_MM = (600.0, 1000.0)  # approach the target alternately from below and from above
REPEATS = 5


def rail_mm(station: Station) -> float:
    """Where the rail is, as the controller reports it (MPos): the station's own reading, bench or twin."""
    return float(station.mount.position()["distance"])


@dataclass
class LightLinearity(ResultParts):
    """Meter readings against light level and their straight-line fit."""

    levels_pct: np.ndarray
    lux: np.ndarray
    slope_lux_per_pct: float
    offset_lux: float

    @property
    def residual_lux(self) -> np.ndarray:
        return self.lux - (self.slope_lux_per_pct * self.levels_pct + self.offset_lux)

    @property
    def r2(self) -> float:
        total = float(np.sum((self.lux - self.lux.mean()) ** 2))
        return 1.0 - float(np.sum(self.residual_lux ** 2)) / total if total > 0 else 0.0

    @property
    def max_dev_pct(self) -> float:
        """Largest deviation from the fit in % of the highest reading."""
        top = float(np.max(np.abs(self.lux)))
        return float(np.max(np.abs(self.residual_lux)) / top * 100.0) if top > 0 else float("inf")

    @measures(Declared("light_linearity_r2", "1", "", "station"),
              Declared("light_linearity_max_dev_pct", "%", "", "station"))
    def measurements(self) -> dict[str, float]:
        return {"light_linearity_r2": self.r2, "light_linearity_max_dev_pct": self.max_dev_pct}

    def to_dict(self) -> dict[str, Any]:
        return {"levels_pct": self.levels_pct.tolist(), "lux": self.lux.tolist(),
                "slope_lux_per_pct": self.slope_lux_per_pct, "offset_lux": self.offset_lux, "r2": self.r2,
                "max_dev_pct": self.max_dev_pct}

    def figures(self) -> dict[str, bytes]:
        from calibration.figures import figure_png, new_figure

        fig, ax = new_figure(figsize=(6.0, 4.0), dpi=100)
        ax.plot(self.levels_pct, self.lux, "o", label="lux meter")
        x = np.array([0.0, 100.0])
        ax.plot(x, self.slope_lux_per_pct * x + self.offset_lux, "-", lw=1,
                label=f"fit {self.slope_lux_per_pct:.4g} lux/% {self.offset_lux:+.3g} lux")
        ax.set_xlabel("light level (% of full scale)")
        ax.set_ylabel("illuminance at the chart (lux)")
        ax.set_title(f"Light linearity against the lux meter: R^2 {self.r2:.5f}")
        ax.grid(True, alpha=0.3)
        ax.legend()
        return {"light linearity": figure_png(fig)}


def light_linearity(station: Station, levels_pct: tuple[float, ...] = LEVELS_PCT) -> LightLinearity:
    """The meter's reading at each level (the light settled each time, off afterwards), and the fit."""
    readings = []
    for level in levels_pct:
        with lit(station, level):
            readings.append(float(station.meter.illuminance_lux()))
    levels, lux = np.asarray(levels_pct, dtype=np.float64), np.asarray(readings)
    slope, offset = np.polyfit(levels, lux, 1)
    return LightLinearity(levels, lux, float(slope), float(offset))


@dataclass
class ClosedLoop(ResultParts):
    target_lux: float
    reading_lux: float
    level_pct: float

    @property
    def error_pct(self) -> float:
        return abs(self.reading_lux - self.target_lux) / self.target_lux * 100.0

    @measures(Declared("light_closed_loop_error_pct", "%", "", "station"))
    def measurements(self) -> dict[str, float]:
        return {"light_closed_loop_error_pct": self.error_pct}

    def to_dict(self) -> dict[str, Any]:
        return {"target_lux": self.target_lux, "reading_lux": self.reading_lux, "level_pct": self.level_pct,
                "error_pct": self.error_pct}


def closed_loop(station: Station, target_lux: float = CLOSED_LOOP_TARGET_LUX) -> ClosedLoop:
    """Set ``target_lux`` through the closed loop, read the meter again; the light is off afterwards."""
    try:
        set_illuminance(station.light, station.meter, target_lux)
        reading = float(station.meter.illuminance_lux())
        level = float(station.light.level_pct())
    finally:
        station.light.set_output(False)
    return ClosedLoop(float(target_lux), reading, level)


@dataclass
class RailSpread(ResultParts):
    """Rail positions (mm, where the controller says it is) that should coincide: their spread, max - min."""

    positions_mm: list[float] = field(default_factory=list)

    @property
    def spread_mm(self) -> float:
        return float(max(self.positions_mm) - min(self.positions_mm))


class Homing(RailSpread):
    """Where ``$H`` homed the rail, each time."""

    @measures(Declared("mount_home_error_mm", "mm", "", "station"))
    def measurements(self) -> dict[str, float]:
        return {"mount_home_error_mm": self.spread_mm}


@dataclass
class Repeatability(RailSpread):
    """Where the rail got to, approaching ``target_mm`` alternately from either side."""

    target_mm: float = 0.0

    @measures(Declared("mount_repeatability_mm", "mm", "", "station"))
    def measurements(self) -> dict[str, float]:
        return {"mount_repeatability_mm": self.spread_mm}


def mount_homing(station: Station, away_mm: float = HOME_FROM_MM) -> Homing:
    """Home twice, the second time after a move ``away_mm`` out: the homed positions must agree."""
    result = Homing()
    for attempt in (1, 2):
        if attempt == 2:
            station.mount.move_to(distance=away_mm)
        station.mount.home()
        result.positions_mm.append(rail_mm(station))
    return result


def mount_repeatability(station: Station, target_mm: float = REPEAT_TARGET_MM,
                        from_mm: tuple[float, float] = REPEAT_FROM_MM, repeats: int = REPEATS) -> Repeatability:
    """``repeats`` approaches of ``target_mm``, alternately from each of ``from_mm``: where the rail got to."""
    result = Repeatability(target_mm=float(target_mm))
    for k in range(repeats):
        station.mount.move_to(distance=from_mm[k % 2])
        station.mount.move_to(distance=target_mm)
        result.positions_mm.append(rail_mm(station))
    return result
