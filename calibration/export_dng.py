"""A lens profile as DNG opcodes: ``WarpRectilinear`` (OpcodeList3) and ``GainMap`` (OpcodeList2); a defect
map as ``FixBadPixelsList`` (OpcodeList1).

Binary layout per the DNG 1.4 specification, chapter 7 "Opcode List Processing" (and the DNG SDK's
``dng_opcode_list`` / ``dng_opcode_WarpRectilinear`` / ``dng_opcode_GainMap``), all big-endian whatever the
TIFF's byte order:

- an opcode list: LONG count, then the opcodes;
- an opcode: LONG opcode ID, LONG DNG version it needs (1.3.0.0 = ``01 03 00 00``), LONG flags (bit 0
  optional, bit 1 may be skipped for previews), LONG parameter byte count, the parameters;
- ``WarpRectilinear`` (ID 1): LONG N planes, N x 6 DOUBLE ``kr0 kr1 kr2 kr3 kt0 kt1``, DOUBLE ``cx``,
  DOUBLE ``cy`` (centre normalised to the image);
- ``GainMap`` (ID 9): LONG Top, Left, Bottom, Right, Plane, Planes, RowPitch, ColPitch, MapPointsV,
  MapPointsH; DOUBLE MapSpacingV, MapSpacingH, MapOriginV, MapOriginH; LONG MapPlanes; FLOAT gains
  (row by row, column by column, plane by plane);
- ``FixBadPixelsList`` (ID 5, DNG 1.6 sec. 7.3 / 1.4 chapter 7): LONG BayerPhase (0 RGGB, 1 GRBG, 2 GBRG,
  3 BGGR), LONG BadPointCount, LONG BadRectCount, then per point LONG row, LONG column, then per rectangle
  LONG top, left, bottom, right. It goes in OpcodeList1 (on the raw data, before linearization).

``WarpRectilinear`` comes from the geometry section (``calibration.distortion_models.opencv_to_dng``); with a
chromatic section it has three planes (R, G, B) whose coefficients are the green plane's times the plane's
magnification (lateral CA about the optical centre). ``GainMap`` comes from the shading map, one opcode per
CFA colour (RowPitch = ColPitch = 2, Top/Left the colour's place in the 2x2 tile, as Android's DngCreator
writes them). The Android map's points sit on pixel centres ``0 .. W-1``; the DNG SDK samples a map at
``(col + 0.5) / W``, so MapOriginH = 0.5 / W and MapSpacingH = (W - 1) / ((N - 1) W) (and likewise V).

``embed_opcode_lists`` adds the lists (tags 51009 OpcodeList2, 51022 OpcodeList3) to a copy of a DNG whose
raw image is IFD 0 without moving anything: the new IFD 0 is appended and the header points at it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.cfa import ANDROID_CHANNELS, android_offsets
from calibration.distortion_models import BrownConrady, Conversion, DngWarpRectilinear, opencv_to_dng
from calibration.profile import ProfileError, validate_profile

__all__ = [
    "OPCODE_WARP_RECTILINEAR", "OPCODE_GAIN_MAP", "DNG_VERSION_1_3", "FLAG_OPTIONAL", "FLAG_PREVIEW_SKIP",
    "TAG_OPCODE_LIST2", "TAG_OPCODE_LIST3", "DngOpcodeError", "WarpRectilinear", "GainMap", "RawOpcode",
    "dng_opcode_list", "parse_opcode_list", "warp_from_profile", "gain_maps_from_profile", "DngExport",
    "dng_export", "embed_opcode_lists", "OPCODE_FIX_BAD_PIXELS_LIST", "TAG_OPCODE_LIST1", "FixBadPixelsList",
    "fix_bad_pixels_from_map",
]

OPCODE_WARP_RECTILINEAR = 1
OPCODE_GAIN_MAP = 9
OPCODE_FIX_BAD_PIXELS_LIST = 5
BAYER_PHASE = {"RGGB": 0, "GRBG": 1, "GBRG": 2, "BGGR": 3}
DNG_VERSION_1_3 = (1, 3, 0, 0)
FLAG_OPTIONAL = 1
FLAG_PREVIEW_SKIP = 2
TAG_OPCODE_LIST1, TAG_OPCODE_LIST2, TAG_OPCODE_LIST3 = 51008, 51009, 51022


class DngOpcodeError(ValueError):
    """Opcode bytes that do not parse (truncated, sizes that disagree); one line."""


@dataclass(frozen=True)
class WarpRectilinear:
    """Opcode 1: per plane (kr0, kr1, kr2, kr3, kt0, kt1); centre (cx, cy) normalised to the image."""

    planes: tuple[tuple[float, ...], ...]
    center: tuple[float, float]
    flags: int = FLAG_OPTIONAL
    version: tuple[int, int, int, int] = DNG_VERSION_1_3
    opcode_id: int = field(default=OPCODE_WARP_RECTILINEAR, init=False)

    def params(self) -> bytes:
        out = [struct.pack(">I", len(self.planes))]
        for plane in self.planes:
            out.append(struct.pack(">6d", *plane))
        out.append(struct.pack(">2d", *self.center))
        return b"".join(out)


@dataclass(frozen=True)
class GainMap:
    """Opcode 9: an area (top, left, bottom, right; plane, planes; row and column pitch) and a gain map."""

    top: int
    left: int
    bottom: int
    right: int
    plane: int
    planes: int
    row_pitch: int
    col_pitch: int
    spacing: tuple[float, float]  # (V, H), normalised to the image
    origin: tuple[float, float]  # (V, H), normalised to the image
    gains: np.ndarray  # (points V, points H, map planes) float32
    flags: int = FLAG_OPTIONAL
    version: tuple[int, int, int, int] = DNG_VERSION_1_3
    opcode_id: int = field(default=OPCODE_GAIN_MAP, init=False)

    def params(self) -> bytes:
        gains = np.asarray(self.gains, dtype=np.float32)
        if gains.ndim != 3:
            raise DngOpcodeError(f"GainMap gains: expected (points V, points H, planes), got shape {gains.shape}")
        pv, ph, planes = gains.shape
        head = struct.pack(">10I4dI", self.top, self.left, self.bottom, self.right, self.plane, self.planes,
                           self.row_pitch, self.col_pitch, pv, ph, *self.spacing, *self.origin, planes)
        return head + gains.astype(">f4").tobytes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GainMap):
            return NotImplemented
        fields = ("top", "left", "bottom", "right", "plane", "planes", "row_pitch", "col_pitch", "spacing",
                  "origin", "flags", "version")
        return (all(getattr(self, f) == getattr(other, f) for f in fields)
                and np.array_equal(np.asarray(self.gains, np.float32), np.asarray(other.gains, np.float32)))


@dataclass(frozen=True)
class RawOpcode:
    """Any other opcode, kept as its parameter bytes."""

    opcode_id: int
    version: tuple[int, int, int, int]
    flags: int
    data: bytes

    def params(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class FixBadPixelsList:
    """Opcode 5: bad pixels as (row, column) points and (top, left, bottom, right) rectangles."""

    bayer_phase: int
    points: tuple[tuple[int, int], ...]
    rects: tuple[tuple[int, int, int, int], ...] = ()
    flags: int = 0
    version: tuple[int, int, int, int] = DNG_VERSION_1_3
    opcode_id: int = field(default=OPCODE_FIX_BAD_PIXELS_LIST, init=False)

    def params(self) -> bytes:
        out = [struct.pack(">3I", self.bayer_phase, len(self.points), len(self.rects))]
        out += [struct.pack(">2I", row, col) for row, col in self.points]
        out += [struct.pack(">4I", *rect) for rect in self.rects]
        return b"".join(out)


def fix_bad_pixels_from_map(hot_pixel_map: Sequence[int], cfa: str) -> FixBadPixelsList:
    """``FixBadPixelsList`` from an Android ``hotPixelMap`` (x, y pairs), points sorted by row, column."""
    if cfa not in BAYER_PHASE:
        raise DngOpcodeError(f"FixBadPixelsList: CFA {cfa!r}; allowed: {', '.join(BAYER_PHASE)}")
    if len(hot_pixel_map) % 2:
        raise DngOpcodeError("FixBadPixelsList: hotPixelMap must be (x, y) pairs")
    points = sorted((int(y), int(x)) for x, y in zip(hot_pixel_map[0::2], hot_pixel_map[1::2], strict=True))
    return FixBadPixelsList(BAYER_PHASE[cfa], tuple(points))


Opcode = WarpRectilinear | GainMap | FixBadPixelsList | RawOpcode


def dng_opcode_list(opcodes: Sequence[Opcode]) -> bytes:
    """An opcode list's bytes (the value of OpcodeList1/2/3)."""
    out = [struct.pack(">I", len(opcodes))]
    for op in opcodes:
        params = op.params()
        out.append(struct.pack(">I4BII", op.opcode_id, *op.version, op.flags, len(params)))
        out.append(params)
    return b"".join(out)


def _take(data: bytes, pos: int, n: int, what: str) -> bytes:
    if pos + n > len(data):
        raise DngOpcodeError(f"opcode list truncated: {what} needs {n} bytes at offset {pos}, "
                             f"{len(data) - pos} left")
    return data[pos: pos + n]


def _parse_warp(params: bytes, version: tuple[int, int, int, int], flags: int) -> WarpRectilinear:
    (n,) = struct.unpack(">I", _take(params, 0, 4, "WarpRectilinear planes"))
    if n < 1 or len(params) != 4 + 48 * n + 16:
        raise DngOpcodeError(f"WarpRectilinear: {len(params)} parameter bytes do not fit {n} plane(s)")
    planes = tuple(struct.unpack(">6d", params[4 + 48 * i: 52 + 48 * i]) for i in range(n))
    center = struct.unpack(">2d", params[4 + 48 * n:])
    return WarpRectilinear(planes, (center[0], center[1]), flags, version)


def _parse_gain_map(params: bytes, version: tuple[int, int, int, int], flags: int) -> GainMap:
    head = struct.unpack(">10I4dI", _take(params, 0, 76, "GainMap header"))
    top, left, bottom, right, plane, planes, row_pitch, col_pitch, pv, ph = head[:10]
    spacing, origin, map_planes = (head[10], head[11]), (head[12], head[13]), head[14]
    if len(params) != 76 + 4 * pv * ph * map_planes:
        raise DngOpcodeError(f"GainMap: {len(params)} parameter bytes do not fit {pv}x{ph}x{map_planes} gains")
    gains = np.frombuffer(params, dtype=">f4", offset=76).astype(np.float32).reshape(pv, ph, map_planes)
    return GainMap(top, left, bottom, right, plane, planes, row_pitch, col_pitch, spacing, origin, gains,
                   flags, version)


def _parse_fix_bad_pixels(params: bytes, version: tuple[int, int, int, int], flags: int) -> FixBadPixelsList:
    phase, n_points, n_rects = struct.unpack(">3I", _take(params, 0, 12, "FixBadPixelsList header"))
    if len(params) != 12 + 8 * n_points + 16 * n_rects:
        raise DngOpcodeError(f"FixBadPixelsList: {len(params)} parameter bytes do not fit {n_points} points "
                             f"and {n_rects} rectangles")
    values = struct.unpack(f">{2 * n_points + 4 * n_rects}I", params[12:])
    points = tuple((values[2 * i], values[2 * i + 1]) for i in range(n_points))
    rest = values[2 * n_points:]
    rects = tuple(tuple(rest[4 * i: 4 * i + 4]) for i in range(n_rects))
    return FixBadPixelsList(phase, points, rects, flags, version)  # type: ignore[arg-type]


def parse_opcode_list(data: bytes) -> list[Opcode]:
    """The opcodes of an opcode list; WarpRectilinear and GainMap decoded, others kept raw."""
    data = bytes(data)
    (count,) = struct.unpack(">I", _take(data, 0, 4, "opcode count"))
    pos, out = 4, []
    for _ in range(count):
        opcode_id, v0, v1, v2, v3, flags, size = struct.unpack(">I4BII", _take(data, pos, 16, "opcode header"))
        params = _take(data, pos + 16, size, f"opcode {opcode_id} parameters")
        version = (v0, v1, v2, v3)
        if opcode_id == OPCODE_WARP_RECTILINEAR:
            out.append(_parse_warp(params, version, flags))
        elif opcode_id == OPCODE_GAIN_MAP:
            out.append(_parse_gain_map(params, version, flags))
        elif opcode_id == OPCODE_FIX_BAD_PIXELS_LIST:
            out.append(_parse_fix_bad_pixels(params, version, flags))
        else:
            out.append(RawOpcode(opcode_id, version, flags, params))
        pos += 16 + size
    if pos != len(data):
        raise DngOpcodeError(f"opcode list: {len(data) - pos} bytes after the last of {count} opcodes")
    return out


# ---------------------------------------------------------------------------------------------- from a profile

def warp_from_profile(doc: Mapping[str, Any]) -> tuple[WarpRectilinear, Conversion]:
    """``WarpRectilinear`` from the geometry section (3 planes R, G, B with a chromatic section)."""
    g = doc["geometry"]
    model = BrownConrady.from_opencv(g["camera_matrix"], g["dist_coeffs"], tuple(doc["image_size"]))
    conversion = opencv_to_dng(model)
    warp: DngWarpRectilinear = conversion.model
    (coeffs,) = warp.planes
    chromatic = doc.get("chromatic")
    if chromatic is None:
        planes: tuple[tuple[float, ...], ...] = (tuple(coeffs),)
    else:
        scales = (float(chromatic["r_scale"]), 1.0, float(chromatic["b_scale"]))
        planes = tuple(tuple(s * c for c in coeffs) for s in scales)
    return WarpRectilinear(planes, warp.center), conversion


def gain_maps_from_profile(doc: Mapping[str, Any]) -> list[GainMap]:
    """One ``GainMap`` per CFA colour from the Android-layout shading map (needs ``shading.cfa``)."""
    shading = doc["shading"]
    cfa = shading.get("cfa")
    if cfa is None:
        raise ProfileError("shading.cfa: missing; a DNG GainMap needs the CFA order (RGGB, BGGR, GRBG, GBRG)")
    w, h = doc["image_size"]
    gains = np.asarray(shading["map"], dtype=np.float32)
    rows, cols = gains.shape[:2]
    spacing = ((h - 1) / ((rows - 1) * h), (w - 1) / ((cols - 1) * w))
    origin = (0.5 / h, 0.5 / w)
    out = []
    tile = android_offsets(cfa)
    for index, channel in enumerate(ANDROID_CHANNELS):
        top, left = tile[channel]
        out.append(GainMap(top, left, h, w, 0, 1, 2, 2, spacing, origin, gains[:, :, index: index + 1].copy()))
    return out


@dataclass(frozen=True)
class DngExport:
    """Opcode list bytes (None when the profile has nothing for that list) and the warp's conversion."""

    opcode_list2: bytes | None
    opcode_list3: bytes | None
    warp: Conversion | None


def dng_export(doc: Mapping[str, Any]) -> DngExport:
    """OpcodeList2 (GainMap per CFA colour, from shading) and OpcodeList3 (WarpRectilinear, from geometry)."""
    doc = validate_profile(doc)
    list2 = dng_opcode_list(gain_maps_from_profile(doc)) if "shading" in doc else None
    list3, conversion = None, None
    if "geometry" in doc:
        warp, conversion = warp_from_profile(doc)
        list3 = dng_opcode_list([warp])
    if list2 is None and list3 is None:
        raise ProfileError("profile has no geometry or shading section: nothing for DNG opcodes")
    return DngExport(list2, list3, conversion)


# ---------------------------------------------------------------------------------------------- into a DNG

_TIFF_UNDEFINED = 7
_NEW_SUBFILE_TYPE = 254


def _first_value(entry: bytes, typ: int, order: str) -> int:
    """The first value of an inline SHORT or LONG IFD entry."""
    return struct.unpack(order + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]


def embed_opcode_lists(dng: bytes, *, opcode_list2: bytes | None = None, opcode_list3: bytes | None = None,
                       opcode_list1: bytes | None = None) -> bytes:
    """A copy of a (classic TIFF) DNG with OpcodeList1/2/3 set on IFD 0, which must hold the raw image.

    Nothing in the file moves: the tag data and a new IFD 0 (old entries plus the lists, tags sorted) are
    appended and the header's first-IFD offset points at it.
    """
    data = bytearray(dng)
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        raise DngOpcodeError("not a classic TIFF/DNG (BigTIFF and other files are not supported)")
    (ifd0,) = struct.unpack(order + "I", data[4:8])
    (n,) = struct.unpack(order + "H", _take(bytes(data), ifd0, 2, "IFD 0 entry count"))
    raw_entries = _take(bytes(data), ifd0 + 2, 12 * n + 4, "IFD 0")
    entries = {}
    for i in range(n):
        entry = raw_entries[12 * i: 12 * i + 12]
        tag, typ, count = struct.unpack(order + "HHI", entry[:8])
        entries[tag] = entry
        if tag == _NEW_SUBFILE_TYPE and _first_value(entry, typ, order) != 0:
            raise DngOpcodeError("IFD 0 is not the raw image (a preview with the raw in a SubIFD): not supported")
    (next_ifd,) = struct.unpack(order + "I", raw_entries[12 * n:])

    def align() -> None:
        if len(data) % 2:
            data.append(0)

    for tag, value in ((TAG_OPCODE_LIST1, opcode_list1), (TAG_OPCODE_LIST2, opcode_list2),
                       (TAG_OPCODE_LIST3, opcode_list3)):
        if value is None:
            continue
        if len(value) <= 4:
            inline = bytes(value) + b"\x00" * (4 - len(value))
        else:
            align()
            inline = struct.pack(order + "I", len(data))
            data.extend(value)
        entries[tag] = struct.pack(order + "HHI", tag, _TIFF_UNDEFINED, len(value)) + inline
    align()
    new_ifd = len(data)
    data.extend(struct.pack(order + "H", len(entries)))
    for tag in sorted(entries):
        data.extend(entries[tag])
    data.extend(struct.pack(order + "I", next_ifd))
    data[4:8] = struct.pack(order + "I", new_ifd)
    return bytes(data)
