"""AWB against the golden module (``calibration.awb``): the unit's R/G and B/G on a flat grey at the two
reference illuminants of the golden file (``station.golden``), their ratios to the golden values, and the
calibration transforms the phone stores (Android ``SENSOR_CALIBRATION_TRANSFORM1/2``).

The caller puts the flat diffuser up (grey, spectrally neutral). The light's CCT is set per illuminant and
put back as it was (the next step's frames see the plan's light); the light is left off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from station.golden import ILLUMINANTS, load_golden_awb
from station.measurements import Declared, measures
from station.procedures import ProcedureError
from station.procedures.captures import auto_exposure_us, light_off, set_light
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The flat's brightest channel at this fraction of full scale.
FLAT_LEVEL = 0.5


@dataclass
class AwbMeasurement(ResultParts):
    """One sensor's AWB calibration at both illuminants."""

    sensor: str
    results: list[Any]  # calibration.awb.AwbCalibration per illuminant
    illuminants: list[str]  # Android names

    def phone_entry(self) -> dict[str, Any]:
        from calibration.awb import android_transforms

        return {"illuminants": [r.to_dict() for r in self.results]} | android_transforms(self.results,
                                                                                          self.illuminants)

    def phone_entries(self) -> dict[str, Any]:
        return {"awb": self.phone_entry()}

    @measures(Declared("awb_golden_deviation_pct", "%", "{sensor}"))
    def measurements(self) -> dict[str, float]:
        return {"awb_golden_deviation_pct": self.worst_ratio_pct()}

    def worst_ratio_pct(self) -> float:
        """The largest departure of the unit's ratios from golden, % (how far the unit is from golden)."""
        return max(100.0 * abs(v - 1.0) for r in self.results for v in (r.r_ratio, r.b_ratio))


def measure_awb(station: Station, sensor: str, *, level_pct: float = 40.0, golden: dict[str, Any] | None = None
                ) -> AwbMeasurement:
    """Flat grey at each golden illuminant's CCT; ratios to golden. The caller puts the flat diffuser up."""
    from calibration.awb import awb_against_golden

    table = (golden or load_golden_awb()).get(sensor)
    if table is None:
        raise ProcedureError(f"{sensor}: the golden file has no AWB values for this sensor")
    results, names = [], []
    cct_before_k = station.light.cct_k()
    try:
        for illuminant in ILLUMINANTS:
            entry = table[illuminant]
            station.light.set_cct_k(entry["cct_k"])
            set_light(station, level_pct)
            _, shot = auto_exposure_us(station, sensor, target_fraction=FLAT_LEVEL)
            frame = shot.frame
            try:
                results.append(awb_against_golden(frame.data, frame.black_level, frame.cfa, entry["cct_k"], entry))
            except ValueError as exc:
                raise ProcedureError(f"{sensor}: AWB at {entry['cct_k']:g} K: {exc}") from None
            names.append(entry["android_illuminant"])
    finally:
        light_off(station)
        station.light.set_cct_k(cct_before_k)
    return AwbMeasurement(sensor, results, names)
