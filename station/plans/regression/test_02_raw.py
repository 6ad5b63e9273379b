"""Firmware regression, RAW: 10-bit RAW integrity of each sensor (every code present, the declared black level
and CFA order, RAW10 = DNG), compared with the approved build's baseline when one is given.

The M sensor sees the charts through the run's first M lens (the bare sensor images none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans import steps
from station.plans.conftest import configured_lenses

if TYPE_CHECKING:
    from station.station import Station


@pytest.mark.parametrize("sensor", ["main", "m"])
def test_raw_integrity(sensor: str, station: Station, operator: Any, measure: Any,
                       request: pytest.FixtureRequest) -> None:
    lens = None
    if sensor == "m":
        lenses = configured_lenses(request.config)
        if not lenses:
            pytest.skip("RAW integrity of the M sensor needs an M lens to see the charts: give --lens")
        lens = lenses[0]
        operator.lens(lens, None)
    steps.raw_integrity(station, operator, measure, sensor, lens)
