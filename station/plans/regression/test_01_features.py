"""Firmware regression, the camera app's features on the main sensor: zebra, focus peaking and the histogram,
each against DESIGN 7's definition computed from the very frame the phone sent (any difference is the app's),
and the preview's lens shading (with a stored shading map the preview of a flat field must be flat).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from station.plans import steps

if TYPE_CHECKING:
    from station.station import Station

SENSOR = "main"


def test_zebra(station: Station, operator: Any, lit_bench: None, measure: Any) -> None:
    steps.zebra_conformance(station, operator, measure, SENSOR)


def test_peaking(station: Station, operator: Any, lit_bench: None, measure: Any) -> None:
    steps.peaking_conformance(station, operator, measure, SENSOR)


def test_histogram(station: Station, operator: Any, measure: Any) -> None:
    steps.histogram_conformance(station, operator, measure, SENSOR, "preview")


def test_preview_shading(station: Station, operator: Any, lit_bench: None, measure: Any, stored_shading: Any) -> None:
    steps.preview_flatness(station, operator, measure, SENSOR)
