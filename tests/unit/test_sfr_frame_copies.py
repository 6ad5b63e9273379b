"""station.procedures.sfr without whole-frame float copies (issue 13, 50 MP memory): the binned mosaic, every
edge's e-SFR and the lateral CA shifts are bit-equal to the whole-frame float32 formulation they replace
(written out here as the reference), on a synthetic slanted-square chart mosaic with an odd size."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.chromatic import edge_shifts
from calibration.color import cfa_to_rgb
from calibration.sfr import cfa_at, sfr_cfa
from station.frame import Frame
from station.procedures import sfr
from tests.unit.sfr_synth import chart_image

SQUARES = [(70.0, 60.0, 60.0, 5.0), (190.0, 70.0, 56.0, -6.0), (80.0, 170.0, 58.0, 7.0), (200.0, 175.0, 60.0, 4.0)]


@pytest.fixture(scope="module")
def frame() -> Frame:
    img = chart_image((241, 267), SQUARES, blur_px=1.2, noise=0.004, seed=5)
    data = np.clip(np.rint(64 + img * (1023 - 64)), 0, 1023).astype(np.uint16)
    return Frame(data=data, cfa="GRBG", black_level=64, white_level=1023)


def test_binning_equals_the_float_copy(frame) -> None:
    m = frame.data.astype(np.float32) - np.float32(frame.black_level)
    m = m[:240, :266]
    reference = 0.25 * (m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2])
    binned = sfr.binned_above_black(frame.data, frame.black_level)
    assert binned.dtype == np.float32 and binned.shape == (120, 133)
    assert np.array_equal(binned, reference)


def test_edges_and_ca_equal_the_whole_frame_formulation(frame) -> None:
    rois = sfr.find_edge_rois(frame.data, frame.black_level, frame.white_level)
    assert len(rois) >= 8
    edges = sfr.edge_mtfs(frame, rois)
    mosaic = frame.data.astype(np.float32) - np.float32(frame.black_level)
    assert len(edges) == len(rois)
    for edge in edges:
        x, y, w, h = edge.roi
        res = sfr_cfa(mosaic[y:y + h, x:x + w], cfa_at(frame.cfa, x, y), "Y")
        assert edge.mtf50_cy_px == float(res.mtf50_cy_px) and np.array_equal(edge.mtf, np.asarray(res.mtf))
    rgb = cfa_to_rgb(mosaic, frame.cfa)
    ca = sfr.lateral_ca(frame, edges)
    shifts = []
    for edge in edges:
        x, y, w, h = (v // 2 for v in edge.roi)
        s = edge_shifts(rgb[y:y + h, x:x + w], reference=1, vertical=edge.orientation == "vertical")
        shifts.append((2.0 * s[0], 2.0 * s[2]))
    assert ca.result.planes["R"].n_points == len(shifts)
    from calibration.chromatic import lateral_ca_from_edges

    expected = lateral_ca_from_edges(np.array([e.centre_px for e in edges]),
                                     np.array([(1.0, 0.0) if e.orientation == "vertical" else (0.0, 1.0)
                                               for e in edges]),
                                     {"R": [s[0] for s in shifts], "B": [s[1] for s in shifts]},
                                     image_size=(frame.data.shape[1], frame.data.shape[0]))
    assert ca.r_scale == float(expected.planes["R"].scale) and ca.b_scale == float(expected.planes["B"].scale)
