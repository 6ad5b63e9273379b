"""AF calibration of the main camera (``calibration.af``): through-focus sweeps of its voice-coil code with a
chart at the rail's far end (infinity, by the thin lens) and near end (macro), then the hyperfocal check.

The caller puts a chart with fine detail over the whole view up (the slanted-edge chart) and switches the
light on. The sweep window comes from the actuator module's datasheet (its nominal infinity code and stroke);
the unit's own offset is what the sweep finds. The rail is left at the far end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from station.measurements import Declared, measures
from station.procedures import SweepError
from station.procedures.captures import auto_exposure_us, capture_shot, move_rail
from station.procedures.framing import lens_datasheet, rail_limits, sensor_geometry
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The voice-coil module's datasheet: the code a nominal module focuses at infinity, um of lens travel per code.
NOMINAL_INFINITY_CODE = 100.0
NOMINAL_UM_PER_CODE = 1.0
#: The sweep: this many codes either side of the nominal code for the distance, in this step.
SWEEP_HALF_CODES = 96
SWEEP_STEP_CODES = 16
#: Acceptable circle of confusion, pixels (DESIGN 7: in focus within 2 preview pixels).
COC_PX = 2.0


@dataclass
class AfMeasurement(ResultParts):
    """The unit's AF calibration, its sweeps and the hyperfocal check."""

    calibration: Any  # calibration.af.AfCalibration
    macro_distance_mm: float
    sweeps: list[dict[str, Any]]
    hyperfocal: dict[str, Any]

    def phone_entries(self) -> dict[str, Any]:
        return {"af": self.phone_entry()}

    def phone_entry(self) -> dict[str, Any]:
        return self.calibration.to_dict(self.macro_distance_mm) | {"hyperfocal_check": self.hyperfocal}

    @measures(Declared("af_infinity_code", "code", "main"), Declared("af_um_per_code", "um", "main"),
              Declared("af_hyperfocal_ratio", "1", "main"))
    def measurements(self) -> dict[str, float]:
        """The unit's infinity code and stroke per code, and the hyperfocal check's sharpness ratio."""
        return {"af_infinity_code": float(self.calibration.infinity_code),
                "af_um_per_code": float(self.calibration.um_per_code),
                "af_hyperfocal_ratio": float(self.hyperfocal["ratio"])}


def _focus(station: Station, code: int) -> None:
    station.dut.configure("main", focus_code=int(code))


def _sweep(station: Station, distance_mm: float) -> tuple[float, list[int], list[float]]:
    from calibration.af import extension_um, peak_code, sharpness

    sheet = lens_datasheet("main", None)
    centre = NOMINAL_INFINITY_CODE + extension_um(sheet.focal_length_mm, distance_mm) / NOMINAL_UM_PER_CODE
    codes = [int(c) for c in np.arange(round(centre) - SWEEP_HALF_CODES, round(centre) + SWEEP_HALF_CODES + 1,
                                       SWEEP_STEP_CODES) if c >= 0]
    move_rail(station, distance_mm)
    _focus(station, codes[len(codes) // 2])
    auto_exposure_us(station, "main", target_fraction=0.5, statistic="p99")
    scores = []
    for code in codes:
        _focus(station, code)
        frame = capture_shot(station, "main").frame
        scores.append(sharpness(frame.data, frame.black_level))
    try:
        return peak_code(codes, scores), codes, scores
    except ValueError as exc:
        raise SweepError(f"main: AF sweep at {distance_mm:g} mm: {exc}") from None


def calibrate_main_af(station: Station, *, far_mm: float | None = None, near_mm: float | None = None) -> AfMeasurement:
    """Sweeps at the rail's far and near ends (or the distances given), the unit's infinity and macro codes,
    and the hyperfocal check at the far end."""
    from calibration.af import calibrate_af, hyperfocal_check, sharpness

    far = rail_limits(station, far_mm if far_mm is not None else 1e9)
    near = rail_limits(station, near_mm if near_mm is not None else 0.0)
    sheet = lens_datasheet("main", None)
    coc_mm = COC_PX * sensor_geometry(station, "main").pixel_pitch_um * 1e-3
    measured, sweeps = [], []
    for distance in (near, far):
        best, codes, scores = _sweep(station, distance)
        measured.append((distance, best))
        sweeps.append({"distance_mm": distance, "codes": codes, "sharpness": scores, "best_code": best})
    cal = calibrate_af(measured, sheet.focal_length_mm, float(sheet.apertures[0]), coc_mm, NOMINAL_UM_PER_CODE)
    _focus(station, int(round(cal.code_for(cal.hyperfocal_mm))))
    frame = capture_shot(station, "main").frame  # the rail is at the far end: inside [H/2, inf)
    check = hyperfocal_check(sharpness(frame.data, frame.black_level), max(sweeps[-1]["sharpness"]))
    station.dut.configure("main", focus_code=None, focus_m=None)
    return AfMeasurement(cal, near, sweeps, check | {"distance_mm": far})
