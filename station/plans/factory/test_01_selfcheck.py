"""Station self-check, first in the factory plan: the mount homes and repeats, the light is linear against the
lux meter and the closed loop reaches a target illuminance (``station.procedures.selfcheck``).

A failure here is the station's, not the phone's: a value out of its limits is a station fault naming the
device (exit 3), and the run stops before it touches the phone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import allure

from station.plans.helpers import attach_all, station_check
from station.procedures import selfcheck

if TYPE_CHECKING:
    from station.station import Station


def test_mount_homing(station: Station, measure: Any) -> None:
    with allure.step(f"home the mount ($H) twice, the second time from {selfcheck.HOME_FROM_MM:g} mm"):
        homing = selfcheck.mount_homing(station)
    station_check(measure, homing.measurements, "mount")


def test_mount_repeatability(station: Station, measure: Any) -> None:
    with allure.step(f"approach {selfcheck.REPEAT_TARGET_MM:g} mm {selfcheck.REPEATS} times from both sides"):
        result = selfcheck.mount_repeatability(station)
    allure.attach("\n".join(f"{r:.4f}" for r in result.positions_mm), name="rail positions reached (mm)",
                  attachment_type=allure.attachment_type.TEXT)
    station_check(measure, result.measurements, "mount")


def test_light_linearity(station: Station, measure: Any) -> None:
    with allure.step(f"read the lux meter at {', '.join(f'{v:g}' for v in selfcheck.LEVELS_PCT)} % of full scale"):
        result = selfcheck.light_linearity(station)
    attach_all(result.figures())
    station_check(measure, result.measurements, "light")


def test_light_closed_loop(station: Station, measure: Any) -> None:
    with allure.step(f"closed loop to {selfcheck.CLOSED_LOOP_TARGET_LUX:g} lux, then read the lux meter again"):
        result = selfcheck.closed_loop(station)
    station_check(measure, result.measurements, "light")
