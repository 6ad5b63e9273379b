"""The twin phone a plan runs on when the station starts the twin itself: a line's unit, not the golden module.

A line's units differ: the factory plan's twin phone is a unit with its own variation (channel gains against
golden, its main camera's pose beside the M camera; its AF actuator always differs) and its sensors carry their
serial-seeded defect pixels, unless ``--twin-fault unit_variation=false`` / ``sensor_defects=false`` asks for the
ideal unit. The EMVA 1288 characterisation leaves the defects its frames show out of its DSNU and PRNU
(``station.procedures.sensor.defect_exclusion``); the defect step measures and limits them. Used by the plans'
conftest (a twin the plugin starts) and by ``station bench plan`` (a twin in its own process).
"""

from __future__ import annotations

from collections.abc import Iterable

PER_UNIT_FAULTS = ("unit_variation", "sensor_defects")


def with_unit_faults(plan: str, faults: Iterable[str]) -> list[str]:
    """``faults`` (``NAME[=VALUE]``) plus, for the factory plan, each per-unit fault they do not name."""
    faults = list(faults)
    if plan != "factory":
        return faults
    named = {str(f).partition("=")[0].strip() for f in faults}
    return [*faults, *(f for f in PER_UNIT_FAULTS if f not in named)]
