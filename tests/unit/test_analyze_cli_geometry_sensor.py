"""``station analyze geometry`` / ``sensor``: JSON shapes, numbers against truth, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.geometry import model_gap_px
from station.cli import main
from station.dng import write_dng
from station.frame import Frame
from tests.unit.test_geometry import board_poses, chessboard_texture, homography, warp_texture

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
EMVA_DESCRIPTOR = REFERENCE / "emva1288_ccd12bit_basler_subset" / "EMVA1288_Data_subset.txt"
CHANNEL_KEYS = {"system_gain_dn_per_e", "read_noise_dn", "read_noise_e", "clip_level_dn", "mu_y_sat_dn",
                "linearity_error_pct", "dsnu_e", "prnu_pct"}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------------
SIZE = (640, 480)
K_TRUE = np.array([[560.0, 0.0, 321.3], [0.0, 560.0, 238.9], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def board_images(tmp_path_factory) -> list[Path]:
    """Six exact pinhole views (no distortion) of a 9x6 chessboard (25 mm squares), as PNGs, and a blank."""
    folder = tmp_path_factory.mktemp("geometry")
    texture, origin = chessboard_texture(9, 6, 40)
    paths = []
    for i, (rvec, tvec) in enumerate(board_poses(200, 125, K_TRUE, SIZE, 6, seed=21, distance_mm=(330, 420))):
        img = warp_texture(texture, 40 / 25.0, origin, homography(K_TRUE, rvec, tvec), SIZE, seed=i)
        path = folder / f"view{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    blank = folder / "blank.png"
    cv2.imwrite(str(blank), np.full((SIZE[1], SIZE[0]), 128, np.uint8))
    return [*paths, blank]


def test_geometry_json_shape_and_recovered_camera(capsys, board_images) -> None:
    code, out, err = run_cli(capsys, "analyze", "geometry", *map(str, board_images), "--board",
                             "chessboard:9x6:25", "--fix-aspect", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["image_size"] == [640, 480]
    K = np.array(doc["camera_matrix"])
    assert K.shape == (3, 3) and len(doc["dist_coeffs"]) == 5
    assert K[0, 0] == pytest.approx(560.0, rel=0.005) and K[0, 0] == K[1, 1]
    assert K[0, 2] == pytest.approx(321.3, abs=1.5) and K[1, 2] == pytest.approx(238.9, abs=1.5)
    gap = model_gap_px(K_TRUE, np.zeros(5), K, np.array(doc["dist_coeffs"]), SIZE)
    assert gap < 0.3, f"recovered model {gap:.3f} px from the pinhole truth somewhere in the frame"
    assert 0 < doc["rms_px"] < 0.1
    print(f"\nCLI chessboard renders: model gap {gap:.3f} px, RMS {doc['rms_px']:.4f} px")
    views = doc["views"]
    assert [v["file"] for v in views] == list(map(str, board_images))
    assert all(v["used"] and v["error_px"] > 0 for v in views[:-1])
    assert views[-1] == {"file": str(board_images[-1]), "used": False, "error_px": None, "n_points": 0,
                         "reason": "no board found"}


def test_geometry_human_text(capsys, board_images) -> None:
    code, out, _ = run_cli(capsys, "analyze", "geometry", *map(str, board_images[:3]), "--board",
                           "chessboard:9x6:25")
    assert code == 0
    assert "RMS reprojection error" in out and "fx" in out and not out.lstrip().startswith("{")


@pytest.mark.parametrize("spec", ["chessboard:9x6", "chessboard:9by6:25", "charuco:5x7:40", "circles:4x11:20",
                                  "charuco:5x7:40:50:DICT_6X6_250"])
def test_geometry_bad_board_spec_exits_2_with_one_line(capsys, board_images, spec) -> None:
    code, out, err = run_cli(capsys, "analyze", "geometry", str(board_images[0]), "--board", spec)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--board" in err


def test_geometry_no_board_anywhere_exits_2_naming_the_files(capsys, board_images) -> None:
    blank = str(board_images[-1])
    code, out, err = run_cli(capsys, "analyze", "geometry", blank, blank, "--board", "charuco:5x7:40:20:DICT_6X6_250")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no board" in err and blank in err
    code, _, err = run_cli(capsys, "analyze", "geometry", "/nonexistent/x.png", "--board", "chessboard:9x6:25")
    assert code == 2 and "/nonexistent/x.png" in err


@pytest.mark.reference
def test_geometry_charuco_tutorial_json(capsys) -> None:
    folder = REFERENCE / "charuco_opencv_aruco_tutorial"
    if not folder.is_dir():
        pytest.skip(f"reference data not present: {folder}")
    files = sorted(map(str, folder.glob("img_0*.jpg")))
    code, out, err = run_cli(capsys, "analyze", "geometry", *files, "--board", "charuco:5x7:40:20:DICT_6X6_250",
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rms_px"] <= 0.2 and all(v["used"] for v in doc["views"])


# --------------------------------------------------------------------------------------------------
# sensor
# --------------------------------------------------------------------------------------------------
GAIN, READ_NOISE_DN, FULL_WELL_E, BLACK, WHITE = 0.25, 2.0, 3600.0, 64, 1023


def _frame(rng: np.random.Generator, electrons: float, shape=(256, 256)) -> np.ndarray:
    rate = np.tile(np.array([[1.0, 1.3], [1.25, 0.8]]), (shape[0] // 2, shape[1] // 2))
    e = np.minimum(rng.poisson(rate * electrons).astype(np.float64), FULL_WELL_E)
    dn = BLACK + GAIN * e + rng.normal(0.0, READ_NOISE_DN, shape)
    return np.clip(np.round(dn), 0, WHITE).astype(np.uint16)


def _write(path: Path, data: np.ndarray, exposure_s: float) -> Path:
    write_dng(path, Frame(data=data, cfa="RGGB", black_level=BLACK, white_level=WHITE, bit_depth=10,
                          exposure_s=exposure_s))
    return path


@pytest.fixture(scope="module")
def sensor_files(tmp_path_factory) -> dict[str, list[Path]]:
    folder = tmp_path_factory.mktemp("sensor")
    rng = np.random.default_rng(5)
    flats = []
    for i, t in enumerate(np.linspace(0.1e-3, 3.0e-3, 16)):
        for k in "ab":
            flats.append(_write(folder / f"flat_{i:02d}{k}.dng", _frame(rng, t * 2.0e6), float(t)))
    darks = [_write(folder / f"dark_{k}.dng", _frame(rng, 0.0), 1e-3) for k in range(3)]
    return {"flats": flats, "darks": darks, "folder": [folder]}


def test_sensor_json_per_channel_against_truth(capsys, sensor_files, tmp_path) -> None:
    plot = tmp_path / "ptc.png"
    files = [*map(str, sensor_files["flats"]), *map(str, sensor_files["darks"])]
    code, out, err = run_cli(capsys, "analyze", "sensor", *files, "--json", "--plot", str(plot))
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc["channels"]) == ["R", "Gr", "Gb", "B"]
    for name, ch in doc["channels"].items():
        assert set(ch) >= CHANNEL_KEYS, name
        assert ch["system_gain_dn_per_e"] == pytest.approx(GAIN, rel=0.03), name
        assert ch["read_noise_dn"] == pytest.approx(np.hypot(READ_NOISE_DN, np.sqrt(1 / 12)), rel=0.03), name
        assert ch["clip_level_dn"] == pytest.approx(BLACK + GAIN * FULL_WELL_E, abs=1.0), name
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_sensor_human_text(capsys, sensor_files) -> None:
    files = [*map(str, sensor_files["flats"][:8]), *map(str, sensor_files["darks"])]
    code, out, _ = run_cli(capsys, "analyze", "sensor", *files)
    assert code == 0
    assert "system gain K" in out and "Gb" in out


def test_sensor_flats_at_a_single_exposure_exit_2(capsys, sensor_files) -> None:
    files = [*map(str, sensor_files["flats"][:2]), *map(str, sensor_files["darks"])]
    code, out, err = run_cli(capsys, "analyze", "sensor", *files)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "single exposure" in err and "flat_00a.dng" in err


def test_sensor_without_darks_exit_2(capsys, sensor_files) -> None:
    code, out, err = run_cli(capsys, "analyze", "sensor", *map(str, sensor_files["flats"][:6]))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "dark" in err


def test_sensor_truncated_dng_exit_2_naming_it(capsys, sensor_files, tmp_path) -> None:
    src = sensor_files["flats"][0]
    cut = tmp_path / "flat_cut.dng"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    files = [str(cut), *map(str, sensor_files["flats"][1:6]), *map(str, sensor_files["darks"])]
    code, out, err = run_cli(capsys, "analyze", "sensor", *files)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "flat_cut.dng" in err and "truncated" in err


def test_sensor_bad_descriptor_exit_2(capsys, tmp_path) -> None:
    desc = tmp_path / "desc.txt"
    desc.write_text("v 3.0\nn 12 4 4\nb 100.0 5.0\ni missing1.png\ni missing2.png\nd 100.0\ni d1.png\ni d2.png\n")
    code, out, err = run_cli(capsys, "analyze", "sensor", "--descriptor", str(desc))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "missing1.png" in err
    code, _, err = run_cli(capsys, "analyze", "sensor")
    assert code == 2 and "--descriptor" in err


@pytest.mark.reference
def test_sensor_descriptor_reference_gives_one_mono_channel(capsys) -> None:
    if not EMVA_DESCRIPTOR.is_file():
        pytest.skip(f"reference data not present: {EMVA_DESCRIPTOR}")
    code, out, err = run_cli(capsys, "analyze", "sensor", "--descriptor", str(EMVA_DESCRIPTOR), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc["channels"]) == ["Y"]
    y = doc["channels"]["Y"]
    assert set(y) >= CHANNEL_KEYS
    assert y["system_gain_dn_per_e"] == pytest.approx(0.28124, rel=0.01)
    assert y["read_noise_dn"] == pytest.approx(3.071, rel=0.02)
