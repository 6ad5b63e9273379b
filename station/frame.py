"""``Frame``: one raw capture, a uint16 CFA array and the metadata that makes it measurable (DESIGN 4).

``calibration/`` takes what it needs by attribute (``frame.data``, ``frame.cfa``,
``frame.black_level`` ...), so a frame from the bench, the twin or a DNG from elsewhere
is measured the same way. RAW10 lives in ``station.raw10``, DNG in ``station.dng``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import colour
import cv2
import numpy as np

from calibration.cfa import CFA_PATTERNS, CHANNELS, channel_offsets
from station.atomic import atomic_write_bytes
from station.errors import InputError
from station.raw10 import pack_raw10, unpack_raw10


def cfa_offsets(cfa: str) -> dict[str, tuple[int, int]]:
    """(row, column) of R, Gr, Gb, B in the 2x2 quad (``calibration.cfa``); ``InputError`` for another order."""
    if cfa not in CFA_PATTERNS:
        raise InputError(f"CFA pattern {cfa!r} not supported; allowed: {', '.join(CFA_PATTERNS)}")
    return channel_offsets(cfa)


@dataclass
class Frame:
    """A raw CFA frame: ``data`` (H, W) uint16 DN, plus how it was taken.

    ``extra`` holds anything else as JSON-able values (the twin's truth, ``as_shot_neutral``
    [R, G, B] for white balance, a DNG's ``active_area`` ...).
    """

    data: np.ndarray
    sensor: str = "main"
    cfa: str = "RGGB"
    black_level: int = 64
    white_level: int = 1023
    bit_depth: int = 10
    exposure_s: float | None = None
    analog_gain: float = 1.0
    lens: str | None = None
    dut_serial: str | None = None
    firmware: str | None = None
    timestamp: str | None = None  # ISO 8601
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, np.ndarray) or self.data.ndim != 2 or self.data.dtype != np.uint16:
            got = (f"{self.data.dtype} {self.data.shape}" if isinstance(self.data, np.ndarray)
                   else type(self.data).__name__)
            raise InputError(f"frame data must be a 2-D uint16 CFA array, got {got}")
        cfa_offsets(self.cfa)  # validates
        if not 0 <= self.black_level < self.white_level:
            raise InputError(f"frame levels must satisfy 0 <= black < white, "
                             f"got black {self.black_level}, white {self.white_level}")

    # --- RAW10 ----------------------------------------------------------------------
    @classmethod
    def from_raw10(cls, buf: bytes | bytearray | memoryview | np.ndarray, width: int, height: int,
                   stride_bytes: int | None = None, **meta: Any) -> Frame:
        """A frame from RAW10 bytes (``station.raw10``) and its metadata as keywords."""
        return cls(data=unpack_raw10(buf, width, height, stride_bytes), **meta)

    def to_raw10(self, stride_bytes: int | None = None) -> bytes:
        """The frame as RAW10 bytes (needs 10-bit codes and a width that is a multiple of 4)."""
        return pack_raw10(self.data, stride_bytes)

    # --- geometry ---------------------------------------------------------------------
    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def cfa_plane(self, name: str) -> np.ndarray:
        """The samples of one CFA channel (``R``, ``Gr``, ``Gb``, ``B``): a strided view, no copy."""
        offsets = cfa_offsets(self.cfa)
        if name not in offsets:
            raise InputError(f"CFA channel {name!r} unknown; allowed: {', '.join(CHANNELS)}")
        row, col = offsets[name]
        return self.data[row::2, col::2]

    # --- metadata ---------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything but the pixels, JSON-able, with ``width`` and ``height``."""
        meta: dict[str, Any] = {"width": self.width, "height": self.height}
        for f in fields(self):
            if f.name != "data":
                meta[f.name] = _jsonable(getattr(self, f.name))
        return meta

    def white_balance_gains(self) -> tuple[float, float, float]:
        """R, G, B gains from ``extra['as_shot_neutral']`` (as DNG AsShotNeutral), else 1, 1, 1."""
        neutral = self.extra.get("as_shot_neutral")
        if not neutral:
            return (1.0, 1.0, 1.0)
        r, g, b = (float(v) for v in neutral)
        return (g / r, 1.0, g / b)

    # --- preview ----------------------------------------------------------------------
    def preview8(self, max_side: int | None = 1024, exposure_gain: float = 1.0) -> np.ndarray:
        """An 8-bit sRGB (h, w, 3) preview for reports.

        Black level subtracted and scaled to the white level, each 2x2 quad one RGB pixel
        (R, mean of the greens, B), white balance from ``white_balance_gains``, then
        downscaled by block means so the longer side is at most ``max_side``, and encoded
        with the sRGB transfer function (IEC 61966-2-1).
        """
        half_h, half_w = self.height // 2, self.width // 2
        if half_h < 1 or half_w < 1:
            raise InputError(f"frame {self.width}x{self.height} too small for a preview")
        factor = 1 if max_side is None else max(1, math.ceil(max(half_h, half_w) / max_side))
        out_h, out_w = half_h // factor, half_w // factor
        planes = {name: _block_mean(self.cfa_plane(name), factor, out_h, out_w) for name in CHANNELS}
        scale = 1.0 / (self.white_level - self.black_level)
        gains = self.white_balance_gains()
        rgb = np.empty((out_h, out_w, 3), dtype=np.float32)
        rgb[..., 0] = planes["R"]
        np.add(planes["Gr"], planes["Gb"], out=rgb[..., 1])
        rgb[..., 1] *= 0.5
        rgb[..., 2] = planes["B"]
        rgb -= self.black_level
        rgb *= np.asarray(gains, dtype=np.float32) * np.float32(scale * exposure_gain)
        return srgb8(rgb)

    def save_preview_png(self, path: str | Path, max_side: int | None = 1024) -> Path:
        """Write ``preview8`` as a PNG, atomically."""
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(self.preview8(max_side)[..., ::-1]))
        if not ok:
            raise InputError(f"{path}: PNG encoding failed")
        return atomic_write_bytes(path, encoded.tobytes())


#: Linear 0..1 in 65536 steps -> 8-bit sRGB code (IEC 61966-2-1, colour-science's encoding): a whole frame's
#: preview is one table look-up (half a step of the input moves a code by at most 0.03).
_SRGB8_LUT = np.round(colour.models.eotf_inverse_sRGB(np.linspace(0.0, 1.0, 65536)) * 255.0).astype(np.uint8)


def srgb8(linear: np.ndarray) -> np.ndarray:
    """8-bit sRGB codes of linear values in 0..1 (clipped)."""
    index = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0) * np.float32(65535.0)
    return _SRGB8_LUT[(index + np.float32(0.5)).astype(np.uint16)]


def _block_mean(plane: np.ndarray, factor: int, out_h: int, out_w: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of a (strided) plane, float32, cropped to whole blocks."""
    plane = plane[: out_h * factor, : out_w * factor]
    if factor == 1:
        return plane.astype(np.float32)
    return plane.reshape(out_h, factor, out_w, factor).mean(axis=(1, 3), dtype=np.float32)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
