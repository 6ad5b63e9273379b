"""A twin started for a test module, with every device open and the mount homed: the common setup of the
procedure tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from station.config import TwinConfig
from station.operator.twin import TwinOperator
from station.scene import Scene
from station.station import Station
from station.twin.runner import Twin


@contextlib.contextmanager
def twin_station(seed: int = 1, distance_mm: float | None = None) -> Iterator[Station]:
    """A homed station on a fresh twin (no real waiting); left safe and closed afterwards."""
    with Twin(TwinConfig(time_scale=0.0, seed=seed)) as twin:
        station = Station.open(twin.config)
        station.operator = Scene(station, TwinOperator(station.twin))
        try:
            station.mount.home()
            if distance_mm is not None:
                station.mount.move_to(distance=distance_mm)
            yield station
        finally:
            station.safe_state()
            station.close()


def station_fixture(seed: int = 1, distance_mm: float | None = None) -> Any:
    """A module's ``station`` fixture: ``twin_station(seed, distance_mm)`` once for the module's tests
    (``station = station_fixture(seed=9)`` at module level)."""

    @pytest.fixture(scope="module", name="station")
    def station() -> Iterator[Station]:
        with twin_station(seed, distance_mm) as st:
            yield st

    return station
