"""The charts by name: ``get_chart("sfr")``, ``get_chart("charuco:5x7:40:20:DICT_6X6_250")``."""

from __future__ import annotations

from targets.base import Chart
from targets.charuco import CharucoChart, parse_board_spec
from targets.colorchecker import ColorCheckerChart
from targets.flat import FlatField
from targets.siemens import SiemensStar
from targets.slanted_edge import SlantedEdgeChart
from targets.steps import StepChart

#: Chart name (a lower-case slug, as the twin's holder takes it) -> class.
CHARTS: dict[str, type[Chart]] = {
    "charuco": CharucoChart,
    "sfr": SlantedEdgeChart,
    "steps": StepChart,
    "colorchecker": ColorCheckerChart,
    "siemens": SiemensStar,
    "flat": FlatField,
}
ALIASES = {"slanted-edge": "sfr", "e-sfr": "sfr", "oecf": "steps", "grey-steps": "steps",
           "gray-steps": "steps", "colorchecker24": "colorchecker", "macbeth": "colorchecker",
           "siemens-star": "siemens", "star": "siemens", "flat-field": "flat"}


def chart_names() -> list[str]:
    """The charts' names, in listing order."""
    return list(CHARTS)


def get_chart(name: str, width_mm: float | None = None, height_mm: float | None = None) -> Chart:
    """The chart called ``name`` (or an alias, or a ChArUco spec ``charuco:SXxSY:SQ:MK[:DICT]``), sized.

    Raises ValueError (one line) for an unknown name, a bad spec or an impossible size.
    """
    key = name.strip()
    if (width_mm is None) != (height_mm is None):
        raise ValueError("give both the chart's width and height in mm, or neither")
    if key.lower().startswith("charuco:"):
        return CharucoChart(parse_board_spec(key), width_mm, height_mm)
    key = ALIASES.get(key.lower(), key.lower())
    if key not in CHARTS:
        known = ", ".join(CHARTS)
        raise ValueError(f"unknown chart {name!r}; known: {known} (or charuco:SXxSY:SQ_MM:MARKER_MM:DICT)")
    cls = CHARTS[key]
    if cls is CharucoChart:
        return CharucoChart(None, width_mm, height_mm)
    if width_mm is None:
        return cls()
    return cls(width_mm, height_mm)
