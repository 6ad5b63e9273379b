"""DNG write and read for ``Frame`` (Adobe DNG Specification 1.4; TIFF/EP CFA tags), with tifffile.

``write_dng`` / ``dng_bytes`` make an uncompressed single-IFD CFA DNG that LibRaw (rawpy)
and Adobe's readers open. The frame's own metadata (sensor, lens, DUT, firmware, extra)
rides along as JSON in ImageDescription so ``read_dng`` gives the same ``Frame`` back.
The same frame always gives the same bytes: DateTime comes from ``frame.timestamp``.

``read_dng`` reads DNGs from anywhere: pixels with tifffile when they are stored plainly
(8/16-bit, uncompressed), else with rawpy/LibRaw (lossless JPEG, packed 12/14-bit...);
the image is cropped to ActiveArea (the CFA pattern is relative to it, as in the DNG SDK).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from station import __version__
from station.atomic import atomic_write_bytes
from station.dng_checks import DescriptionMetadata, check_raw_page
from station.errors import InputError
from station.frame import CFA_PATTERNS, Frame
from station.tiffcheck import check_tiff_structure, quiet_tifffile
from station.validation import read_bytes_limited, validate

DNG_VERSION = (1, 4, 0, 0)
DNG_BACKWARD_VERSION = (1, 1, 0, 0)
#: CFAPattern colour codes (TIFF/EP): 0 red, 1 green, 2 blue.
_COLOUR_CODE = {"R": 0, "G": 1, "B": 2}
_CODE_COLOUR = {0: "R", 1: "G", 2: "B"}
#: XYZ (D65) -> linear sRGB, used as ColorMatrix1 when the frame carries none (camera space ~ sRGB).
XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)
_ILLUMINANT_D65 = 21
_DESCRIPTION_KEY = "m-station"

# TIFF / TIFF-EP / EXIF / DNG tag codes
_MAKE, _MODEL, _DESCRIPTION, _DATETIME = 271, 272, 270, 306
_EXPOSURE_TIME, _ISO, _EXIF_IFD = 33434, 34855, 34665
_F_NUMBER, _EXIF_VERSION, _FOCAL_LENGTH, _LENS_MAKE, _LENS_MODEL = 33437, 36864, 37386, 42035, 42036
_CFA_REPEAT, _CFA_PATTERN, _TIFFEP_ID = 33421, 33422, 37398
_DNG_VERSION, _DNG_BACKWARD, _UNIQUE_MODEL = 50706, 50707, 50708
_CFA_PLANE_COLOR, _CFA_LAYOUT = 50710, 50711
_BLACK_REPEAT, _BLACK_LEVEL, _WHITE_LEVEL = 50713, 50714, 50717
_COLOR_MATRIX1, _AS_SHOT_NEUTRAL, _ILLUMINANT1 = 50721, 50728, 50778
_ACTIVE_AREA = 50829
_PHOTOMETRIC_CFA, _PHOTOMETRIC_LINEAR_RAW = 32803, 34892
#: Largest DNG read (bytes): a 200 MP 16-bit raw is 400 MB.
MAX_DNG_BYTES = 512 * 1024 * 1024


# --- writing -----------------------------------------------------------------------------
def dng_bytes(frame: Frame) -> bytes:
    """The frame as a DNG file, in memory (what the phone sends as a ``dng`` payload)."""
    buffer = io.BytesIO()
    _write(buffer, frame)
    return _append_exif_ifd(buffer.getvalue(), _exif_entries(frame))


def write_dng(path: str | Path, frame: Frame) -> Path:
    """Write the frame as a DNG at ``path``, atomically (temporary file, then rename)."""
    return atomic_write_bytes(path, dng_bytes(frame))


def _write(handle: Any, frame: Frame) -> None:
    names = camera_names(frame)
    make, model = names["make"], names["model"]
    matrix = frame.extra.get("color_matrix1", XYZ_TO_SRGB)
    neutral = frame.extra.get("as_shot_neutral", (1.0, 1.0, 1.0))
    tags: list[tuple[int, int | str, int, Any, bool]] = [
        (_MAKE, "s", 0, make, True),
        (_MODEL, "s", 0, model, True),
        (274, "H", 1, 1, True),  # Orientation: top-left
        (_CFA_REPEAT, "H", 2, (2, 2), True),
        (_CFA_PATTERN, "B", 4, bytes(_COLOUR_CODE[c] for c in frame.cfa), True),
        (_TIFFEP_ID, "B", 4, bytes((1, 0, 0, 0)), True),
        (_DNG_VERSION, "B", 4, bytes(DNG_VERSION), True),
        (_DNG_BACKWARD, "B", 4, bytes(DNG_BACKWARD_VERSION), True),
        (_UNIQUE_MODEL, "s", 0, f"{make} {model}", True),
        (_CFA_PLANE_COLOR, "B", 3, bytes((0, 1, 2)), True),
        (_CFA_LAYOUT, "H", 1, 1, True),
        (_BLACK_REPEAT, "H", 2, (1, 1), True),
        (_BLACK_LEVEL, "I", 1, int(frame.black_level), True),
        (_WHITE_LEVEL, "I", 1, int(frame.white_level), True),
        (_COLOR_MATRIX1, "2i", 9, _fixed_rationals([v for row in matrix for v in row], 10000), True),
        (_AS_SHOT_NEUTRAL, "2I", 3, _rationals(neutral, 1_000_000), True),
        (_ILLUMINANT1, "H", 1, _ILLUMINANT_D65, True),
    ]
    description = json.dumps({_DESCRIPTION_KEY: _description(frame)}, sort_keys=True)
    tifffile.imwrite(
        handle,
        np.ascontiguousarray(frame.data),
        photometric=_PHOTOMETRIC_CFA,
        compression=None,
        subfiletype=0,  # NewSubfileType 0: the main image
        metadata=None,
        description=description,
        software=f"m-station {__version__}",
        datetime=_dng_datetime(frame.timestamp),
        extratags=sorted(tags),
    )


def camera_names(frame: Frame) -> dict[str, str]:
    """Make, Model, LensMake and LensModel as the station's DNGs write them (the lensfun export names the
    camera and lens the same way): the frame's ``extra`` values, else ``M-Station`` / ``<sensor> sensor``
    and the lens id (``<sensor> built-in lens`` without one)."""
    extra = frame.extra
    lens = frame.lens or f"{frame.sensor} built-in lens"
    return {"make": str(extra.get("make", "M-Station")), "model": str(extra.get("model", f"{frame.sensor} sensor")),
            "lens_make": str(extra.get("lens_make", "M-Station")), "lens_model": str(extra.get("lens_model", lens))}


def _exif_entries(frame: Frame) -> list[tuple[int, int, int, bytes]]:
    """The Exif IFD (Exif 2.32): exposure, ISO, lens; (tag, TIFF type, count, big-endian value bytes)."""
    entries: list[tuple[int, int, int, bytes]] = [(_EXIF_VERSION, 7, 4, b"0232")]
    if frame.exposure_s is not None and frame.exposure_s > 0:
        entries.append((_EXPOSURE_TIME, 5, 1, _rational_bytes(frame.exposure_s, 1_000_000_000)))
    if frame.analog_gain:
        entries.append((_ISO, 3, 1, struct.pack(">H", int(round(100 * frame.analog_gain)))))
    f_number, focal_mm = frame.extra.get("f_number"), frame.extra.get("focal_length_mm")
    if isinstance(f_number, int | float) and f_number > 0:
        entries.append((_F_NUMBER, 5, 1, _rational_bytes(f_number, 100)))
    if isinstance(focal_mm, int | float) and focal_mm > 0:
        entries.append((_FOCAL_LENGTH, 5, 1, _rational_bytes(focal_mm, 100)))
    names = camera_names(frame)
    for tag, key in ((_LENS_MAKE, "lens_make"), (_LENS_MODEL, "lens_model")):
        text = names[key].encode("ascii", "replace") + b"\0"
        entries.append((tag, 2, len(text), text))
    return sorted(entries)


def _rational_bytes(value: float, denominator: int) -> bytes:
    return struct.pack(">2I", *_rationals([value], denominator))


def _append_exif_ifd(dng: bytes, entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A copy of a classic TIFF with an Exif IFD of ``entries`` appended and IFD 0 (rewritten at the end,
    nothing else moves) pointing at it through ExifIFD (34665). Values are given big-endian and swapped to
    the file's byte order (TIFF 6.0 sec. 2; Exif 2.32 sec. 4.6.3)."""
    data = bytearray(dng)
    order = "<" if data[:2] == b"II" else ">"
    sizes = {2: 1, 3: 2, 4: 4, 5: 4, 7: 1}

    def encode(typ: int, raw: bytes) -> bytes:
        if order == ">" or sizes[typ] == 1:
            return raw
        n = len(raw) // sizes[typ]
        code = {3: "H", 4: "I", 5: "I"}[typ]
        return struct.pack(f"<{n}{code}", *struct.unpack(f">{n}{code}", raw))

    def ifd(items: list[tuple[int, int, int, bytes]], next_offset: int) -> int:
        values = {}
        for tag, typ, _, raw in items:
            if len(raw) > 4:
                data.extend(b"\0" * (len(data) % 2))
                values[tag] = struct.pack(order + "I", len(data))
                data.extend(encode(typ, raw))
        data.extend(b"\0" * (len(data) % 2))
        start = len(data)
        data.extend(struct.pack(order + "H", len(items)))
        for tag, typ, count, raw in sorted(items):
            inline = values.get(tag, encode(typ, raw).ljust(4, b"\0"))
            data.extend(struct.pack(order + "HHI", tag, typ, count) + inline)
        data.extend(struct.pack(order + "I", next_offset))
        return start

    exif_at = ifd(entries, 0)
    (ifd0,) = struct.unpack(order + "I", data[4:8])
    (n,) = struct.unpack(order + "H", data[ifd0:ifd0 + 2])
    old = {struct.unpack(order + "H", data[ifd0 + 2 + 12 * i:ifd0 + 4 + 12 * i])[0]:
           bytes(data[ifd0 + 2 + 12 * i:ifd0 + 14 + 12 * i]) for i in range(n)}
    (next_ifd,) = struct.unpack(order + "I", data[ifd0 + 2 + 12 * n:ifd0 + 6 + 12 * n])
    old[_EXIF_IFD] = struct.pack(order + "HHII", _EXIF_IFD, 4, 1, exif_at)
    data.extend(b"\0" * (len(data) % 2))
    new_ifd0 = len(data)
    data.extend(struct.pack(order + "H", len(old)) + b"".join(old[t] for t in sorted(old)))
    data.extend(struct.pack(order + "I", next_ifd))
    data[4:8] = struct.pack(order + "I", new_ifd0)
    return bytes(data)


def _description(frame: Frame) -> dict[str, Any]:
    meta = frame.metadata()
    for key in ("width", "height", "cfa", "black_level", "white_level", "exposure_s"):
        meta.pop(key, None)  # carried by DNG tags
    return meta


def _dng_datetime(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        raise InputError(f"frame timestamp {timestamp!r} is not ISO 8601") from None
    return when.strftime("%Y:%m:%d %H:%M:%S")


def _rationals(values: Any, denominator: int) -> tuple[int, ...]:
    """Flat (numerator, denominator, ...) for TIFF (S)RATIONAL, exact for simple fractions."""
    flat: list[int] = []
    for value in values:
        fraction = Fraction(float(value)).limit_denominator(denominator)
        flat += [fraction.numerator, fraction.denominator]
    return tuple(flat)


def _fixed_rationals(values: Any, denominator: int) -> tuple[int, ...]:
    """Flat (numerator, denominator, ...) with one fixed denominator (as cameras write matrices)."""
    flat: list[int] = []
    for value in values:
        flat += [int(round(float(value) * denominator)), denominator]
    return tuple(flat)


# --- reading -----------------------------------------------------------------------------
def read_dng(source: str | Path | bytes | bytearray | memoryview) -> Frame:
    """A ``Frame`` from a DNG file or DNG bytes: CFA data cropped to ActiveArea, pattern, levels."""
    if isinstance(source, bytes | bytearray | memoryview):
        name, raw_bytes = "<DNG bytes>", bytes(source)
    else:
        name = str(source)
        raw_bytes = read_bytes_limited(source, "DNG file", InputError, max_bytes=MAX_DNG_BYTES)
    check_tiff_structure(raw_bytes, name, what="a DNG")
    with quiet_tifffile():
        return _read_checked(raw_bytes, name)


def _read_checked(raw_bytes: bytes, name: str) -> Frame:
    try:
        tif = tifffile.TiffFile(io.BytesIO(raw_bytes))
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error...
        raise InputError(f"{name}: not a DNG (not a TIFF file: {_short(exc)})") from None
    with tif:
        try:
            first = tif.pages.first
            if _DNG_VERSION not in first.tags:
                raise InputError(f"{name}: not a DNG (a TIFF without the DNGVersion tag)")
            page = _raw_page(tif, name)
            tags = _TagReader(first, page, name)
            check_raw_page(page, tags, raw_bytes, name)
            try:
                data, cfa, black, white = _pixels_tifffile(page, tags, name)
            except _NeedRawpyError:
                data, cfa, black, white = _pixels_rawpy(raw_bytes, name)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{name}: unreadable DNG ({_short(exc)})") from None
    return _frame(data, cfa, black, white, tags, name)


class _NeedRawpyError(Exception):
    """The pixels are stored in a way tifffile cannot decode here (compressed, packed bits)."""


class _TagReader:
    """Tag values of the raw IFD, falling back to IFD0 and its EXIF IFD (as DNG readers do)."""

    def __init__(self, first: Any, page: Any, name: str = "<DNG>") -> None:
        self.name = name
        self.pages = [page, first] if page is not first else [first]
        exif = first.tags.get(_EXIF_IFD)
        self.exif: dict[str, Any] = exif.value if exif is not None and isinstance(exif.value, dict) else {}

    def get(self, code: int, default: Any = None) -> Any:
        for page in self.pages:
            tag = page.tags.get(code)
            if tag is not None:
                return tag.value
        return default

    def numbers(self, code: int) -> list[float] | None:
        """A numeric tag's values as floats, (S)RATIONAL pairs divided out; None when absent."""
        for page in self.pages:
            tag = page.tags.get(code)
            if tag is not None:
                value = tag.value
                values = list(value) if isinstance(value, tuple | list | bytes) else [value]
                if int(tag.dtype) in (5, 10):  # RATIONAL, SRATIONAL
                    return _from_rationals(values, f"{self.name}: {tag.name}")
                if not all(isinstance(v, int | float) for v in values):
                    raise InputError(f"{self.name}: {tag.name} {_clip(values)}: expected numbers")
                return [float(v) for v in values]
        return None


def _raw_page(tif: tifffile.TiffFile, name: str) -> Any:
    """The full-resolution CFA IFD: IFD0 or one of its SubIFDs (NewSubfileType 0)."""
    candidates: list[Any] = []
    for page in tif.pages:
        candidates.append(page)
        candidates.extend(page.pages or [])
    photometrics = set()
    for page in candidates:
        subfile = page.tags.get(254)
        photometrics.add(int(page.photometric))
        if int(page.photometric) == _PHOTOMETRIC_CFA and (subfile is None or subfile.value == 0):
            return page
    if _PHOTOMETRIC_LINEAR_RAW in photometrics:
        raise InputError(f"{name}: a LinearRaw (demosaiced) DNG; expected a CFA (Bayer) DNG")
    raise InputError(f"{name}: DNG without a CFA raw image (PhotometricInterpretation 32803)")


def _pixels_tifffile(page: Any, tags: _TagReader, name: str) -> tuple[np.ndarray, str, int, int]:
    if int(page.compression) != 1 or int(page.bitspersample) not in (8, 16) or page.samplesperpixel != 1:
        raise _NeedRawpyError
    data = page.asarray()
    if data.ndim != 2:
        raise InputError(f"{name}: CFA image is not 2-D (shape {data.shape})")
    data = data.astype(np.uint16, copy=False)
    area = tags.get(_ACTIVE_AREA)
    if area is not None:
        top, left, bottom, right = (int(v) for v in area)
        data = data[top:bottom, left:right]
    repeat = tuple(int(v) for v in tags.get(_CFA_REPEAT, (2, 2)))
    pattern = tags.get(_CFA_PATTERN)
    if repeat != (2, 2) or pattern is None:
        raise InputError(f"{name}: CFA repeat {repeat} not supported; expected a 2x2 Bayer pattern")
    plane_colours = bytes(tags.get(_CFA_PLANE_COLOR, b"\x00\x01\x02"))
    try:
        cfa = "".join(_CODE_COLOUR[plane_colours[int(code)]] for code in bytes(pattern))
    except (KeyError, IndexError):
        cfa = "?"
    _check_cfa(cfa, name)
    black_values = tags.numbers(_BLACK_LEVEL) or [0.0]
    white_values = tags.numbers(_WHITE_LEVEL) or [float((1 << int(page.bitspersample)) - 1)]
    black = int(round(float(np.mean(black_values))))
    white = int(round(float(np.mean(white_values))))
    return np.ascontiguousarray(data), cfa, black, white


def _pixels_rawpy(raw_bytes: bytes, name: str) -> tuple[np.ndarray, str, int, int]:
    import rawpy  # LibRaw: lossless JPEG, packed bits, vendor quirks

    try:
        with rawpy.imread(io.BytesIO(raw_bytes)) as raw:
            data = np.array(raw.raw_image_visible, dtype=np.uint16)  # ActiveArea applied by LibRaw
            desc = raw.color_desc.decode("ascii")
            cfa = "".join(desc[int(i)] for i in np.asarray(raw.raw_pattern)[:2, :2].ravel())
            black = int(round(float(np.mean(raw.black_level_per_channel))))
            white = int(raw.white_level)
    except Exception as exc:  # rawpy.LibRawError and friends
        raise InputError(f"{name}: unreadable DNG raw data ({_short(exc)})") from None
    _check_cfa(cfa, name)
    return data, cfa, black, white


def _check_cfa(cfa: str, name: str) -> None:
    if cfa not in CFA_PATTERNS:
        raise InputError(f"{name}: CFA pattern {cfa} not supported; expected {', '.join(CFA_PATTERNS)}")


def _frame(data: np.ndarray, cfa: str, black: int, white: int, tags: _TagReader, name: str) -> Frame:
    if not 0 <= black < white:
        raise InputError(f"{name}: BlackLevel {black} must be below WhiteLevel {white}")
    ours = _our_description(tags.get(_DESCRIPTION), name)
    meta: dict[str, Any] = {}
    if ours is not None:
        keys = ("sensor", "bit_depth", "analog_gain", "lens", "dut_serial", "firmware", "timestamp", "extra")
        for key in keys:
            if key in ours:
                meta[key] = ours[key]
    else:
        extra: dict[str, Any] = {}
        for key, code in (("make", _MAKE), ("model", _MODEL), ("unique_camera_model", _UNIQUE_MODEL)):
            value = tags.get(code)
            if value:
                extra[key] = str(value).strip()
        neutral = tags.numbers(_AS_SHOT_NEUTRAL)
        if neutral is not None and len(neutral) == 3:
            extra["as_shot_neutral"] = neutral
        m = tags.numbers(_COLOR_MATRIX1)
        if m is not None and len(m) == 9:
            extra["color_matrix1"] = [m[0:3], m[3:6], m[6:9]]
        area = tags.get(_ACTIVE_AREA)
        if area is not None:
            extra["active_area"] = [int(v) for v in area]
        meta["extra"] = extra
        bits = tags.get(258)
        meta["bit_depth"] = int(bits[0] if isinstance(bits, tuple) else bits) if bits else white.bit_length()
        iso = tags.get(_ISO, tags.exif.get("ISOSpeedRatings"))
        if isinstance(iso, tuple):
            iso = iso[0] if iso else None
        if iso:
            meta["analog_gain"] = float(iso) / 100.0
        stamp = tags.get(_DATETIME)
        if stamp and str(stamp).strip():
            with contextlib.suppress(ValueError):
                meta["timestamp"] = datetime.strptime(str(stamp).strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    exposure = tags.numbers(_EXPOSURE_TIME)
    if exposure is None and tags.exif.get("ExposureTime") is not None:
        exposure = _from_rationals(tags.exif["ExposureTime"], f"{name}: ExposureTime")
    exposure_s = exposure[0] if exposure else None
    if exposure_s is not None and not (math.isfinite(exposure_s) and 0 <= exposure_s <= 3600):
        raise InputError(f"{name}: ExposureTime {exposure_s!r} s: expected a finite time of 0 .. 3600 s")
    if "bit_depth" in meta and white > (1 << int(meta["bit_depth"])) - 1:
        raise InputError(f"{name}: WhiteLevel {white} does not fit bit_depth {meta['bit_depth']}")
    return Frame(data=data, cfa=cfa, black_level=black, white_level=white,
                 exposure_s=exposure_s if exposure_s else None, **meta)


def _our_description(value: Any, name: str) -> dict[str, Any] | None:
    """Our metadata from ImageDescription, validated (``InputError`` naming the key); None if not ours."""
    if not isinstance(value, str) or _DESCRIPTION_KEY not in value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    ours = parsed.get(_DESCRIPTION_KEY) if isinstance(parsed, dict) else None
    if not isinstance(ours, dict):
        return None
    model = validate(DescriptionMetadata, ours, f"{name}: ImageDescription", InputError)
    return model.model_dump(exclude_unset=True)


def _from_rationals(value: Any, what: str = "rational") -> list[float]:
    """(S)RATIONAL values as floats: tifffile gives a flat (num, den, ...) tuple (or pairs); 0 denominators refused."""
    flat = list(value) if isinstance(value, tuple | list) else [value]
    if flat and isinstance(flat[0], tuple | list):
        flat = [v for pair in flat for v in pair]
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
    for num, den in pairs:
        if not den:
            raise InputError(f"{what} {num}/{den}: a zero denominator")
    return [num / den for num, den in pairs]


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
