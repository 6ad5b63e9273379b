"""``station capture`` on the twin, and the one-line errors a user gets from bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import rawpy

from station.cli import main
from station.config import to_toml, twin_config
from station.dng import read_dng
from station.raw10 import unpack_raw10
from station.twin.lenses import get_lens
from station.twin.world import FULL_SCALE_LUX


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_capture_dng_opens_in_rawpy_with_declared_levels_and_a_metered_exposure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "main.dng"  # what `make run` does: no scene options, the defaults
    assert main(["capture", "--sensor", "main", "--format", "dng", "-o", str(out)]) == 0
    with rawpy.imread(str(out)) as raw:
        data = raw.raw_image_visible.astype(np.float64)
        assert data.shape == (1536, 2048)
        assert list(raw.black_level_per_channel) == [64, 64, 64, 64]
        assert raw.white_level == 1023
        assert raw.color_desc.decode() == "RGBG" and raw.raw_pattern.tolist() == [[0, 1], [3, 2]]
    truth = read_dng(out).extra["truth"]
    # metered: the mean at 40 % of the range above black, nothing at the clip level
    assert (data.mean() - 64) / (1023 - 64) == pytest.approx(0.40, abs=0.03)
    assert np.percentile(data, 99.9) < truth["clip_level_dn"] - 20
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "metered" in lines[0]
    assert lines[1].startswith("twin truth: chart flat") and f"{truth['illuminance_lux']:.0f} lux" in lines[1]
    assert f"blur circle {truth['focus']['blur_circle_px']:.2f} px" in lines[1]


def test_same_seed_gives_byte_identical_dng_and_the_same_raw10(tmp_path: Path) -> None:
    args = ["--sensor", "m", "--light-pct", "30", "--seed", "7", "--exposure-s", "0.002"]
    for name in ("a.dng", "b.dng"):
        assert main(["capture", *args, "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.dng").read_bytes() == (tmp_path / "b.dng").read_bytes()
    assert main(["capture", *args, "--format", "raw10", "-o", str(tmp_path / "m.raw10")]) == 0
    meta = json.loads((tmp_path / "m.raw10.json").read_text())
    data = unpack_raw10((tmp_path / "m.raw10").read_bytes(), meta["width"], meta["height"],
                        meta.get("stride_bytes"))
    # the same seed and scene give the same frame, whichever format carries it
    np.testing.assert_array_equal(data, read_dng(tmp_path / "a.dng").data)
    assert meta["exposure_us"] == 2000 and meta["truth"]["illuminance_lux"] == pytest.approx(0.3 * FULL_SCALE_LUX)
    assert data.mean() > meta["black_level"] + 20  # lit


def test_lens_aperture_chart_and_pose_reach_the_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.dng"
    lens = get_lens("summicron-m-50-f2")
    ring = lens.ring_for_distance_deg(1500.0)
    assert main(["capture", "--sensor", "m", "--lens", lens.id, "--aperture", "5.6", "--chart", "siemens",
                 "--distance-mm", "1500", "--focus-deg", f"{ring:.3f}", "--pan-deg", "2", "--light-pct", "80",
                 "--exposure-s", "0.01", "-o", str(out)]) == 0
    frame = read_dng(out)
    truth = frame.extra["truth"]
    assert (frame.lens, truth["lens"], truth["f_number"], truth["chart"]) == (lens.id, lens.id, 5.6, "siemens")
    assert truth["pose"] == {"distance_mm": 1500.0, "pan_deg": 2.0, "tilt_deg": 0.0,
                             "focus_deg": pytest.approx(ring, abs=1e-3)}
    assert truth["focus"]["in_focus"] and truth["illuminance_lux"] == pytest.approx(0.8 * FULL_SCALE_LUX)
    assert frame.exposure_s == pytest.approx(0.01)
    summary = capsys.readouterr().out.splitlines()[1]
    assert f"lens {lens.id} f/5.6" in summary and "chart siemens at 1500 mm" in summary and "in focus" in summary


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_instrument_is_a_station_fault_naming_it(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    config = twin_config(port, port, "/dev/pts/999", port, port)
    station = tmp_path / "line.toml"
    station.write_text(to_toml(config).split("[twin]")[0])
    code = main(["capture", "--sensor", "main", "-o", str(tmp_path / "x.dng"), "--station", str(station)])
    assert code == 3
    line = one_error_line(capsys)
    assert "light" in line and str(port) in line


def test_unknown_config_key_is_a_usage_error_naming_file_and_key(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    station = tmp_path / "line.toml"
    station.write_text(to_toml(twin_config(1, 2, "/dev/pts/1", 3, 4)).replace("[dut]", "[dut]\nspeed = 1"))
    assert main(["capture", "--sensor", "main", "-o", str(tmp_path / "x.dng"), "--station", str(station)]) == 2
    line = one_error_line(capsys)
    assert str(station) in line and "dut.speed" in line and "allowed" in line


@pytest.mark.parametrize(("fault", "extra", "words"), [
    ("dut_disconnect", [], "payload bytes"),
    ("mount_garbage", ["--distance-mm", "900"], "mount"),
    ("light_scpi_error", ["--light-pct", "40"], "light"),  # light_no_answer: test_light.py (2 s timeouts here)
])
def test_device_faults_end_as_one_line_station_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       fault: str, extra: list[str], words: str) -> None:
    code = main(["capture", "--sensor", "main", "-o", str(tmp_path / "x.dng"), "--twin-fault", fault, *extra])
    assert code == 3
    assert words in one_error_line(capsys)
    assert not (tmp_path / "x.dng").exists()


def test_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capture", "--sensor", "main", "-o", str(tmp_path / "no" / "x.dng")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["capture", "--sensor", "main", "-o", str(tmp_path / "x.dng"), "--twin-fault", "gremlins"]) == 2
    assert "unknown fault" in one_error_line(capsys)
    assert main(["capture", "--sensor", "main", "-o", str(tmp_path / "x.dng"), "--exposure-s", "-1"]) == 2
    one_error_line(capsys)
    assert main(["capture", "--sensor", "m", "-o", str(tmp_path / "x.dng"), "--aperture", "2"]) == 2
    assert "no M lens mounted" in one_error_line(capsys)
    assert main(["capture", "--sensor", "m", "-o", str(tmp_path / "x.dng"), "--lens", "summicron-m-90-f2"]) == 2
    assert "summicron-m-50-f2" in one_error_line(capsys)  # the catalog's ids
    assert main(["capture", "--sensor", "m", "-o", str(tmp_path / "x.dng"), "--chart", "wedge"]) == 2
    assert "known: charuco" in one_error_line(capsys)
    assert not (tmp_path / "x.dng").exists()
