"""SCPI lux meter over VISA at the chart plane (DESIGN 3.1): ``MEAS:ILL?`` lux, ``MEAS:CCT?`` K."""

from __future__ import annotations

from station.config import InstrumentConfig
from station.devices.registry import register
from station.devices.visa import VisaInstrument


@register("meter", "scpi")
class ScpiLuxMeter(VisaInstrument):
    """An illuminance meter speaking SCPI; a ``LuxMeter``."""

    def __init__(self, config: InstrumentConfig, name: str = "meter", *, visa_library: str = "@py") -> None:
        super().__init__(config, name, visa_library=visa_library)

    def illuminance_lux(self) -> float:
        """One illuminance reading, lux (negative readings are refused as garbage)."""
        return self._reading(self.dialect.meas_ill, "an illuminance >= 0 lux")

    def cct_k(self) -> float:
        """Correlated colour temperature of the light at the chart plane, K (0 when dark)."""
        return self._reading(self.dialect.meas_cct, "a colour temperature >= 0 K")

    def _reading(self, command: str, expected: str) -> float:
        """A measurement query's number; a negative one is garbage (``expected`` says what was due)."""
        value = self.query_float(command)
        if value < 0:
            raise self.garbage(command, f"{value:g}", expected)
        return value
