"""The lens profile: one versioned JSON document per (sensor, lens, [adapter]) with its provenance and digest.

Schema ``m-station/lens-profile`` version 1 (DESIGN 7, "Lens profile")::

    {"schema": "m-station/lens-profile", "version": 1,
     "sensor": "main" | "m", "lens": slug | null, "adapter": slug | null,
     "image_size": [w, h], "pixel_pitch_um": float,
     "geometry": {"camera_matrix": 3x3, "dist_coeffs": [k1, k2, p1, p2, k3], "rms_px", "views_used"},
     "shading": {"grid": [rows, cols], "map": rows x cols x [R, G_even, G_odd, B] (gains >= 1),
                 "cfa": "RGGB"..., "radial": {"k": [k1, k2, k3], "center_px": [x, y], "radius_norm_px"},
                 "f_number", "distance_m" (the aperture and focus the flats were taken at)},
     "chromatic": {"r_scale", "b_scale", "center_px": [x, y]},
     "sensor_response": {...}, "color": {"wb_gains": [r, g, b], "ccm": 3x3}, "sfr": {...}, "focus": {...},
     "provenance": {"station", "dut_serial", "firmware", "time" (ISO 8601 UTC), "code_version", "tool"},
     "digest": "sha256:<hex>"}

Sections are optional (a bare M sensor has no geometry); each present section is checked. The digest is
SHA-256 over the canonical JSON of the document without its ``digest`` (keys sorted, no whitespace,
UTF-8, no NaN), so any edit after the profile was made is detected (``verify_digest``). The shading map is
in Android's ``LENS_SHADING_MAP`` layout; ``radial`` is lensfun's ``pa`` vignetting model about
``center_px`` with the radius in units of ``radius_norm_px``; ``chromatic`` is lensfun's ``linear`` TCA
model (R and B magnification relative to G).

This module builds, checks and serialises documents; reading and writing files is the caller's (the
station's CLI writes atomically).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from calibration.cfa import CFA_PATTERNS
from calibration.models import FiniteFloat, one_line

__all__ = [
    "SCHEMA", "VERSION", "SENSORS", "SECTIONS", "CFA_PATTERNS", "ProfileError", "make_profile", "make_provenance",
    "validate_profile", "profile_digest", "verify_digest", "canonical_json", "dumps_profile", "loads_profile",
    "check_slug", "profile_stem", "profile_filename",
]

SCHEMA = "m-station/lens-profile"
VERSION = 1
SENSORS = ("main", "m")
SECTIONS = ("geometry", "shading", "chromatic", "sensor_response", "color", "sfr", "focus", "defects", "camera")
PROVENANCE_KEYS = ("station", "dut_serial", "firmware", "time", "code_version", "tool")
_SLUG = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_SLUG_MAX = 64
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class ProfileError(ValueError):
    """A profile document is not what schema version 1 says; the message names the key. One line."""


# ---------------------------------------------------------------------------------------------- names

def check_slug(value: Any, what: str) -> str:
    """A lower-case slug (``summilux-m-35-f1.4``): letters, digits, inner ``-`` and ``.``; else ProfileError."""
    if not isinstance(value, str) or len(value) > _SLUG_MAX or not _SLUG.fullmatch(value):
        raise ProfileError(f"{what} {value!r}: expected a lower-case slug (a-z, 0-9, inner '-' or '.', "
                           f"at most {_SLUG_MAX} characters)")
    return value


def _check_sensor(sensor: Any) -> str:
    if sensor not in SENSORS:
        raise ProfileError(f"sensor {sensor!r}: expected one of {', '.join(SENSORS)}")
    return str(sensor)


def profile_stem(sensor: str, lens: str | None, adapter: str | None) -> str:
    """``<sensor>[-<lens>][-<adapter>]``, every part checked: safe to use in a path."""
    parts = [_check_sensor(sensor)]
    if lens is not None:
        parts.append(check_slug(lens, "lens"))
    if adapter is not None:
        parts.append(check_slug(adapter, "adapter"))
    return "-".join(parts)


def profile_filename(sensor: str, lens: str | None, adapter: str | None) -> str:
    """The profile's file name, ``<sensor>[-<lens>][-<adapter>].profile.json``."""
    return f"{profile_stem(sensor, lens, adapter)}.profile.json"


# ---------------------------------------------------------------------------------------------- plain values

def _plain(value: Any, key: str) -> Any:
    """JSON-ready copy: numpy to Python, tuples to lists, finite numbers only, string keys."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ProfileError(f"{key}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{key}.{k}")
        return out
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), key)
    if isinstance(value, list | tuple):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProfileError(f"{key}: {value} is not a finite number")
        return value
    raise ProfileError(f"{key}: {type(value).__name__} is not JSON data")


# ---------------------------------------------------------------------------------------------- the model

Finite = FiniteFloat
Positive = Annotated[Finite, Field(gt=0.0)]
Slug = Annotated[StrictStr, AfterValidator(lambda v: check_slug_value(v))]
_SECTION = ConfigDict(extra="allow")  # a section may carry more than schema 1 requires (views, residuals...)


def check_slug_value(value: str) -> str:
    if len(value) > _SLUG_MAX or not _SLUG.fullmatch(value):
        raise ValueError(f"expected a lower-case slug (a-z, 0-9, inner '-' or '.', at most {_SLUG_MAX} characters)")
    return value


class Geometry(BaseModel):
    """``geometry``: pinhole camera matrix and OpenCV's 5 distortion coefficients."""

    model_config = _SECTION
    camera_matrix: tuple[tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite]]
    dist_coeffs: tuple[Finite, Finite, Finite, Finite, Finite]
    rms_px: Annotated[Finite, Field(ge=0.0)]
    views_used: Annotated[StrictInt, Field(ge=0)]

    @field_validator("camera_matrix")
    @classmethod
    def _pinhole(cls, k: tuple) -> tuple:
        if k[0][0] <= 0 or k[1][1] <= 0 or k[1][0] != 0 or tuple(k[2]) != (0.0, 0.0, 1.0):
            raise ValueError("expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]], fx, fy > 0")
        return k


class Radial(BaseModel):
    """``shading.radial``: lensfun ``pa`` vignetting about ``center_px``, radius in ``radius_norm_px``."""

    model_config = _SECTION
    k: tuple[Finite, Finite, Finite]
    center_px: tuple[Finite, Finite]
    radius_norm_px: Positive


class Shading(BaseModel):
    """``shading``: Android LENS_SHADING_MAP gains (>= 1), rows x cols x [R, G_even, G_odd, B]."""

    model_config = _SECTION
    grid: tuple[Annotated[StrictInt, Field(ge=2, le=1024)], Annotated[StrictInt, Field(ge=2, le=1024)]]
    map: list[list[tuple[Finite, Finite, Finite, Finite]]]
    cfa: Literal["RGGB", "BGGR", "GRBG", "GBRG"] = "RGGB"
    f_number: Positive | None = None
    distance_m: Positive | None = None
    radial: Radial | None = None

    @field_validator("map")
    @classmethod
    def _map_fits_grid(cls, gains: list, info: ValidationInfo) -> list:
        rows, cols = info.data.get("grid") or (len(gains), len(gains[0]) if gains else 0)
        if len(gains) != rows or any(len(row) != cols for row in gains):
            raise ValueError(f"expected shape [{rows}, {cols}, 4] (the grid)")
        lowest = min((v for row in gains for cell in row for v in cell), default=1.0)
        if lowest < 1.0:
            raise ValueError(f"gains must be >= 1 (Android LENS_SHADING_MAP), lowest {lowest:.6g}")
        return gains


class Chromatic(BaseModel):
    """``chromatic``: lensfun ``linear`` TCA, R and B magnification relative to G."""

    model_config = _SECTION
    r_scale: Positive
    b_scale: Positive
    center_px: tuple[Finite, Finite] | None = None


class Color(BaseModel):
    """``color``: white balance gains (positive) and a 3x3 colour correction matrix."""

    model_config = _SECTION
    wb_gains: tuple[Positive, Positive, Positive]
    ccm: tuple[tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite], tuple[Finite, Finite, Finite]]


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("expected printable text")
    return value


CameraName = Annotated[StrictStr, Field(min_length=1, max_length=100), AfterValidator(_printable)]


class Camera(BaseModel):
    """``camera``: the camera's and lens's names as its DNGs say them (Make, Model, LensMake, LensModel), for
    lensfun's look-up."""

    model_config = ConfigDict(extra="forbid")
    make: CameraName | None = None
    model: CameraName | None = None
    lens_make: CameraName | None = None
    lens_model: CameraName | None = None


def _utc_time(value: str) -> str:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expected ISO 8601 UTC, e.g. 2025-01-31T12:00:00Z") from None
    if when.utcoffset() is None or when.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError("expected UTC (ending in Z or +00:00)")
    return value


NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class Provenance(BaseModel):
    """``provenance``: where and when the profile was made, by what."""

    model_config = ConfigDict(extra="forbid")
    station: NonEmpty
    dut_serial: NonEmpty
    firmware: NonEmpty
    time: Annotated[NonEmpty, AfterValidator(_utc_time)]
    code_version: NonEmpty
    tool: NonEmpty


def _version(value: int) -> int:
    if value != VERSION:
        raise ValueError(f"this code reads version {VERSION}")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError("expected 'sha256:' and 64 lower-case hex digits")
    return value


class LensProfile(BaseModel):
    """A lens profile document, schema ``m-station/lens-profile`` version 1 (see the module doc)."""

    model_config = ConfigDict(extra="forbid")
    schema_: Annotated[Literal["m-station/lens-profile"], Field(alias="schema")]
    version: Annotated[StrictInt, AfterValidator(_version)]
    sensor: Literal["main", "m"]
    lens: Slug | None
    adapter: Slug | None
    image_size: tuple[Annotated[StrictInt, Field(ge=2)], Annotated[StrictInt, Field(ge=2)]]
    pixel_pitch_um: Positive
    provenance: Provenance
    geometry: Geometry = None  # type: ignore[assignment]  # absent, never null
    shading: Shading = None  # type: ignore[assignment]
    chromatic: Chromatic = None  # type: ignore[assignment]
    color: Color = None  # type: ignore[assignment]
    sensor_response: dict[str, Any] = None  # type: ignore[assignment]
    sfr: dict[str, Any] = None  # type: ignore[assignment]
    focus: dict[str, Any] = None  # type: ignore[assignment]
    defects: dict[str, Any] = None  # type: ignore[assignment]
    camera: Camera = None  # type: ignore[assignment]
    digest: Annotated[StrictStr, AfterValidator(_digest)] = None  # type: ignore[assignment]


assert set(SECTIONS) <= set(LensProfile.model_fields), "every profile section needs a field in LensProfile"


def validate_profile(doc: Any) -> dict[str, Any]:
    """Check a document against schema version 1 (the ``LensProfile`` model); return it as a dict.
    ``ProfileError`` lists every problem with its key. The digest's format is checked, not its value
    (``verify_digest``)."""
    if not isinstance(doc, Mapping):
        raise ProfileError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise ProfileError(f"schema {doc.get('schema')!r}: expected {SCHEMA!r}")
    try:
        LensProfile.model_validate(dict(doc))
    except ValidationError as exc:
        raise ProfileError(one_line("profile", exc, LensProfile)) from None
    return dict(doc)


def canonical_json(doc: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, no NaN, without ``digest``: the bytes the digest is taken over."""
    body = {k: v for k, v in doc.items() if k != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def profile_digest(doc: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of ``canonical_json(doc)``."""
    return "sha256:" + hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def verify_digest(doc: Mapping[str, Any]) -> bool:
    """True when the document's ``digest`` matches its content."""
    return isinstance(doc.get("digest"), str) and doc["digest"] == profile_digest(doc)


def make_provenance(*, station: str, dut_serial: str, firmware: str, tool: str, time: str | None = None,
                    code_version: str | None = None) -> dict[str, str]:
    """Provenance block; ``time`` defaults to now (UTC, seconds), ``code_version`` to the installed m-station."""
    if time is None:
        time = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if code_version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            code_version = version("m-station")
        except PackageNotFoundError:
            code_version = "unknown"
    return {"station": station, "dut_serial": dut_serial, "firmware": firmware, "time": time,
            "code_version": code_version, "tool": tool}


def make_profile(*, sensor: str, image_size: Any, pixel_pitch_um: float, provenance: Mapping[str, Any],
                 lens: str | None = None, adapter: str | None = None, geometry: Mapping[str, Any] | None = None,
                 shading: Mapping[str, Any] | None = None, chromatic: Mapping[str, Any] | None = None,
                 sensor_response: Mapping[str, Any] | None = None, color: Mapping[str, Any] | None = None,
                 sfr: Mapping[str, Any] | None = None, focus: Mapping[str, Any] | None = None,
                 defects: Mapping[str, Any] | None = None, camera: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A validated profile with its digest. Sections are plain dicts (numpy arrays allowed); absent ones are
    left out."""
    doc: dict[str, Any] = {"schema": SCHEMA, "version": VERSION, "sensor": sensor, "lens": lens, "adapter": adapter,
                           "image_size": image_size, "pixel_pitch_um": pixel_pitch_um, "provenance": provenance}
    sections = {"geometry": geometry, "shading": shading, "chromatic": chromatic,
                "sensor_response": sensor_response, "color": color, "sfr": sfr, "focus": focus,
                "defects": defects, "camera": camera}
    doc.update({k: v for k, v in sections.items() if v is not None})
    doc = _plain(doc, "profile")
    validate_profile(doc)
    doc["digest"] = profile_digest(doc)
    return doc


# ---------------------------------------------------------------------------------------------- text

def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _pretty(value: Any, level: int) -> str:
    pad = "  " * level
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [f'{pad}  {json.dumps(k, ensure_ascii=False)}: {_pretty(value[k], level + 1)}' for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(_is_scalar(v) for v in value):
            return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
        return "[\n" + ",\n".join(f"{pad}  {_pretty(v, level + 1)}" for v in value) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def dumps_profile(doc: Mapping[str, Any]) -> str:
    """Stable, readable JSON: sorted keys, two-space indent, lists of numbers on one line, final newline."""
    return _pretty(doc, 0) + "\n"


def loads_profile(text: str | bytes) -> dict[str, Any]:
    """Parse and validate a profile's JSON text (``ProfileError`` on bad JSON or schema)."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ProfileError("not JSON: not UTF-8 text") from None
    return validate_profile(doc)


def _reject_constant(name: str) -> Any:
    raise ProfileError(f"not JSON: {name} is not a number JSON allows")
