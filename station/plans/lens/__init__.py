"""The lens plan, for a lab: its scenes in run order (``scene_needs``) give the operator's "step n of N"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def scene_needs(lenses: Sequence[str]) -> list[tuple[Any, ...]]:
    """What the plan's tests need in front of the phone, in run order, lens by lens (``m_lens`` is a
    module-scoped parameter, so pytest runs each lens's tests together; ``station.scene.planned_requests``
    counts the changes): the lens wide open on the flat field (shading, zebra), stopped down on the ChArUco
    board and the slanted edges, wide open on the slanted edges (SFR, adapter focus) and the Siemens star."""
    from station.plans.helpers import stopped_down, wide_open
    from station.procedures.geometry import BOARD

    needs: list[tuple[Any, ...]] = []
    for lens in lenses:
        needs += [("lens", lens, wide_open(lens)), ("chart", "flat"), ("aperture", lens, stopped_down(lens)),
                  ("chart", BOARD), ("chart", "sfr"), ("aperture", lens, wide_open(lens)), ("chart", "siemens")]
    return needs
