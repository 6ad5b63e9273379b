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


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_capture_dng_opens_in_rawpy_with_declared_levels(tmp_path: Path) -> None:
    out = tmp_path / "main.dng"
    assert main(["capture", "--sensor", "main", "--format", "dng", "-o", str(out), "--light-pct", "50"]) == 0
    with rawpy.imread(str(out)) as raw:
        assert raw.raw_image_visible.shape == (1536, 2048)
        assert list(raw.black_level_per_channel) == [64, 64, 64, 64]
        assert raw.white_level == 1023
        assert raw.color_desc.decode() == "RGBG" and raw.raw_pattern.tolist() == [[0, 1], [3, 2]]


def test_capture_raw10_writes_payload_and_metadata_equal_to_the_dng(tmp_path: Path) -> None:
    args = ["--sensor", "m", "--light-pct", "30", "--seed", "7"]
    assert main(["capture", *args, "--format", "raw10", "-o", str(tmp_path / "m.raw10")]) == 0
    assert main(["capture", *args, "--format", "dng", "-o", str(tmp_path / "m.dng")]) == 0
    meta = json.loads((tmp_path / "m.raw10.json").read_text())
    data = unpack_raw10((tmp_path / "m.raw10").read_bytes(), meta["width"], meta["height"],
                        meta.get("stride_bytes"))
    # the same seed and scene give the same frame, whichever format carries it
    np.testing.assert_array_equal(data, read_dng(tmp_path / "m.dng").data)
    assert data.mean() > meta["black_level"] + 20  # lit


def test_same_seed_gives_byte_identical_dng(tmp_path: Path) -> None:
    for name in ("a.dng", "b.dng"):
        assert main(["capture", "--sensor", "main", "--seed", "3", "--light-pct", "20",
                     "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.dng").read_bytes() == (tmp_path / "b.dng").read_bytes()


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
    ("light_no_answer=0", ["--light-pct", "40"], "light"),
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
