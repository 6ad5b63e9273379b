"""``Frame``: CFA planes, RAW10 round trip, metadata, the 8-bit sRGB preview."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from station.errors import InputError
from station.frame import Frame, cfa_offsets
from station.raw10 import pack_raw10

# Where each channel sits in the 2x2 quad, written out by hand for each order.
QUADS = {
    "RGGB": {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)},
    "GRBG": {"Gr": (0, 0), "R": (0, 1), "B": (1, 0), "Gb": (1, 1)},
    "GBRG": {"Gb": (0, 0), "B": (0, 1), "R": (1, 0), "Gr": (1, 1)},
    "BGGR": {"B": (0, 0), "Gb": (0, 1), "Gr": (1, 0), "R": (1, 1)},
}
CODES = {"R": 100, "Gr": 200, "Gb": 300, "B": 400}


def quad_frame(cfa: str, height: int = 8, width: int = 12, **meta: object) -> Frame:
    data = np.zeros((height, width), dtype=np.uint16)
    for name, (row, col) in QUADS[cfa].items():
        data[row::2, col::2] = CODES[name]
    return Frame(data=data, cfa=cfa, **meta)  # type: ignore[arg-type]


def srgb8(linear: float) -> int:
    """IEC 61966-2-1 encoding, then 8-bit rounding."""
    v = 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055
    return int(round(v * 255))


@pytest.mark.parametrize("cfa", sorted(QUADS))
def test_cfa_planes_are_views_of_the_right_sites(cfa: str) -> None:
    frame = quad_frame(cfa)
    assert cfa_offsets(cfa) == QUADS[cfa]
    for name, code in CODES.items():
        plane = frame.cfa_plane(name)
        assert plane.shape == (4, 6)
        assert np.all(plane == code)
        assert np.shares_memory(plane, frame.data) and plane.base is not None


def test_unknown_channel_and_pattern() -> None:
    with pytest.raises(InputError, match="allowed"):
        quad_frame("RGGB").cfa_plane("G")
    with pytest.raises(InputError, match="CFA pattern 'RGBG' not supported"):
        Frame(data=np.zeros((4, 4), np.uint16), cfa="RGBG")


def test_bad_data_and_levels() -> None:
    with pytest.raises(InputError, match="uint16"):
        Frame(data=np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="uint16"):
        Frame(data=np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(InputError, match="black"):
        Frame(data=np.zeros((4, 4), np.uint16), black_level=1023, white_level=1023)


def test_raw10_round_trip_keeps_data_and_metadata() -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 1024, size=(6, 16), dtype=np.uint16)
    buf = pack_raw10(data, stride_bytes=24)
    frame = Frame.from_raw10(buf, 16, 6, stride_bytes=24, sensor="m", cfa="GRBG", exposure_s=0.01,
                             lens="summicron-m-50-f2", dut_serial="SN1", firmware="golden",
                             timestamp="2024-01-02T03:04:05+00:00", extra={"truth": {"k": 0.25}})
    np.testing.assert_array_equal(frame.data, data)
    assert frame.to_raw10(stride_bytes=24) == buf
    assert (frame.sensor, frame.cfa, frame.lens) == ("m", "GRBG", "summicron-m-50-f2")


def test_metadata_is_json_and_complete() -> None:
    frame = quad_frame("RGGB", sensor="m", exposure_s=0.02, analog_gain=2.0, dut_serial="SN9",
                       firmware="b42", timestamp="2024-01-02T03:04:05+00:00",
                       extra={"truth": np.array([1.5, 2.5]), "n": np.int64(3)})
    meta = json.loads(json.dumps(frame.metadata()))
    assert meta == {
        "width": 12, "height": 8, "sensor": "m", "cfa": "RGGB", "black_level": 64, "white_level": 1023,
        "bit_depth": 10, "exposure_s": 0.02, "analog_gain": 2.0, "lens": None, "dut_serial": "SN9",
        "firmware": "b42", "timestamp": "2024-01-02T03:04:05+00:00",
        "extra": {"truth": [1.5, 2.5], "n": 3},
    }


def flat_frame(levels: dict[str, float], height: int = 64, width: int = 96, **meta: object) -> Frame:
    """A flat field: each channel at ``black + level * (white - black)`` DN."""
    data = np.zeros((height, width), dtype=np.uint16)
    for name, (row, col) in QUADS["RGGB"].items():
        data[row::2, col::2] = round(64 + levels[name] * (1023 - 64))
    return Frame(data=data, cfa="RGGB", **meta)  # type: ignore[arg-type]


def test_preview_is_srgb_of_the_black_subtracted_quad() -> None:
    levels = {"R": 0.18, "Gr": 0.5, "Gb": 0.3, "B": 0.02}
    frame = flat_frame(levels)
    preview = frame.preview8(max_side=None)
    assert preview.dtype == np.uint8 and preview.shape == (32, 48, 3)
    dn = {k: round(64 + v * 959) for k, v in levels.items()}
    linear = [(dn["R"] - 64) / 959, ((dn["Gr"] + dn["Gb"]) / 2 - 64) / 959, (dn["B"] - 64) / 959]
    expected = [srgb8(v) for v in linear]
    assert np.all(np.abs(preview.astype(int) - np.array(expected)) <= 1)
    assert preview[0, 0].tolist() == expected


def test_preview_white_balance_from_as_shot_neutral_and_clipping() -> None:
    levels = {"R": 0.1, "Gr": 0.2, "Gb": 0.2, "B": 0.8}
    frame = flat_frame(levels, extra={"as_shot_neutral": [0.5, 1.0, 0.25]})  # gains 2, 1, 4
    r, g, b = frame.preview8(max_side=None)[5, 5].tolist()
    dn_r = round(64 + 0.1 * 959)
    assert r == srgb8((dn_r - 64) / 959 * 2)
    assert b == 255  # 0.8 * 4 clips
    assert g == srgb8((round(64 + 0.2 * 959) - 64) / 959)


def test_preview_downscales_to_max_side() -> None:
    frame = flat_frame({"R": 0.2, "Gr": 0.2, "Gb": 0.2, "B": 0.2}, height=400, width=640)
    preview = frame.preview8(max_side=100)
    assert max(preview.shape[:2]) <= 100 and preview.shape[2] == 3
    assert preview.shape[:2] == (200 // 4, 320 // 4)
    assert np.all(preview == preview[0, 0])  # a flat field stays flat


def test_preview_of_a_half_dark_frame_keeps_the_edge() -> None:
    frame = flat_frame({"R": 0.5, "Gr": 0.5, "Gb": 0.5, "B": 0.5}, height=64, width=128)
    frame.data[:, 64:] = 64  # right half at black
    preview = frame.preview8(max_side=16)
    assert preview.shape == (8, 16, 3)
    assert np.all(preview[:, :8] == srgb8((round(64 + 0.5 * 959) - 64) / 959))
    assert np.all(preview[:, 8:] == 0)


def test_save_preview_png_writes_rgb_atomically(tmp_path: Path) -> None:
    frame = flat_frame({"R": 0.6, "Gr": 0.1, "Gb": 0.1, "B": 0.02})
    path = frame.save_preview_png(tmp_path / "p.png")
    assert path == tmp_path / "p.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # no temp file left
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgr[..., ::-1], frame.preview8())
    with pytest.raises(InputError, match="does not exist"):
        frame.save_preview_png(tmp_path / "missing" / "p.png")
