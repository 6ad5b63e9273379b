"""RAW10 (Android ImageFormat.RAW10 / MIPI CSI-2) pack and unpack, and ``station bench raw10``."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest

from station.cli import main
from station.errors import InputError
from station.raw10 import has_kernel, kernel_simd, pack_raw10, raw10_stride, unpack_raw10

# Two groups written out by hand from the spec (bytes 0-3: P[9:2]; byte 4: P3[1:0]<<6|P2<<4|P1<<2|P0):
#   pixels 0x3FF 0x000 0x2AA 0x155 -> FF 00 AA 55, low bits 3,0,2,1 -> 01 10 00 11 = 0x63
#   pixels 0x001 0x002 0x004 0x008 -> 00 00 01 02, low bits 1,2,0,0 -> 00 00 10 01 = 0x09
HAND_PIXELS = [0x3FF, 0x000, 0x2AA, 0x155, 0x001, 0x002, 0x004, 0x008]
HAND_BYTES = bytes([0xFF, 0x00, 0xAA, 0x55, 0x63, 0x00, 0x00, 0x01, 0x02, 0x09])


def spec_unpack(buf: bytes, width: int, height: int, stride: int) -> np.ndarray:
    """Pixel by pixel, straight from the spec: an independent decoder for small frames."""
    out = np.zeros((height, width), dtype=np.uint16)
    for y in range(height):
        for x in range(width):
            group = y * stride + (x // 4) * 5
            k = x % 4
            out[y, x] = (buf[group + k] << 2) | ((buf[group + 4] >> (2 * k)) & 0b11)
    return out


def its_unpack_raw10_image(img: np.ndarray) -> np.ndarray:
    """Android Camera ITS's decoder, transcribed from AOSP ``cts/apps/CameraITS/utils/
    image_processing_utils.py`` ``unpack_raw10_image`` (a (H, W*5/4) uint8 array, no row padding)."""
    w = img.shape[1] * 4 // 5
    h = img.shape[0]
    msbs = np.delete(img, np.s_[4::5], 1).astype(np.uint16)
    msbs = np.left_shift(msbs, 2).reshape(h, w)
    lsbs = img[::, 4::5].reshape(h, w // 4)
    lsbs = np.right_shift(np.packbits(np.unpackbits(lsbs).reshape((h, w // 4, 4, 2)), 3), 6)
    lsbs = lsbs.reshape(h, w // 4, 4)[:, :, ::-1].reshape(h, w)
    return np.bitwise_or(msbs, lsbs).reshape(h, w)


def test_hand_written_bytes_pack_and_unpack() -> None:
    pixels = np.array([HAND_PIXELS], dtype=np.uint16)
    assert pack_raw10(pixels) == HAND_BYTES
    assert unpack_raw10(HAND_BYTES, 8, 1).tolist() == [HAND_PIXELS]


def test_hand_written_bytes_with_stride_padding_ignored() -> None:
    stride = 13  # 10 bytes of pixels + 3 bytes of padding (filled with junk: must be ignored)
    buf = HAND_BYTES + b"\xee" * 3 + HAND_BYTES[5:] + HAND_BYTES[:5] + b"\xee" * 3
    got = unpack_raw10(buf, 8, 2, stride_bytes=stride)
    assert got.tolist() == [HAND_PIXELS, HAND_PIXELS[4:] + HAND_PIXELS[:4]]
    packed = pack_raw10(got, stride_bytes=stride)
    assert packed == HAND_BYTES + b"\0" * 3 + HAND_BYTES[5:] + HAND_BYTES[:5] + b"\0" * 3


@pytest.mark.parametrize("width,height,pad", [(64, 33, None), (64, 33, 1), (64, 17, 3), (128, 9, 16),
                                              (4, 5, None), (4, 3, 7), (8, 1, None), (200, 20, 5)])
def test_random_round_trip_is_bit_exact(width: int, height: int, pad: int | None) -> None:
    rng = np.random.default_rng(width * 1000 + height)
    frame = rng.integers(0, 1024, size=(height, width), dtype=np.uint16)
    stride = None if pad is None else raw10_stride(width) + pad
    buf = pack_raw10(frame, stride_bytes=stride)
    assert len(buf) == height * (stride or raw10_stride(width))
    np.testing.assert_array_equal(unpack_raw10(buf, width, height, stride_bytes=stride), frame)
    # the same bytes through the independent decoder
    np.testing.assert_array_equal(spec_unpack(buf, width, height, stride or raw10_stride(width)), frame)


def test_unpack_matches_spec_on_random_bytes_with_padding() -> None:
    # Random bytes everywhere, padding included: the decoder must read exactly the spec's bits.
    width, height, stride = 40, 7, 57
    buf = np.random.default_rng(7).integers(0, 256, size=height * stride, dtype=np.uint8).tobytes()
    expected = spec_unpack(buf, width, height, stride)
    np.testing.assert_array_equal(unpack_raw10(buf, width, height, stride), expected)


def test_last_row_without_padding_is_accepted() -> None:
    width, height, stride = 32, 6, 48
    frame = np.random.default_rng(3).integers(0, 1024, size=(height, width), dtype=np.uint16)
    buf = pack_raw10(frame, stride)
    short = buf[: (height - 1) * stride + raw10_stride(width)]  # Android: the plane ends at the last pixel
    np.testing.assert_array_equal(unpack_raw10(short, width, height, stride), frame)


def test_buffer_types_and_out_argument() -> None:
    frame = np.random.default_rng(4).integers(0, 1024, size=(12, 16), dtype=np.uint16)
    buf = pack_raw10(frame)
    out = np.zeros_like(frame)
    result = unpack_raw10(memoryview(buf), 16, 12, out=out)
    assert result is out
    np.testing.assert_array_equal(out, frame)
    np.testing.assert_array_equal(unpack_raw10(np.frombuffer(buf, np.uint8), 16, 12), frame)
    np.testing.assert_array_equal(unpack_raw10(bytearray(buf), 16, 12), frame)


def test_extreme_codes() -> None:
    for value in (0, 1, 2, 3, 512, 1020, 1023):
        frame = np.full((2, 8), value, dtype=np.uint16)
        np.testing.assert_array_equal(unpack_raw10(pack_raw10(frame), 8, 2), frame)


def test_raw10_stride() -> None:
    assert raw10_stride(8192) == 10240
    assert raw10_stride(4) == 5


def test_truncated_buffer_says_expected_and_got() -> None:
    frame = np.zeros((4, 16), dtype=np.uint16)
    buf = pack_raw10(frame)
    with pytest.raises(InputError) as err:
        unpack_raw10(buf[:-1], 16, 4)
    message = str(err.value)
    assert "expected 80 bytes, got 79" in message and "truncated" in message
    assert "\n" not in message


def test_oversized_buffer_is_refused() -> None:
    with pytest.raises(InputError, match="expected 80 bytes, got 81"):
        unpack_raw10(bytes(81), 16, 4)


@pytest.mark.parametrize("width", [6, 0, 10])
def test_width_must_be_multiple_of_four(width: int) -> None:
    with pytest.raises(InputError, match="multiple of 4"):
        unpack_raw10(bytes(100), width, 2)
    with pytest.raises(InputError, match="multiple of 4"):
        pack_raw10(np.zeros((2, max(width, 1)), dtype=np.uint16))


def test_stride_too_small() -> None:
    with pytest.raises(InputError, match="stride 9 bytes is below the minimal 10"):
        unpack_raw10(bytes(20), 8, 2, stride_bytes=9)
    with pytest.raises(InputError, match="below the minimal"):
        pack_raw10(np.zeros((2, 8), dtype=np.uint16), stride_bytes=9)


def test_pack_refuses_codes_above_ten_bits() -> None:
    frame = np.zeros((2, 8), dtype=np.uint16)
    frame[1, 3] = 1024
    with pytest.raises(InputError, match=r"0\.\.1023, got 0\.\.1024"):
        pack_raw10(frame)
    with pytest.raises(InputError, match="0..1023"):
        pack_raw10(np.full((2, 8), -1, dtype=np.int32))


def test_bench_raw10_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "raw10", "--json", "--width", "256", "--height", "64"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["raw10"]
    figures = result["raw10"]
    assert set(figures) == {"unpack_s", "copy_s", "ratio", "pack_s", "kernel", "simd", "threads", "ratio_limit"}
    assert figures["kernel"] is True and figures["ratio_limit"] == 1.5
    assert figures["unpack_s"] > 0 and figures["copy_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["unpack_s"] / figures["copy_s"])


def test_bench_raw10_human_line_and_bad_width(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "raw10", "--width", "64", "--height", "8", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("raw10 64x8: unpack")
    assert main(["bench", "raw10", "--width", "66", "--height", "8"]) == 2
    err = capsys.readouterr().err
    assert "multiple of 4" in err and err.count("\n") == 1


def test_compiled_kernel_is_built() -> None:
    # `pip install -e .` compiles station/_raw10.c (gcc is part of the CI image); numpy is only the fallback.
    assert has_kernel()
    if platform.machine() in ("x86_64", "AMD64"):  # every x86-64 CI machine has SSSE3: its path is the one tested
        assert kernel_simd() == "ssse3"


@pytest.mark.parametrize("width,height,pad", [(8192, 4, 0), (64, 33, 3), (4, 1, 0), (200, 20, 11), (1024, 97, 0),
                                              (1028, 7, 0), (1036, 5, 3),  # rows 8 bytes off 16: unaligned stores
                                              # the SSSE3 loop (2 groups a step, 6 bytes read ahead) hands the rest
                                              # of a row to the word path: every remainder, aligned or not
                                              (96, 3, 0), (100, 3, 0), (104, 3, 1), (108, 3, 0), (112, 3, 2),
                                              (116, 3, 0), (120, 3, 0), (124, 3, 5)])
def test_kernel_is_bit_exact_with_numpy_and_android_its(width: int, height: int, pad: int) -> None:
    stride = raw10_stride(width) + pad
    rng = np.random.default_rng(width + height + pad)
    buf = rng.integers(0, 256, size=height * stride, dtype=np.uint8).tobytes()  # padding bytes random too
    short = buf[: (height - 1) * stride + raw10_stride(width)]
    fast = unpack_raw10(short, width, height, stride)
    reference = unpack_raw10(buf, width, height, stride, use_kernel=False)
    np.testing.assert_array_equal(fast, reference)
    rows = np.frombuffer(buf, np.uint8).reshape(height, stride)[:, : raw10_stride(width)]
    np.testing.assert_array_equal(fast, its_unpack_raw10_image(rows))
    # and pack: the kernel's bytes are numpy's bytes, padding zeroed
    assert pack_raw10(fast, stride) == pack_raw10(fast, stride, use_kernel=False)
    np.testing.assert_array_equal(unpack_raw10(pack_raw10(fast, stride), width, height, stride, use_kernel=False),
                                  fast)


@pytest.mark.parametrize("height", [300, 1100, 1537])
def test_kernel_threads_split_rows_exactly(height: int) -> None:
    # above the one-thread size the threads take bands of 512 rows from a shared counter: every row still lands in
    # its place, a last short band included
    width = 4096 if height == 300 else 1024
    frame = np.random.default_rng(11).integers(0, 1024, size=(height, width), dtype=np.uint16)
    packed = pack_raw10(frame)
    assert len(packed) > 1 << 20
    np.testing.assert_array_equal(unpack_raw10(packed, width, height), frame)
    assert packed == pack_raw10(frame, use_kernel=False)


def test_kernel_pack_still_refuses_codes_above_ten_bits() -> None:
    frame = np.zeros((2, 8), dtype=np.uint16)
    frame[0, 5] = 0xFFFF
    with pytest.raises(InputError, match=r"0\.\.1023, got 0\.\.65535"):
        pack_raw10(frame)


def test_bench_all_one_json_object_with_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "all", "--json", "--quick", "--skip", "plan"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"raw10", "sfr", "render", "plan", "all_s"} <= set(result) and result["quick"] is True
    assert result["raw10"]["ratio"] == pytest.approx(result["raw10"]["unpack_s"] / result["raw10"]["copy_s"])
    assert result["sfr"]["edges_per_s"] > 0 and result["sfr"]["reference_fft_s"] > 0
    assert result["render"]["ci_s"] > 0 and result["render"]["ci_blur_s"] > 0
    assert result["plan"] == {"skipped": "--skip"}
    assert main(["bench", "all", "--skip", "nope"]) == 2
    assert "--skip nope" in capsys.readouterr().err
