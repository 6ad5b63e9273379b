"""DNG write (tifffile) and read (tifffile, rawpy fallback): round trip, LibRaw's view, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile

from station.dng import dng_bytes, read_dng, write_dng
from station.errors import InputError
from station.frame import Frame

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
COLORCHART = REFERENCE / "dng_bayer_colorchecker" / "colorchart.dng"


def make_frame(cfa: str = "RGGB", **meta: object) -> Frame:
    data = np.random.default_rng(11).integers(64, 1024, size=(48, 64), dtype=np.uint16)
    defaults: dict[str, object] = dict(sensor="m", cfa=cfa, black_level=64, white_level=1023,
                                       exposure_s=1 / 125, analog_gain=2.0, lens="summilux-m-35-f1.4",
                                       dut_serial="SN0042", firmware="golden",
                                       timestamp="2024-03-04T05:06:07+00:00",
                                       extra={"as_shot_neutral": [0.5, 1.0, 0.625], "truth": {"seed": 3}})
    defaults.update(meta)
    return Frame(data=data, **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_round_trip_keeps_pixels_and_metadata(cfa: str) -> None:
    frame = make_frame(cfa)
    back = read_dng(dng_bytes(frame))
    np.testing.assert_array_equal(back.data, frame.data)
    assert back.metadata() == frame.metadata()


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_rawpy_reads_levels_pattern_and_pixels(cfa: str) -> None:
    frame = make_frame(cfa, black_level=60, white_level=1000)
    with rawpy.imread(io.BytesIO(dng_bytes(frame))) as raw:
        assert list(raw.black_level_per_channel) == [60, 60, 60, 60]
        assert raw.white_level == 1000
        desc = raw.color_desc.decode()
        assert "".join(desc[i] for i in raw.raw_pattern.ravel()) == cfa
        np.testing.assert_array_equal(raw.raw_image_visible, frame.data)
        assert raw.other.shutter_speed == pytest.approx(1 / 125, rel=1e-6)
        wb = raw.camera_whitebalance  # LibRaw: 1 / AsShotNeutral
        assert wb[0] / wb[1] == pytest.approx(2.0, rel=1e-4) and wb[2] / wb[1] == pytest.approx(1.6, rel=1e-4)
        assert raw.postprocess().shape == (48, 64, 3)


def test_tags_as_the_dng_spec_names_them() -> None:
    with tifffile.TiffFile(io.BytesIO(dng_bytes(make_frame("GBRG")))) as tif:
        tags = {tag.code: tag.value for tag in tif.pages.first.tags.values()}
    assert bytes(tags[50706]) == bytes([1, 4, 0, 0])  # DNGVersion
    assert int(tags[262]) == 32803  # PhotometricInterpretation CFA
    assert tuple(tags[33421]) == (2, 2)  # CFARepeatPatternDim
    assert bytes(tags[33422]) == bytes([1, 2, 0, 1])  # CFAPattern G B R G
    assert tags[50714] == 64 and tags[50717] == 1023  # BlackLevel, WhiteLevel
    assert 33434 not in tags and tuple(tags[34665]["ExposureTime"]) == (1, 125)  # ExposureTime in the Exif IFD
    assert tags[271] == "M-Station" and tags[50708] == "M-Station m sensor"
    assert tags[306] == "2024:03:04 05:06:07"  # DateTime from the frame's timestamp
    assert len(tags[50721]) == 18 and len(tags[50728]) == 6  # ColorMatrix1, AsShotNeutral


def test_same_frame_gives_byte_identical_files(tmp_path: Path) -> None:
    frame = make_frame()
    first = write_dng(tmp_path / "a.dng", frame)
    second = write_dng(tmp_path / "b.dng", make_frame())
    assert first.read_bytes() == second.read_bytes() == dng_bytes(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dng", "b.dng"]  # no temp files left
    np.testing.assert_array_equal(read_dng(first).data, frame.data)


def test_write_into_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_dng(tmp_path / "nope" / "a.dng", make_frame())


def test_frame_without_optional_metadata() -> None:
    frame = Frame(data=np.full((4, 8), 100, np.uint16))
    back = read_dng(dng_bytes(frame))
    assert back.exposure_s is None and back.timestamp is None and back.cfa == "RGGB"
    assert back.black_level == 64 and back.white_level == 1023


def test_foreign_dng_with_active_area_is_cropped(tmp_path: Path) -> None:
    """A DNG written by hand with tifffile (not our writer): ActiveArea and a RATIONAL BlackLevel."""
    rng = np.random.default_rng(2)
    full = rng.integers(0, 4096, size=(20, 30), dtype=np.uint16)
    path = tmp_path / "foreign.dng"
    tifffile.imwrite(path, full, photometric=32803, metadata=None, extratags=[
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, bytes([2, 1, 1, 0]), True),
        (50706, "B", 4, bytes([1, 3, 0, 0]), True), (50708, "s", 0, "Foreign Cam", True),
        (50714, "2I", 1, (513, 2), True), (50717, "I", 1, 4000, True),
        (50829, "I", 4, (4, 6, 18, 28), True), (33434, "2I", 1, (1, 50), True),
    ])
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.data, full[4:18, 6:28])
    assert frame.cfa == "BGGR" and frame.white_level == 4000
    assert frame.black_level == 256  # 513/2 = 256.5 rounds to even
    assert frame.exposure_s == pytest.approx(0.02)
    assert frame.extra["active_area"] == [4, 6, 18, 28]


@pytest.mark.skipif(not COLORCHART.is_file(), reason=f"reference DNG absent: {COLORCHART}")
def test_reference_colorchart_dng() -> None:
    """Canon 550D via Magic Lantern (packed 14-bit, ActiveArea): values from its SOURCES.md."""
    frame = read_dng(COLORCHART)
    assert frame.cfa == "RGGB"
    assert (frame.black_level, frame.white_level, frame.bit_depth) == (2056, 15000, 14)
    assert frame.data.shape == (1156, 1734)  # ActiveArea (26, 152, 1182, 1886)
    assert int(frame.data.min()) == 1958 and int(frame.data.max()) == 12128
    means = {name: float(frame.cfa_plane(name).mean()) for name in ("R", "Gr", "Gb", "B")}
    published = {"R": 2391.3, "Gr": 2778.5, "Gb": 2783.1, "B": 2583.2}
    for name, value in published.items():
        assert means[name] == pytest.approx(value, abs=0.1)
    assert frame.exposure_s is None  # ML left ExposureTime 0
    assert frame.extra["as_shot_neutral"] == pytest.approx([1.0, 2.477, 1.462])


def _one_line_error(source: object) -> str:
    with pytest.raises(InputError) as err:
        read_dng(source)  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message
    return message


def test_png_is_not_a_dng(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "picture.png"
    cv2.imwrite(str(path), np.zeros((4, 4), np.uint8))
    message = _one_line_error(path)
    assert str(path) in message and "not a DNG" in message


def test_text_file_is_not_a_dng(tmp_path: Path) -> None:
    path = tmp_path / "notes.dng"
    path.write_text("hello, not an image\n")
    message = _one_line_error(path)
    assert str(path) in message and "not a DNG" in message


def test_plain_tiff_is_not_a_dng(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint16))
    message = _one_line_error(path)
    assert str(path) in message and "DNGVersion" in message


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_dng(tmp_path: Path, keep: float) -> None:
    blob = dng_bytes(make_frame())
    path = tmp_path / "cut.dng"
    path.write_bytes(blob[: int(len(blob) * keep)])
    message = _one_line_error(path)
    assert str(path) in message and "truncated" in message


def test_truncated_header_and_missing_file(tmp_path: Path) -> None:
    blob = dng_bytes(make_frame())
    assert "not a DNG" in _one_line_error(blob[:6])
    missing = tmp_path / "missing.dng"
    message = _one_line_error(missing)
    assert str(missing) in message and "no such DNG file" in message


@pytest.mark.parametrize("cfa", ["GRBG", "BGGR"])
def test_rawpy_fallback_gives_the_same_frame(cfa: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pixels tifffile cannot decode (LJ92, packed bits) come through LibRaw: same data and levels."""
    import station.dng as dng

    def refuse(*args: object) -> None:
        raise dng._NeedRawpyError

    frame = make_frame(cfa, black_level=70, white_level=1000)
    monkeypatch.setattr(dng, "_pixels_tifffile", refuse)
    back = read_dng(dng_bytes(frame))
    np.testing.assert_array_equal(back.data, frame.data)
    assert (back.cfa, back.black_level, back.white_level) == (cfa, 70, 1000)
    assert back.metadata() == frame.metadata()
