"""The chart check's judgement on rendered views of the charts (``targets`` geometry, no twin): each chart is
recognised as itself and as no other, the flat field by its smoothness."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from station import scene_check
from station.procedures.geometry import BOARD
from station.scene_check import _grey, judge
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


def _shot(data: np.ndarray, black_level: int = 64) -> SimpleNamespace:
    return SimpleNamespace(frame=SimpleNamespace(data=data, black_level=black_level))


def test_grey_is_the_quad_mean_at_ci_size_and_larger_blocks_beyond() -> None:
    rng = np.random.default_rng(5)
    ci = rng.integers(0, 1024, (1536, 2048), dtype=np.uint16)
    grey, block = _grey(_shot(ci))
    q = ci.astype(np.float64)
    quads = (q[0::2, 0::2] + q[0::2, 1::2] + q[1::2, 0::2] + q[1::2, 1::2]) / 4.0 - 64.0
    assert block == 2 and np.array_equal(grey, np.maximum(quads, 0.0).astype(np.float32))
    wide = rng.integers(0, 1024, (24, 4104), dtype=np.uint16)  # 4104 px: blocks of 6 keep <= 1024 of them
    grey, block = _grey(_shot(wide))
    means = wide[:, :4104 // 6 * 6].astype(np.float64).reshape(4, 6, 684, 6).mean(axis=(1, 3)) - 64.0
    assert block == 6 and grey.shape == (4, 684)
    np.testing.assert_allclose(grey, np.maximum(means, 0.0), rtol=0, atol=1e-3)


@pytest.mark.parametrize("up", [BOARD, "sfr"])
def test_a_large_frame_is_judged_on_its_block_means(views: dict[str, np.ndarray], up: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame 4x the view's size (each view pixel a 4x4 block) is reduced back to the view and judged with
    the homography scaled by its block: the right chart passes, another does not."""
    monkeypatch.setattr(scene_check, "GREY_MAX_SIDE_PX", 560)
    frame = np.repeat(np.repeat(views[up] + 64.0, 4, axis=0), 4, axis=1).astype(np.uint16)
    grey, block = _grey(_shot(frame))
    assert block == 4 and grey.shape == views[up].shape
    assert judge(up, grey, block).ok
    other = "sfr" if up == BOARD else BOARD
    assert not judge(other, grey, block).ok
