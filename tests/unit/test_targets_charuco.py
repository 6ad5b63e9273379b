"""ChArUco board: spec parsing, geometry equal to OpenCV's board, detection on rendered and real views."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from targets.base import BLACK, WHITE, ChartNotFound, project
from targets.charuco import CharucoChart, CharucoSpec, parse_board_spec

from .targets_views import perspective, render, to_u8

TUTORIAL = Path(__file__).resolve().parents[3] / "shared" / "reference" / "charuco_opencv_aruco_tutorial"
TUTORIAL_SPEC = "charuco:5x7:40:20:DICT_6X6_250"


def test_parse_board_spec() -> None:
    spec = parse_board_spec(TUTORIAL_SPEC)
    assert spec == CharucoSpec(5, 7, 40.0, 20.0, "DICT_6X6_250")
    assert parse_board_spec(spec.to_text()) == spec
    assert parse_board_spec("charuco:6x8:30:22:dict_4x4_50:legacy").legacy
    assert parse_board_spec("charuco:6x8:30:22").dictionary == "DICT_5X5_100"


@pytest.mark.parametrize("bad", ["charuco:5x7:40", "charuco:5x7:40:50:DICT_6X6_250", "charuco:5x7:a:20",
                                 "charuco:5x7:40:20:DICT_NOPE", "charuco:30x30:10:5:DICT_4X4_50",
                                 "board:5x7:4:2", "charuco:1x7:40:20"])
def test_bad_spec_is_one_line_value_error(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_board_spec(bad)
    assert "\n" not in str(info.value) and bad in str(info.value)


@pytest.mark.parametrize(("text", "ppm"), [(TUTORIAL_SPEC, 1.6), ("charuco:6x8:30:21:DICT_5X5_100", 2.0),
                                           ("charuco:6x8:30:21:DICT_5X5_100:legacy", 2.0)])
def test_geometry_and_raster_match_opencv_board(text: str, ppm: float) -> None:
    spec = parse_board_spec(text)
    board = spec.cv_board()
    corners, ids = spec.chessboard_corners_mm()
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
    np.testing.assert_allclose(corners, np.asarray(board.getChessboardCorners())[:, :2], atol=1e-4)
    # raster at whole pixels per square, marker cell and margin against OpenCV's own drawing of the board
    chart = CharucoChart(spec)
    w, h = round(spec.board_width_mm * ppm), round(spec.board_height_mm * ppm)
    ox, oy = chart.board_origin_mm
    mine = chart.raster(ox, oy, ppm, w, h)[..., 0]
    theirs = board.generateImage((w, h), marginSize=0, borderBits=1)
    assert np.count_nonzero((mine > (BLACK + WHITE) / 2) != (theirs > 127)) == 0


def test_legacy_pattern_only_differs_for_even_rows() -> None:
    odd = [CharucoChart(CharucoSpec(5, 7, 40, 20, "DICT_6X6_250", legacy)).raster(0, 0, 0.5, 120, 160)
           for legacy in (False, True)]
    even = [CharucoChart(CharucoSpec(6, 8, 30, 22, "DICT_5X5_100", legacy)).raster(0, 0, 0.5, 100, 130)
            for legacy in (False, True)]
    np.testing.assert_array_equal(odd[0], odd[1])
    assert np.abs(even[0] - even[1]).max() > 0.5


def test_info_names_the_board() -> None:
    info = CharucoChart(parse_board_spec(TUTORIAL_SPEC)).info()
    keys = ("squares_x", "squares_y", "square_mm", "marker_mm", "dictionary")
    assert tuple(info[k] for k in keys) == (5, 7, 40.0, 20.0, "DICT_6X6_250")


def test_detection_on_a_rendered_view_within_a_tenth_of_a_pixel() -> None:
    chart = CharucoChart()
    H = perspective(chart, seed=1)
    det = chart.detect(to_u8(render(chart, H)))
    assert det.found and det.ids.size == chart.spec.n_corners
    truth = project(H, chart.features_mm()["corners"][det.ids])
    rms = np.sqrt(np.mean(np.sum((det.corners - truth) ** 2, axis=1)))
    assert rms < 0.1, rms
    probe = np.array([[0.0, 0.0], [chart.width_mm, chart.height_mm]])
    assert np.abs(project(det.homography, probe) - project(H, probe)).max() < 0.5


def test_blank_image_raises_chart_not_found() -> None:
    with pytest.raises(ChartNotFound) as info:
        CharucoChart().detect(np.full((480, 640), 128, dtype=np.uint8))
    assert info.value.chart == "charuco" and "charuco" in str(info.value)


@pytest.mark.reference
def test_real_tutorial_views() -> None:
    if not TUTORIAL.is_dir():
        pytest.skip(f"reference data absent: {TUTORIAL}")
    chart = CharucoChart(parse_board_spec(TUTORIAL_SPEC))
    obj, img = [], []
    for i in range(4):
        det = chart.detect(cv2.imread(str(TUTORIAL / f"img_{i:02d}.jpg")))
        assert det.ids.size == 24
        board_mm = chart.features_mm()["object_points_mm"][det.ids]
        obj.append(np.hstack([board_mm, np.zeros((24, 1))]).astype(np.float32))
        img.append(det.corners.astype(np.float32))
    # published upstream: RMS 0.18 px, fx 452.5, fy 456.8 from the same four views
    rms, K, *_ = cv2.calibrateCamera(obj, img, (640, 480), None, None)
    assert rms < 0.3
    assert K[0, 0] == pytest.approx(452.5, rel=0.03) and K[1, 1] == pytest.approx(456.8, rel=0.03)
    # gold marker corners of img_01 (= choriginal.jpg) from OpenCV's ArUco test, 1 px tolerance
    det = chart.detect(cv2.imread(str(TUTORIAL / "img_01.jpg")))
    gold = {0: [268, 77, 290, 80, 286, 97, 263, 94], 7: [185, 185, 209, 189, 203, 210, 178, 206],
            16: [315, 368, 345, 373, 341, 403, 310, 398]}
    for marker_id, xy in gold.items():
        np.testing.assert_allclose(det.markers[marker_id], np.reshape(xy, (4, 2)), atol=1.0)
    occluded = chart.detect(cv2.imread(str(TUTORIAL / "chocclusion_original.jpg")))
    assert 4 <= occluded.ids.size < 24
