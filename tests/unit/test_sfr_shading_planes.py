"""e-SFR under shading and on single CFA planes (``calibration.sfr``, ``station analyze sfr --flat``).

Analytic edges (``sfr_synth``: a Gaussian PSF integrated exactly over square pixels) against their true MTF50:
- a shading plane over the ROI (vignetting near the field edge) tilts both ESF plateaus: ``plateau_slope``
  fits it to the plateaus and divides it out; ``--flat`` divides the image by a flat field;
- a CFA plane of a sharp edge (sigma 0.7 sensor px: 0.35 plane px, a 0.5 plane-px aperture) is sampled by
  few rows whose sub-pixel phases fill the 4x bins unevenly: ``sfr_cfa`` moves each bin to its centre.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.sfr import sfr, sfr_cfa
from station.cli import main
from tests.unit.sfr_synth import chart_image, edge_image, true_mtf50

SQUARES = [(80.0, 80.0, 100.0, 5.0), (240.0, 90.0, 100.0, -7.0)]


def _shading(shape: tuple[int, int], gx: float, gy: float) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return 1.0 + gx * (xx - shape[1] / 2.0) + gy * (yy - shape[0] / 2.0)


def _errors_pct(images_and_truth, **kwargs) -> np.ndarray:
    return np.array([100.0 * (sfr(img, **kwargs).mtf50_cy_px / truth - 1.0) for img, truth in images_and_truth])


def test_plateau_slope_removes_a_shading_plane():
    """A 0.1 %/px shading across the edge (6 % over the 64 px ROI) and half that along it: 2.8 % mean MTF50
    error as measured, none left after the plateau fit."""
    cases = []
    for angle in range(2, 13, 2):
        for sign in (1.0, -1.0):
            for horizontal in (False, True):
                img = edge_image((128, 64), angle, 1.0, horizontal=horizontal)
                cases.append((img * _shading(img.shape, sign * 1e-3, 0.5e-3), true_mtf50(1.0, angle)))
    plain = np.abs(_errors_pct(cases))
    corrected = np.abs(_errors_pct(cases, plateau_slope=True))
    print(f"\nshaded edges: mean |MTF50 error| {plain.mean():.3f} % -> {corrected.mean():.4f} % with plateau_slope")
    assert plain.mean() > 2.0  # the bias is real
    assert corrected.max() < 0.05


def test_plateau_slope_leaves_an_even_edge_alone():
    cases = [(edge_image((128, 64), angle, 1.0), true_mtf50(1.0, angle)) for angle in (3, 7, 11)]
    assert np.abs(_errors_pct(cases, plateau_slope=True)).max() < 0.02


def test_cfa_planes_of_a_sharp_edge():
    """R, Gr, Gb, B planes of exact edges at 2..12 deg, both orientations, 128 x 64 sensor px: with 4x bins
    placed where their samples lie, mean |MTF50 error| 0.20 %, largest 0.93 % (plain 4x binning: 0.87 %,
    3.6 %)."""
    errors = []
    for angle in range(2, 13):
        truth = true_mtf50(0.7, angle)  # cycles per sensor px; a plane's are twice that
        for horizontal in (False, True):
            img = edge_image((128, 64), angle, 0.7, horizontal=horizontal)
            for plane in ("R", "Gr", "Gb", "B"):
                errors.append(100.0 * (0.5 * sfr_cfa(img, "RGGB", plane).mtf50_cy_px / truth - 1.0))
    errors = np.abs(errors)
    print(f"\nCFA planes, sigma 0.7 px: mean |MTF50 error| {errors.mean():.3f} %, largest {errors.max():.3f} %")
    assert errors.mean() < 0.3
    assert errors.max() < 1.2


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["analyze", "sfr", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_flat_divides_the_vignetting_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    even = chart_image((200, 330), SQUARES, blur_px=1.0)
    vignetting = (0.9 - 0.35 * _shading(even.shape, 2e-3, 1.5e-3) ** 2 + 0.35).astype(np.float32)
    vignetting /= vignetting.max()
    paths = {}
    for name, img in (("even", even), ("shaded", even * vignetting), ("flat", vignetting * 0.9)):
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), np.round(img * 65535).astype(np.uint16))

    def mtf50s(*argv: str) -> tuple[np.ndarray, list[str]]:
        code, out, err = _run(capsys, *argv, "--json")
        assert code == 0, err
        edges = json.loads(out)["files"][0]["edges"]
        return np.array([e["mtf50_cy_px"] for e in edges]), [",".join(map(str, e["roi"])) for e in edges]

    reference, rois = mtf50s(str(paths["even"]))
    assert len(rois) == 8
    same_rois = [arg for roi in rois for arg in ("--roi", roi)]  # the edges found there, measured here
    shaded, _ = mtf50s(str(paths["shaded"]), *same_rois)
    flattened, _ = mtf50s(str(paths["shaded"]), "--flat", str(paths["flat"]), *same_rois)
    fitted, _ = mtf50s(str(paths["shaded"]), "--plateau-slope", *same_rois)
    assert len(mtf50s(str(paths["shaded"]), "--flat", str(paths["flat"]))[0]) == 8  # found without --roi too
    off = lambda got: np.abs(100.0 * (got / reference - 1.0)).max()  # noqa: E731
    print(f"\nshaded chart, largest MTF50 change: {off(shaded):.2f} % as is, {off(flattened):.3f} % with --flat, "
          f"{off(fitted):.3f} % with --plateau-slope")
    assert off(shaded) > 0.3
    assert off(flattened) < 0.1  # 16-bit quantisation of image and flat: 0.07 % on one edge
    assert off(fitted) < 0.2


def test_cli_flat_of_another_size_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, flat = tmp_path / "chart.png", tmp_path / "small_flat.png"
    cv2.imwrite(str(image), np.round(chart_image((200, 330), SQUARES) * 65535).astype(np.uint16))
    cv2.imwrite(str(flat), np.full((100, 100), 40000, np.uint16))
    code, out, err = _run(capsys, str(image), "--flat", str(flat))
    assert code == 2 and out == ""
    assert "small_flat.png" in err and len(err.strip().splitlines()) == 1
