"""The ChArUco board and the slanted-edge chart: geometry of the main camera and of each M lens stopped down,
the M camera's pose against the main camera through each lens (the same board: no extra chart), SFR across
the field and lateral CA (main; each lens stopped down and wide open), the main camera's AF on the
slanted-edge chart, the adapter's flange back-focus and tilt from a through-focus sweep wide open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from station.plans import calib_steps, steps
from station.plans.helpers import Kept, stopped_down, wide_open
from station.procedures.geometry import BOARD

if TYPE_CHECKING:
    from station.station import Station


def test_geometry(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    steps.geometry(station, operator, measure, results, "main")


def test_lens_geometry(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    steps.geometry(station, operator, measure, results, "m", m_lens, stopped_down(m_lens))


#: The pose's rail distance on the geometry board (charuco 16x12, 45 mm squares): both cameras see enough of
#: it at every gimbal pose (the main camera's squares ~50 px, the M lens's view a third of the board); the pose
#: takes its views here and 1.3 times farther (station.procedures.pose.DEPTH_RATIOS).
POSE_DISTANCE_MM = 1000.0


def test_lens_pose(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                   results: dict) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    calib_steps.pose(station, operator, measure, results, m_lens, BOARD, POSE_DISTANCE_MM)


def test_sfr_stopped_down(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any, results: dict,
                          kept: Kept) -> None:
    operator.set_aperture(m_lens, stopped_down(m_lens))
    kept[f"sfr/m/{m_lens}"] = steps.sfr(station, operator, measure, results, "m", m_lens, stopped_down(m_lens))


def test_lens_lateral_ca(station: Station, m_lens: str, measure: Any, results: dict, kept: Kept) -> None:
    capture = kept.take(f"sfr/m/{m_lens}", "the stopped-down slanted-edge capture", "test_sfr_stopped_down")
    steps.chromatic(station, measure, results, capture)


def test_sfr(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict, kept: Kept) -> None:
    kept["sfr/main"] = steps.sfr(station, operator, measure, results, "main")


def test_lateral_ca(station: Station, measure: Any, results: dict, kept: Kept) -> None:
    steps.chromatic(station, measure, results, kept.take("sfr/main", "the slanted-edge capture", "test_sfr"))


def test_main_af(station: Station, operator: Any, lit_bench: None, measure: Any, results: dict) -> None:
    calib_steps.main_af(station, operator, measure, results)


def test_sfr_wide_open(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.sfr(station, operator, measure, results, "m", m_lens, wide_open(m_lens))


def test_adapter_focus(station: Station, operator: Any, m_lens: str, lit_bench: None, measure: Any,
                       results: dict) -> None:
    operator.set_aperture(m_lens, wide_open(m_lens))
    steps.focus(station, operator, measure, results, m_lens, wide_open(m_lens))
