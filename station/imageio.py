"""Images from anywhere for ``station analyze``: PNG, JPEG, TIFF and DNG into linear float32.

Rules: 8-bit images are sRGB-encoded and are linearised with the sRGB decoding function
(IEC 61966-2-1) unless ``linear=True``; 16-bit PNG/TIFF and float TIFF are taken as linear;
a DNG (or a TIFF carrying DNGVersion) is CFA data in DN with its black and white level.

``LoadedImage.data`` keeps the file's own scale (DN for DNG and 16-bit, 0..1 for 8-bit after
decoding, as stored for float); ``black_level`` and ``white_level`` give that scale and
``normalized()`` maps it to 0..1 linear.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile

from station.dng import MAX_DNG_BYTES
from station.dng_checks import MAX_PIXELS
from station.errors import InputError
from station.tiffcheck import check_tiff_structure, quiet_tifffile
from station.validation import read_bytes_limited

_TIFF_SUFFIXES = {".tif", ".tiff"}


@dataclass
class LoadedImage:
    """A linear image: (H, W) gray or CFA, or (H, W, 3) RGB, float32, with its scale and provenance."""

    data: np.ndarray
    kind: str  # "cfa" | "rgb" | "gray"
    path: str
    black_level: float = 0.0
    white_level: float = 1.0
    bit_depth: int = 8
    cfa: str | None = None
    exposure_s: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. a DNG's Frame metadata

    def normalized(self) -> np.ndarray:
        """``(data - black) / (white - black)``: linear, 0..1 for in-range values, float32."""
        scale = np.float32(1.0 / (self.white_level - self.black_level))
        return (self.data - np.float32(self.black_level)) * scale


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB decoding function (IEC 61966-2-1), encoded 0..1 -> linear 0..1, float32."""
    v = np.asarray(encoded, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, np.power((np.maximum(v, 0.04045) + 0.055) / 1.055, 2.4)).astype(
        np.float32
    )


#: 8-bit code -> linear light, the sRGB decoding of code / 255.
_SRGB8_TO_LINEAR = srgb_decode(np.arange(256, dtype=np.float32) / 255.0)


def load_image(path: str | Path, linear: bool = False) -> LoadedImage:
    """Load an image file as linear float32 (see the module rules); ``InputError`` names a bad file."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError(f"{name}: no such file (expected a PNG, JPEG, TIFF or DNG image)")
    suffix = path.suffix.lower()
    if suffix == ".dng":
        return _load_dng(path)
    pixels = None
    if suffix in _TIFF_SUFFIXES:
        raw = read_bytes_limited(path, "TIFF image", InputError, max_bytes=MAX_DNG_BYTES)
        check_tiff_structure(raw, name)
        with quiet_tifffile():
            if _is_dng(raw):
                return _load_dng(path)
            pixels = _read_tiff(raw, name)
    if pixels is None:
        pixels = _read_cv2(path)
    return _from_pixels(pixels, name, linear)


def _is_dng(raw: bytes) -> bool:
    try:
        with tifffile.TiffFile(io.BytesIO(raw)) as tif:
            return tif.pages.first.is_dng
    except Exception:
        return False


def _load_dng(path: Path) -> LoadedImage:
    from station.dng import read_dng

    frame = read_dng(path)
    return LoadedImage(
        data=frame.data.astype(np.float32),
        kind="cfa",
        path=str(path),
        black_level=float(frame.black_level),
        white_level=float(frame.white_level),
        bit_depth=int(frame.bit_depth),
        cfa=frame.cfa,
        exposure_s=frame.exposure_s,
        meta=frame.metadata(),
    )


def _read_tiff(raw: bytes, name: str) -> np.ndarray | None:
    """RGB(A)/gray pixels of a TIFF's first image with tifffile (None: let OpenCV try)."""
    try:
        with tifffile.TiffFile(io.BytesIO(raw)) as tif:
            page = tif.pages.first
            if math.prod(page.shape) > MAX_PIXELS * 4:  # a crafted header must not make us allocate gigabytes
                raise InputError(f"{name}: TIFF image of shape {page.shape}: more than {MAX_PIXELS} pixels")
            pixels = page.asarray()
            if pixels.ndim == 3 and int(page.planarconfig) == 2 and pixels.shape[0] <= 4:
                pixels = np.moveaxis(pixels, 0, -1)
            return pixels
    except InputError:
        raise
    except Exception:
        return None


def _read_cv2(path: Path) -> np.ndarray:
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # our one-line error replaces OpenCV's log
    try:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    finally:
        logging.setLogLevel(level)
    if pixels is None:
        raise InputError(f"{path}: not a readable image (expected a PNG, JPEG, TIFF or DNG)")
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        pixels = np.concatenate([pixels[..., 2::-1], pixels[..., 3:]], axis=2)  # BGR(A) -> RGB(A)
    return pixels


def _from_pixels(pixels: np.ndarray, name: str, linear: bool) -> LoadedImage:
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]  # drop alpha
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise InputError(f"{name}: image shape {pixels.shape} not supported (expected gray or RGB)")
    if min(pixels.shape[:2]) < 1:
        raise InputError(f"{name}: an empty {pixels.shape[1]}x{pixels.shape[0]} image")
    kind = "gray" if pixels.ndim == 2 else "rgb"
    dtype = pixels.dtype
    if dtype == np.uint8:
        if linear:
            data, white = pixels.astype(np.float32), 255.0
        else:
            data, white = _SRGB8_TO_LINEAR[pixels], 1.0
        return LoadedImage(data=data, kind=kind, path=name, white_level=white, bit_depth=8)
    if np.issubdtype(dtype, np.unsignedinteger):
        bits = dtype.itemsize * 8
        return LoadedImage(data=pixels.astype(np.float32), kind=kind, path=name,
                           white_level=float((1 << bits) - 1), bit_depth=bits)
    if np.issubdtype(dtype, np.floating):
        bad = pixels.size - int(np.count_nonzero(np.isfinite(pixels)))
        if bad:
            raise InputError(f"{name}: {bad} pixel value(s) not finite (NaN or inf); a float image must be finite")
        return LoadedImage(data=pixels.astype(np.float32, copy=False), kind=kind, path=name,
                           white_level=1.0, bit_depth=dtype.itemsize * 8)
    raise InputError(f"{name}: pixel type {dtype} not supported (expected 8/16-bit or float)")
