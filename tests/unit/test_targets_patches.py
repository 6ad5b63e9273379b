"""Every chart's ``info`` (``station chart NAME --info``) and the patch charts' shared painting, against what
the chart paints and independent geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from targets.base import Painter, rgb
from targets.fiducials import FiducialChart
from targets.patches import ROI_FRACTION, PatchChart
from targets.registry import chart_names, get_chart


@pytest.mark.parametrize("name", chart_names())
def test_info_is_json_and_names_the_painted_sheet(name: str) -> None:
    chart = get_chart(name)
    info = json.loads(json.dumps(chart.info()))
    painter = Painter()
    chart.paint(painter)
    sheet = painter.shapes[0].reflectance
    assert info["chart"] == name and info["sheet_reflectance"] == pytest.approx(sheet.tolist(), abs=1e-6)
    if isinstance(chart, FiducialChart):  # the fiducials sit on the sheet: the same reflectance
        assert np.allclose(rgb(chart.sheet_reflectance_value), sheet)


@pytest.mark.parametrize("name", ["colorchecker", "steps"])
def test_patch_charts_paint_each_patch_with_its_reflectance_and_centre_roi(name: str) -> None:
    chart = get_chart(name)
    assert isinstance(chart, PatchChart)
    rects, refl = chart.patch_rects_mm(), chart.patch_reflectances()
    painter = Painter()
    chart.paint(painter)
    patches = painter.shapes[1:1 + len(rects)]
    for (x, y, w, h), r, shape in zip(rects, refl, patches, strict=True):
        assert shape.polygon.min(axis=0) == pytest.approx([x, y]) and shape.polygon.max(axis=0) == pytest.approx(
            [x + w, y + h])
        assert np.allclose(shape.reflectance, rgb(r)) and np.allclose(shape.under, rgb(chart.sheet_reflectance_value))
    quads = chart.roi_quads_mm()
    centres, sides = rects[:, :2] + rects[:, 2:] / 2, rects[:, 2:]
    assert np.allclose(quads.mean(axis=1), centres)
    assert np.allclose(quads.max(axis=1) - quads.min(axis=1), ROI_FRACTION * sides)
