"""Issue 13: a preview's luma straight from its PNG, a band of rows at a time (``calibration.preview.png_luma``),
equals decoding the whole image (OpenCV) and taking its luma, for every PNG row filter, across band edges; PNGs
that path does not take come back None and ``shot_luma`` decodes them whole."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import calibration.preview as preview
from calibration.preview import png_luma, preview_luma
from station.procedures.captures import Shot, decode_png
from station.procedures.preview_luma import shot_luma


def _image(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Noise, smooth ramps and repeated rows: libpng's adaptive filtering picks every filter type on it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    ramp = (np.arange(shape[1]) * 255 // max(shape[1] - 1, 1)).astype(np.uint8)
    image[shape[0] // 3:shape[0] // 2] = ramp[:, None] if image.ndim == 3 else ramp
    image[shape[0] // 2:2 * shape[0] // 3] = image[shape[0] // 2]
    return image


def _filters(payload: bytes, rows: int, stride: int) -> set[int]:
    header = preview._png_header(payload)
    assert header is not None
    raw = b"".join(preview._inflated(header[3]))
    return {raw[i * stride] for i in range(rows)}


@pytest.mark.parametrize("band_rows", [1, 7, 256])
@pytest.mark.parametrize("level", [None, 1, 9])
def test_png_luma_equals_the_whole_decode(band_rows: int, level: int | None, monkeypatch) -> None:
    monkeypatch.setattr(preview, "_BAND_ROWS", band_rows)
    for shape in ((61, 83, 3), (61, 83), (1, 5, 3)):
        image = _image(shape, 3)
        ok, buf = cv2.imencode(".png", image, [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, level])
        payload = buf.tobytes()
        assert np.array_equal(png_luma(payload), preview_luma(decode_png(payload)))


def test_every_filter_type_is_met() -> None:
    image = _image((200, 300, 3), 4)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])  # the twin phone's setting
    assert _filters(buf.tobytes(), 200, 1 + 300 * 3) == {0, 1, 2, 3, 4}
    assert np.array_equal(png_luma(buf.tobytes()), preview_luma(image[..., ::-1]))


def test_pngs_this_path_does_not_take_are_decoded_whole() -> None:
    rgba = np.dstack([_image((20, 30, 3), 5), np.full((20, 30), 200, np.uint8)])
    sixteen = _image((20, 30), 6).astype(np.uint16) * 257
    for image in (rgba, sixteen):
        ok, buf = cv2.imencode(".png", image)
        assert png_luma(buf.tobytes()) is None
    ok, buf = cv2.imencode(".png", _image((20, 30, 3), 7))
    damaged = bytearray(buf.tobytes())
    damaged[60:70] = b"\xff" * 10
    assert png_luma(bytes(damaged)) is None
    assert png_luma(b"not a png") is None
    ok, buf = cv2.imencode(".png", rgba)
    shot = Shot("main", {}, pngs={"preview": buf.tobytes()})
    assert np.array_equal(shot_luma(shot), preview_luma(decode_png(buf.tobytes())))
    assert "preview" not in shot.pngs
    assert shot_luma(Shot("main", {})) is None


def test_small_previews_are_decoded_whole_and_large_ones_in_bands(monkeypatch) -> None:
    import station.procedures.preview_luma as preview_luma_module

    ok, buf = cv2.imencode(".png", _image((40, 60, 3), 8))
    assert png_luma(buf.tobytes(), min_pixels=40 * 60 + 1) is None  # below the size: the caller decodes whole
    assert np.array_equal(png_luma(buf.tobytes(), min_pixels=40 * 60), preview_luma(decode_png(buf.tobytes())))
    banded = []

    def spy(payload: bytes, min_pixels: int) -> np.ndarray | None:
        banded.append(min_pixels)
        return png_luma(payload, min_pixels=min_pixels)

    monkeypatch.setattr(preview_luma_module, "png_luma", spy)
    shot = Shot("main", {}, pngs={"preview": buf.tobytes()})
    assert np.array_equal(shot_luma(shot), preview_luma(decode_png(buf.tobytes())))
    assert banded == [preview_luma_module.BANDED_FROM_PIXELS] and 2048 * 1536 < banded[0] < 8192 * 6144
