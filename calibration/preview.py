"""The phone's 8-bit preview as the zebra and peaking overlays see it: its BT.709 luma (DESIGN 7)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import cv2
import numpy as np

#: Rows per band in the luma computation (bounds the int32 temporaries on a 50 MP preview: three of
#: 256 x 8192 x 4 bytes, 24 MB, issue 13).
_BAND_ROWS = 256


def preview_luma(rgb8: np.ndarray) -> np.ndarray:
    """Y' = round(0.2126 R' + 0.7152 G' + 0.0722 B') of an 8-bit RGB preview (H, W, 3) -> uint8 (H, W).

    ITU-R BT.709 luma weights as DESIGN 7; exact integer arithmetic, halves rounded up. A 2-D uint8
    array is taken as luma already and returned as it is.
    """
    rgb8 = np.asarray(rgb8)
    if rgb8.dtype != np.uint8 or not (rgb8.ndim == 2 or (rgb8.ndim == 3 and rgb8.shape[2] == 3)):
        raise ValueError(f"preview luma needs an 8-bit RGB preview (H, W, 3), got {rgb8.dtype} {rgb8.shape}")
    if rgb8.ndim == 2:
        return rgb8
    height = rgb8.shape[0]
    out = np.empty(rgb8.shape[:2], dtype=np.uint8)
    for r0 in range(0, height, _BAND_ROWS):
        band = rgb8[r0:r0 + _BAND_ROWS]
        acc = band[..., 0].astype(np.int32)
        acc *= 2126
        green = band[..., 1].astype(np.int32)
        green *= 7152
        acc += green
        green[...] = band[..., 2]
        green *= 722
        acc += green
        acc += 5000
        acc //= 10000
        out[r0:r0 + _BAND_ROWS] = acc
    return out


# --- luma straight from a PNG, a band of rows at a time (issue 13) -------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour types this path takes (8-bit): grey, RGB. Others go the whole-image way.
_PNG_CHANNELS = {0: 1, 2: 3}
#: Decompressed bytes asked of zlib at once.
_INFLATE_BYTES = 1 << 22


def png_luma(payload: bytes, *, min_pixels: int = 0) -> np.ndarray | None:
    """``preview_luma`` of an 8-bit RGB (or grey) PNG, decoded a band of rows at a time, so a 50 MP preview
    never exists as a 150 MB RGB frame: the same uint8 (H, W) as decoding the whole image and taking its luma.

    PNG (ISO/IEC 15948) filters each row against the row above, so a band of filtered rows, led by the raw row
    above it (filter None), is itself a PNG: each band is wrapped so (stored, not recompressed) and OpenCV
    unfilters it. None when the PNG is one this path does not take (palette, alpha, 16-bit, interlaced,
    damaged), or smaller than ``min_pixels`` (banding costs about a third more time than decoding whole): decode it
    whole.
    """
    header = _png_header(payload)
    if header is None:
        return None
    width, height, channels, idat = header
    if width * height < min_pixels:
        return None
    stride = 1 + width * channels
    out = np.empty((height, width), np.uint8)
    previous: bytes = b""
    pending = bytearray()
    row = 0
    try:
        for piece in _inflated(idat):
            pending += piece
            rows = min(len(pending) // stride, height - row, _BAND_ROWS)
            while rows:
                band = _decode_band(previous + bytes(memoryview(pending)[:rows * stride]), width, channels)
                if band is None or band.shape[0] != rows + (1 if previous else 0):
                    return None
                band = band[1:] if previous else band
                previous = b"\x00" + np.ascontiguousarray(band[-1]).tobytes()
                out[row:row + rows] = band if channels == 1 else preview_luma(band)
                del band
                del pending[:rows * stride]
                row += rows
                rows = min(len(pending) // stride, height - row, _BAND_ROWS)
    except zlib.error:
        return None
    return out if row == height and not pending else None


def _decode_band(filtered: bytes, width: int, channels: int) -> np.ndarray | None:
    """Filtered PNG rows (each led by its filter byte) unfiltered by OpenCV: RGB (n, W, 3) or grey (n, W)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = len(filtered) // (1 + width * channels)
    colour = 2 if channels == 3 else 0
    png = (_PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, rows, 8, colour, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(filtered, 0)) + chunk(b"IEND", b""))
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        return None
    if channels == 3:
        cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)
    return image


def _inflated(idat: list[memoryview]) -> Iterator[bytes]:
    """The zlib stream of the IDAT chunks, inflated a few MB at a time."""
    inflate = zlib.decompressobj()
    for chunk in idat:
        data: bytes | memoryview = chunk
        while data:
            yield inflate.decompress(data, _INFLATE_BYTES)
            data = inflate.unconsumed_tail
    while not inflate.eof and (more := inflate.decompress(b"", _INFLATE_BYTES)):
        yield more
    yield inflate.flush()


def _png_header(payload: bytes) -> tuple[int, int, int, list[memoryview]] | None:
    """Width, height, channels and the IDAT chunks' data of a PNG this path takes, else None."""
    view = memoryview(payload)
    if bytes(view[:8]) != _PNG_SIGNATURE or bytes(view[12:16]) != b"IHDR" or len(view) < 33:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", view[16:29])
    if depth != 8 or colour not in _PNG_CHANNELS or interlace != 0 or not width or not height:
        return None
    idat, pos = [], 8
    while pos + 8 <= len(view):
        (length,) = struct.unpack(">I", view[pos:pos + 4])
        kind = bytes(view[pos + 4:pos + 8])
        if kind == b"IDAT":
            idat.append(view[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    return width, height, _PNG_CHANNELS[colour], idat
