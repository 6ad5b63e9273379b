"""``station analyze shading`` / ``color``: JSON shapes, numbers against truth, exit 2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from station.cli import main
from station.dng import write_dng
from station.frame import Frame

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
DNG = REFERENCE / "dng_bayer_colorchecker" / "colorchart.dng"
H, W = 384, 512
BLACK, WHITE = 64, 1023
F_PX = 420.0


def _illumination(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """cos^4 falloff of a pinhole at F_PX about the frame centre, times a channel-dependent lens term."""
    dist = np.hypot(x - (W - 1) / 2, y - (H - 1) / 2)
    return (F_PX / np.sqrt(F_PX ** 2 + dist ** 2)) ** 4 * (1 - strength * (dist / 320.0) ** 2)


STRENGTH = {(0, 0): 0.10, (0, 1): 0.0, (1, 0): 0.0, (1, 1): -0.05}  # RGGB sites
PEAK = {(0, 0): 500.0, (0, 1): 800.0, (1, 0): 800.0, (1, 1): 600.0}


def _flat(seed: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    signal = np.zeros((h, w))
    for (r, c), s in STRENGTH.items():
        signal[r::2, c::2] = PEAK[(r, c)] * _illumination(xx[r::2, c::2], yy[r::2, c::2], s)
    return np.clip(rng.poisson(signal) + BLACK, 0, WHITE).astype(np.uint16)


def _dng(path: Path, data: np.ndarray) -> str:
    write_dng(path, Frame(data=data, cfa="RGGB", black_level=BLACK, white_level=WHITE, bit_depth=10,
                          exposure_s=0.01))
    return str(path)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["analyze", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def flat_files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("flats")
    return [_dng(d / f"flat{i}.dng", _flat(i)) for i in range(2)]


def test_shading_json(capsys, flat_files, tmp_path) -> None:
    plot = tmp_path / "shading.png"
    code, out, err = _run(capsys, "shading", *flat_files, "--grid", "9x13", "--json", "--plot", str(plot))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["grid"] == [9, 13] and doc["image_size"] == [W, H]
    assert doc["channels"] == ["R", "Gr", "Gb", "B"]
    gain = np.array(doc["gain_map"])
    assert gain.shape == (9, 13, 4) and gain.min() >= 1.0 - 1e-6
    gx, gy = np.meshgrid(np.linspace(0, W - 1, 13), np.linspace(0, H - 1, 9))
    for k, site in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):  # R, G_even, G_odd, B of RGGB
        ill = _illumination(gx, gy, STRENGTH[site])
        assert np.abs(gain[..., k] / (ill.max() / ill) - 1).max() < 0.01
    for ch in doc["channels"]:
        fall = doc["corner_falloff"][ch]
        assert set(fall) >= {"mean_pct", "max_pct", "mean_ev", "corners_pct"}
        fit = doc["radial_fit"][ch]
        assert len(fit["k"]) == 3 and fit["center_px"] == pytest.approx([(W - 1) / 2, (H - 1) / 2], abs=3)
    truth_g = _illumination(np.array([0.0]), np.array([0.0]), 0.0)[0]
    assert doc["corner_falloff"]["Gr"]["mean_pct"] == pytest.approx(100 * (1 - truth_g), abs=0.5)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = _run(capsys, "shading", flat_files[0])
    assert code == 0 and "shading map 13x17" in out and "Gr" in out


def test_shading_bad_inputs_exit_2(capsys, flat_files, tmp_path) -> None:
    yy, xx = np.mgrid[0:H, 0:W]
    checks = np.where(((xx // 32) + (yy // 32)) % 2 == 0, 900, 100).astype(np.uint16)
    chart = _dng(tmp_path / "chart.dng", checks)
    code, out, err = _run(capsys, "shading", chart, "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "chart.dng" in err and "not a flat field" in err
    small = _dng(tmp_path / "small.dng", _flat(5, 256, 384))
    code, _, err = _run(capsys, "shading", flat_files[0], small)
    assert code == 2 and "small.dng" in err and "expected" in err
    code, _, err = _run(capsys, "shading", flat_files[0], "--grid", "13by17")
    assert code == 2 and "--grid" in err
    code, _, err = _run(capsys, "shading", str(tmp_path / "missing.dng"))
    assert code == 2 and "missing.dng" in err


#: Camera model for the rendered chart: linear sRGB mixed into camera RGB (rows sum to 1), a warm light.
MIX = np.array([[0.72, 0.22, 0.06], [0.10, 0.80, 0.10], [0.05, 0.28, 0.67]])
LIGHT = np.array([1.3, 1.0, 0.6])


@pytest.fixture(scope="module")
def chart_png(tmp_path_factory) -> str:
    from targets.colorchecker import ColorCheckerChart

    refl = ColorCheckerChart().raster(-20.0, -15.0, 1.6, 704, 528)  # the station's chart, 1.6 px/mm
    cam = (refl.astype(np.float64) @ MIX.T) * LIGHT * 0.7
    rng = np.random.default_rng(9)
    cam *= 1 + rng.normal(0, 0.003, cam.shape)
    dn = np.clip(np.round(cam * 65535), 0, 65535).astype(np.uint16)
    path = tmp_path_factory.mktemp("color") / "chart.png"
    cv2.imwrite(str(path), dn[..., ::-1])  # 16-bit PNG: linear
    return str(path)


def test_color_json_from_detector(capsys, chart_png, tmp_path) -> None:
    plot = tmp_path / "color.png"
    code, out, err = _run(capsys, "color", chart_png, "--json", "--plot", str(plot))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["patches_from"] == "detector" and len(doc["rois_px"]) == 24
    assert doc["wb_gains"] == pytest.approx(list(LIGHT[1] / LIGHT), rel=0.01)
    ccm = np.array(doc["ccm"])
    assert ccm.shape == (3, 3)
    np.testing.assert_allclose(ccm, np.linalg.inv(MIX), atol=0.03)
    for when in ("before", "after"):
        assert set(doc["delta_e2000"][when]) >= {"mean", "max", "per_patch"}
        assert len(doc["delta_e2000"][when]["per_patch"]) == 24
    assert doc["delta_e2000"]["after"]["mean"] < 1.0 < doc["delta_e2000"]["before"]["mean"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _run(capsys, "color", chart_png)
    assert code == 0 and "CIEDE2000 before" in out


def test_color_real_dng_with_patch_box(capsys) -> None:
    if not DNG.is_file():
        pytest.skip(f"reference data absent: {DNG}")
    code, out, err = _run(capsys, "color", str(DNG), "--patches", "660,568,644,414", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "cfa" and doc["patches_from"] == "--patches"
    assert doc["delta_e2000"]["after"]["mean"] < 0.5 * doc["delta_e2000"]["before"]["mean"]


def test_color_bad_inputs_exit_2(capsys, tmp_path) -> None:
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((60, 80), 128, np.uint8))
    code, _, err = _run(capsys, "color", str(gray))
    assert code == 2 and "gray.png" in err and "grayscale" in err
    scene = tmp_path / "scene.png"
    cv2.imwrite(str(scene), np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    code, out, err = _run(capsys, "color", str(scene), "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "scene.png" in err and "no ColorChecker found" in err and "--patches" in err
    code, _, err = _run(capsys, "color", str(scene), "--patches", "10,10,oops")
    assert code == 2 and "--patches" in err
    code, _, err = _run(capsys, "color", str(scene), "--patches", "100,100,200,200")
    assert code == 2 and "not inside" in err
