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
from typing import Any

import numpy as np

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
CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_REQUIRED = ("schema", "version", "sensor", "lens", "adapter", "image_size", "pixel_pitch_um", "provenance")
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


def _need(section: Mapping[str, Any], name: str, key: str) -> Any:
    if key not in section:
        raise ProfileError(f"{name}.{key}: missing")
    return section[key]


def _number(value: Any, key: str, *, low: float = -math.inf, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{key}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise ProfileError(f"{key}: expected a positive number, got {value!r}")
    if value < low:
        raise ProfileError(f"{key}: expected a number >= {low:g}, got {value!r}")
    return float(value)


def _array(value: Any, key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"{key}: expected numbers of shape {list(shape)}") from None
    if arr.shape != shape:
        raise ProfileError(f"{key}: expected shape {list(shape)}, got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ProfileError(f"{key}: expected finite numbers")
    return arr


def _int(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProfileError(f"{key}: expected an integer >= {low}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------- sections

def _check_geometry(g: Mapping[str, Any]) -> None:
    k = _array(_need(g, "geometry", "camera_matrix"), "geometry.camera_matrix", (3, 3))
    if k[0, 0] <= 0 or k[1, 1] <= 0 or k[1, 0] != 0 or tuple(k[2]) != (0.0, 0.0, 1.0):
        raise ProfileError("geometry.camera_matrix: expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]], fx, fy > 0")
    _array(_need(g, "geometry", "dist_coeffs"), "geometry.dist_coeffs", (5,))
    _number(_need(g, "geometry", "rms_px"), "geometry.rms_px", low=0.0)
    _int(_need(g, "geometry", "views_used"), "geometry.views_used", 0)


def _check_shading(s: Mapping[str, Any]) -> None:
    grid = _need(s, "shading", "grid")
    if not isinstance(grid, list) or len(grid) != 2:
        raise ProfileError(f"shading.grid: expected [rows, cols], got {grid!r}")
    rows, cols = (_int(v, "shading.grid", 2) for v in grid)
    gains = _array(_need(s, "shading", "map"), "shading.map", (rows, cols, 4))
    if np.any(gains < 1.0):
        raise ProfileError(f"shading.map: gains must be >= 1 (Android LENS_SHADING_MAP), lowest {gains.min():.6g}")
    if "cfa" in s and s["cfa"] not in CFA_PATTERNS:
        raise ProfileError(f"shading.cfa {s['cfa']!r}: expected one of {', '.join(CFA_PATTERNS)}")
    for key in ("f_number", "distance_m"):
        if key in s:
            _number(s[key], f"shading.{key}", positive=True)
    if "radial" in s:
        radial = s["radial"]
        if not isinstance(radial, Mapping):
            raise ProfileError("shading.radial: expected an object {k, center_px, radius_norm_px}")
        _array(_need(radial, "shading.radial", "k"), "shading.radial.k", (3,))
        _array(_need(radial, "shading.radial", "center_px"), "shading.radial.center_px", (2,))
        _number(_need(radial, "shading.radial", "radius_norm_px"), "shading.radial.radius_norm_px", positive=True)


def _check_chromatic(c: Mapping[str, Any]) -> None:
    _number(_need(c, "chromatic", "r_scale"), "chromatic.r_scale", positive=True)
    _number(_need(c, "chromatic", "b_scale"), "chromatic.b_scale", positive=True)
    if "center_px" in c:
        _array(c["center_px"], "chromatic.center_px", (2,))


def _check_color(c: Mapping[str, Any]) -> None:
    gains = _array(_need(c, "color", "wb_gains"), "color.wb_gains", (3,))
    if np.any(gains <= 0):
        raise ProfileError("color.wb_gains: expected three positive gains [r, g, b]")
    _array(_need(c, "color", "ccm"), "color.ccm", (3, 3))


def _check_camera(c: Mapping[str, Any]) -> None:
    """The camera's names as its DNGs say them (Make, Model, LensMake, LensModel): printable text."""
    for key, value in c.items():
        if key not in ("make", "model", "lens_make", "lens_model"):
            raise ProfileError(f"camera.{key}: unknown key; allowed: make, model, lens_make, lens_model")
        if not isinstance(value, str) or not value.isprintable() or not 0 < len(value) <= 100:
            raise ProfileError(f"camera.{key} {value!r}: expected printable text of 1 to 100 characters")


_CHECKS = {"geometry": _check_geometry, "shading": _check_shading, "chromatic": _check_chromatic,
           "color": _check_color, "camera": _check_camera}


def _check_provenance(p: Any) -> None:
    if not isinstance(p, Mapping):
        raise ProfileError("provenance: expected an object")
    for key in PROVENANCE_KEYS:
        value = _need(p, "provenance", key)
        if not isinstance(value, str) or not value:
            raise ProfileError(f"provenance.{key}: expected a non-empty string, got {value!r}")
    time = p["time"]
    try:
        when = datetime.fromisoformat(time)
    except ValueError:
        raise ProfileError(f"provenance.time {time!r}: expected ISO 8601 UTC, e.g. 2025-01-31T12:00:00Z") from None
    if when.utcoffset() is None or when.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ProfileError(f"provenance.time {time!r}: expected UTC (ending in Z or +00:00)")


# ---------------------------------------------------------------------------------------------- document

def validate_profile(doc: Any) -> dict[str, Any]:
    """Check a document against schema version 1; return it. Wrong schema, unknown version, missing or
    malformed keys raise ``ProfileError`` naming the key. The digest's format is checked, not its value
    (``verify_digest``)."""
    if not isinstance(doc, Mapping):
        raise ProfileError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise ProfileError(f"schema {doc.get('schema')!r}: expected {SCHEMA!r}")
    if "version" not in doc:
        raise ProfileError("version: missing")
    if isinstance(doc["version"], bool) or doc["version"] != VERSION:
        raise ProfileError(f"version {doc['version']!r}: this code reads version {VERSION}")
    for key in _REQUIRED:
        if key not in doc:
            raise ProfileError(f"{key}: missing")
    known = set(_REQUIRED) | set(SECTIONS) | {"digest"}
    for key in doc:
        if key not in known:
            raise ProfileError(f"{key}: unknown key in a version {VERSION} profile")
    _check_sensor(doc["sensor"])
    for key in ("lens", "adapter"):
        if doc[key] is not None:
            check_slug(doc[key], key)
    size = doc["image_size"]
    if not isinstance(size, list) or len(size) != 2:
        raise ProfileError(f"image_size: expected [width, height], got {size!r}")
    for v in size:
        _int(v, "image_size", 2)
    _number(doc["pixel_pitch_um"], "pixel_pitch_um", positive=True)
    _check_provenance(doc["provenance"])
    for name in SECTIONS:
        if name in doc:
            if not isinstance(doc[name], Mapping):
                raise ProfileError(f"{name}: expected an object")
            check = _CHECKS.get(name)
            if check:
                check(doc[name])
    if "digest" in doc and (not isinstance(doc["digest"], str) or not _DIGEST.fullmatch(doc["digest"])):
        raise ProfileError(f"digest {doc['digest']!r}: expected 'sha256:' and 64 lower-case hex digits")
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
