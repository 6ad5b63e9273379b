"""The chart check's judgement on rendered views of the charts (``targets`` geometry, no twin): each chart is
recognised as itself and as no other, the flat field by its smoothness."""

from __future__ import annotations

import numpy as np
import pytest

from station.procedures.geometry import BOARD
from station.scene_check import judge
from targets.registry import get_chart
from tests.unit.targets_views import render

CHARTS = ("flat", "sfr", "steps", "colorchecker", "siemens", BOARD)


def _view(spec: str) -> np.ndarray:
    """The chart centred in a 560 x 420 view, 85 % of its width, with a gentle falloff (a lens's)."""
    chart = get_chart(spec)
    w, h = 560, 420
    scale = 0.85 * w / chart.width_mm
    homography = np.array([[scale, 0, (w - scale * chart.width_mm) / 2],
                           [0, scale, (h - scale * chart.height_mm) / 2], [0, 0, 1.0]])
    grey = render(chart, homography, w, h, k=1, blur_px=0.0).mean(axis=2)
    y, x = np.mgrid[0:h, 0:w]
    falloff = 1.0 - 0.3 * (((x - w / 2) ** 2 + (y - h / 2) ** 2) / (w / 2) ** 2)
    return (800.0 * grey * falloff).astype(np.float32)


@pytest.fixture(scope="module")
def views() -> dict[str, np.ndarray]:
    return {spec: _view(spec) for spec in CHARTS}


@pytest.mark.parametrize("up", CHARTS)
def test_each_chart_is_itself_and_no_other(views: dict[str, np.ndarray], up: str) -> None:
    verdicts = {want: judge(want, views[up]).ok for want in CHARTS}
    assert verdicts == {want: want == up for want in CHARTS}, {w: judge(w, views[up]).detail for w in CHARTS}


def test_a_dark_frame_is_no_flat_field() -> None:
    result = judge("flat", np.zeros((300, 400), dtype=np.float32))
    assert not result.ok and "dark" in result.detail
