"""The firmware regression plan: its scenes in run order (``scene_needs``) give the operator's "step n of N"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def scene_needs(lenses: Sequence[str]) -> list[tuple[Any, ...]]:
    """What the plan's tests need in front of the phone, in run order (``station.scene.planned_requests`` counts
    the changes): the app's features on the main sensor (step chart for zebra, Siemens star for peaking,
    ColorChecker for the histogram, the flat field for the stored shading and the preview's flatness); RAW
    integrity of main (ColorChecker, then the step chart), then of the M sensor through the run's first lens (the
    step chart still up first: ``check_raw_integrity`` takes the ramp first when its chart is up);
    the main sensor's image quality (slanted edges, ColorChecker, the flat field for noise)."""
    needs: list[tuple[Any, ...]] = [("chart", "steps"), ("chart", "siemens"), ("chart", "colorchecker"),
                                    ("chart", "flat"), ("chart", "colorchecker"), ("chart", "steps")]
    if lenses:
        needs += [("lens", lenses[0], None), ("chart", "steps"), ("chart", "colorchecker")]
    return needs + [("chart", "sfr"), ("chart", "colorchecker"), ("chart", "flat")]
