"""The Siemens star: focus peaking calibrated through the phone's preview (and the flat field's noise) for the
main sensor, verified there, and for the M sensor through each M lens wide open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from station.plans import steps
from station.plans.helpers import wide_open

if TYPE_CHECKING:
    from station.station import Station


def test_peaking_calibration(station: Station, operator: Any, measure: Any) -> None:
    steps.peaking_calibration(station, operator, measure, "main", verify=True)


def test_lens_peaking_calibration(station: Station, operator: Any, m_lens: str, measure: Any) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.peaking_calibration(station, operator, measure, "m", m_lens, wide_open(m_lens))


def test_peaking_flat_verification(station: Station, operator: Any, measure: Any) -> None:
    steps.peaking_flats_verified(station, operator, measure, "main")
