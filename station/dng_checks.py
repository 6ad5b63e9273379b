"""Checks of a DNG's raw IFD and metadata before its pixels are used (Adobe DNG Specification 1.4, TIFF 6.0).

Every check names the file and the tag, and says what is allowed: dimensions, samples, bit depth
against white level, black below white, ActiveArea inside the image, a supported compression, and
strip/tile byte counts that agree with the image size and fit in the file.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from station.errors import InputError
from station.validation import FiniteFloat, SafeStr

#: Compressions a CFA DNG may use here (TIFF Compression tag): tifffile or LibRaw decode them.
SUPPORTED_COMPRESSION = {1: "none", 7: "lossless JPEG", 8: "Deflate"}
_BITS, _BLACK_LEVEL, _WHITE_LEVEL, _ACTIVE_AREA = 258, 50714, 50717, 50829
_MAX_SIDE = 65535
#: Most pixels of a raw image (a 200 MP sensor has 2e8): bounds what a crafted compressed strip can make us allocate.
MAX_PIXELS = 250_000_000


class DescriptionMetadata(BaseModel):
    """Our metadata in ImageDescription (``{"m-station": {...}}``): strict types, finite numbers."""

    model_config = ConfigDict(extra="ignore")
    sensor: Annotated[SafeStr, Field(min_length=1, max_length=64)] = "main"
    bit_depth: Annotated[StrictInt, Field(ge=1, le=16)] = 10
    analog_gain: Annotated[FiniteFloat, Field(ge=0.0, le=1024.0)] = 1.0
    lens: SafeStr | None = None
    dut_serial: SafeStr | None = None
    firmware: SafeStr | None = None
    timestamp: Annotated[StrictStr, Field(max_length=64)] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def check_raw_page(page: Any, tags: Any, buf: bytes, name: str) -> None:
    """``InputError`` naming ``name`` and the tag unless the raw IFD ``page`` is consistent."""
    width, height = int(page.imagewidth), int(page.imagelength)
    if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
        raise InputError(f"{name}: image size {width}x{height}: expected 1 .. {_MAX_SIDE} on each side")
    if width * height > MAX_PIXELS:
        raise InputError(f"{name}: image size {width}x{height}: more than {MAX_PIXELS} pixels")
    if int(page.samplesperpixel) != 1:
        raise InputError(f"{name}: SamplesPerPixel {int(page.samplesperpixel)}: a CFA image has 1")
    bits = _bits(page, name)
    compression = int(page.compression)
    if compression not in SUPPORTED_COMPRESSION:
        allowed = ", ".join(f"{k} ({v})" for k, v in SUPPORTED_COMPRESSION.items())
        raise InputError(f"{name}: Compression {compression} not supported; allowed: {allowed}")
    _check_data(page, buf, name, width, height, bits, compression)
    _check_levels(tags, name, bits)
    _check_active_area(tags.get(_ACTIVE_AREA), name, width, height)


def _bits(page: Any, name: str) -> int:
    tag = page.tags.get(_BITS)
    values = tag.value if tag is not None else 1
    values = tuple(values) if isinstance(values, tuple | list) else (values,)
    bits = int(values[0]) if values else 0
    if len(set(values)) != 1 or not 1 <= bits <= 16:
        raise InputError(f"{name}: BitsPerSample {values[0] if len(values) == 1 else values}: expected 1 .. 16")
    return bits


def _check_data(page: Any, buf: bytes, name: str, width: int, height: int, bits: int, compression: int) -> None:
    offsets = [int(v) for v in page.dataoffsets]
    counts = [int(v) for v in page.databytecounts]
    if not offsets or len(offsets) != len(counts):
        raise InputError(f"{name}: StripOffsets/StripByteCounts missing or of different lengths")
    if min(counts) <= 0:
        raise InputError(f"{name}: StripByteCounts has a byte count of 0; the image data is missing")
    end = max(o + n for o, n in zip(offsets, counts, strict=True))
    if end > len(buf):
        raise InputError(f"{name}: truncated DNG (image data needs {end} bytes, file has {len(buf)})")
    if compression == 1:
        if page.is_tiled:
            tw, tl = int(page.tilewidth), int(page.tilelength)
            need = math.ceil(width / tw) * math.ceil(height / tl) * math.ceil(tw * bits / 8) * tl
        else:
            need = math.ceil(width * bits / 8) * height
        if sum(counts) != need:
            raise InputError(f"{name}: byte counts {sum(counts)} do not match {width}x{height} at "
                             f"BitsPerSample {bits} uncompressed ({need} bytes)")
    elif compression == 7 and any(buf[o:o + 2] != b"\xff\xd8" for o in offsets):
        raise InputError(f"{name}: Compression 7 (lossless JPEG) but the image data is not JPEG (no SOI marker)")


def _check_levels(tags: Any, name: str, bits: int) -> None:
    top = (1 << bits) - 1
    black = tags.numbers(_BLACK_LEVEL) or [0.0]
    white = tags.numbers(_WHITE_LEVEL) or [float(top)]
    for value in black:
        if not (math.isfinite(value) and 0 <= value <= top):
            raise InputError(f"{name}: BlackLevel {value!r}: expected a finite level of 0 .. {top}")
    for value in white:
        if not (math.isfinite(value) and 0 < value <= top):
            raise InputError(f"{name}: WhiteLevel {value!r}: expected 1 .. {top} (BitsPerSample {bits})")
    if max(black) >= min(white):
        raise InputError(f"{name}: BlackLevel {max(black):g} must be below WhiteLevel {min(white):g}")


def _check_active_area(area: Any, name: str, width: int, height: int) -> None:
    if area is None:
        return
    values = tuple(area) if isinstance(area, tuple | list) else (area,)
    if len(values) != 4 or not all(isinstance(v, int) for v in values):
        raise InputError(f"{name}: ActiveArea {values!r}: expected 4 integers top, left, bottom, right")
    top, left, bottom, right = values
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise InputError(f"{name}: ActiveArea ({top}, {left}, {bottom}, {right}) outside the {width}x{height} "
                         f"image; expected 0 <= top < bottom <= {height}, 0 <= left < right <= {width}")
