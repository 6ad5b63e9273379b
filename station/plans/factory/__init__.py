"""The factory plan, once per phone: its scenes in run order (``scene_needs``) give the operator's "step n of N"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def scene_needs(lenses: Sequence[str]) -> list[tuple[Any, ...]]:
    """What the plan's tests need in front of the phone, in run order (test_02 .. test_05; ``station.scene
    .planned_requests`` counts the changes): flat field bare, main, each lens wide open; ColorChecker, the flat
    field and the step chart; ChArUco, each lens stopped down on the slanted edges, wide open; the Siemens
    star; the flat field for peaking's verification."""
    from station.plans.helpers import stopped_down, wide_open
    from station.procedures.geometry import BOARD

    needs: list[tuple[Any, ...]] = [("lens", None, None), ("chart", "flat")]
    for lens in lenses:
        needs += [("lens", lens, wide_open(lens)), ("chart", "flat")]
    needs.append(("chart", "colorchecker"))
    if lenses:
        needs.append(("lens", lenses[0], None))
    needs += [("chart", "flat"), ("chart", "steps"), ("chart", BOARD)]
    for lens in lenses:
        needs += [("aperture", lens, stopped_down(lens)), ("chart", "sfr")]
    needs.append(("chart", "sfr"))
    for lens in lenses:
        needs.append(("aperture", lens, wide_open(lens)))
    needs.append(("chart", "siemens"))
    for lens in lenses:
        needs.append(("aperture", lens, wide_open(lens)))
    needs.append(("chart", "flat"))
    return needs
