"""The ChArUco board and the slanted-edge chart: geometry of the main camera and of each M lens stopped down,
SFR across the field and lateral CA (main; each lens stopped down and wide open), the adapter's flange
back-focus and tilt from a through-focus sweep wide open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from station.plans import steps
from station.plans.helpers import stopped_down, wide_open

if TYPE_CHECKING:
    from station.station import Station


@pytest.fixture(scope="module")
def captures() -> dict[str, Any]:
    """Slanted-edge captures reused for the lateral CA from the same edges, by case."""
    return {}


def test_geometry(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.geometry(station, operator, measure, results, "main")


def test_lens_geometry(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    steps.geometry(station, operator, measure, results, "m", m_lens, stopped_down(m_lens))


def test_sfr_stopped_down(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict,
                          captures: dict) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    captures[m_lens] = steps.sfr(station, operator, measure, results, "m", m_lens, stopped_down(m_lens))


def test_lens_lateral_ca(station: Station, m_lens: str, measure: Any, results: dict, captures: dict) -> None:
    if m_lens not in captures:
        pytest.skip("no stopped-down slanted-edge capture (test_sfr_stopped_down did not measure)")
    steps.chromatic(station, measure, results, captures[m_lens])


def test_sfr(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict, captures: dict) -> None:
    captures["main"] = steps.sfr(station, operator, measure, results, "main")


def test_lateral_ca(station: Station, measure: Any, results: dict, captures: dict) -> None:
    if "main" not in captures:
        pytest.skip("no slanted-edge capture (test_sfr did not measure)")
    steps.chromatic(station, measure, results, captures["main"])


def test_sfr_wide_open(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.sfr(station, operator, measure, results, "m", m_lens, wide_open(m_lens))


def test_adapter_focus(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.focus(station, operator, measure, results, m_lens, wide_open(m_lens))
