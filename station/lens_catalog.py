"""The station's lens catalogue: focal length, apertures, close focus, focus throw and 6-bit code of each lens.

Shipped as ``station/data/lenses.toml`` (package data); ``use_catalog(FILE)`` (``station run --lens-catalog``)
adds lenses or overrides entries from a file of the same layout. This is the station's own data, as a lens
maker publishes it: the twin's simulation parameters (``station/twin/lenses.py``) are never read here.

Focus is the thin lens ``1/f = 1/s + 1/v`` with unit extension on a helicoid: ring 0 deg is infinity, the
extension grows linearly with the ring angle to ``f^2 / (s_close - f)`` at ``focus_throw_deg``.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from station.errors import ConfigError

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,63}$")
#: Files given with ``use_catalog``, applied over the shipped catalogue in order.
_EXTRA: list[Path] = []


@dataclass(frozen=True)
class LensData:
    """One lens of the catalogue (lengths mm, angles deg)."""

    id: str
    name: str
    mount: str  # "m" or "phone"
    focal_length_mm: float
    apertures: tuple[float, ...]  # widest first
    close_focus_mm: float
    focus_throw_deg: float | None = None
    code: int | None = None  # 6-bit code the M adapter reads

    @property
    def close_extension_mm(self) -> float:
        """Helicoid extension beyond infinity focus at close focus: ``f^2 / (s_close - f)``."""
        f = self.focal_length_mm
        return f * f / (self.close_focus_mm - f)

    def ring_for_distance_deg(self, distance_mm: float) -> float:
        """Focus ring angle that focuses at ``distance_mm`` (thin lens), clamped to the ring's stops."""
        if self.focus_throw_deg is None:
            raise ConfigError(f"lens {self.id} has no focus ring")
        f = self.focal_length_mm
        extension = 0.0 if math.isinf(distance_mm) else f * f / (float(distance_mm) - f)
        ring = extension / self.close_extension_mm * self.focus_throw_deg
        return min(max(ring, 0.0), self.focus_throw_deg)


def _number(source: str, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise ConfigError(f"{source}: {key} = {value!r}: expected a number in {lo:g}..{hi:g}")
    return float(value)


def _entry(source: str, lens_id: str, table: Any) -> LensData:
    """One ``[lens-id]`` table checked: ``ConfigError`` naming the file, key and what is allowed."""
    if not _ID_RE.match(lens_id):
        raise ConfigError(f"{source}: [{lens_id}]: expected a lower-case lens id such as summicron-m-50-f2")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {lens_id}: expected a table")
    unknown = set(table) - {"name", "mount", "focal_length_mm", "apertures", "close_focus_mm", "focus_throw_deg",
                            "code"}
    if unknown:
        raise ConfigError(f"{source}: [{lens_id}] {sorted(unknown)[0]}: unknown key; allowed: name, mount, "
                          "focal_length_mm, apertures, close_focus_mm, focus_throw_deg, code")
    where = f"[{lens_id}]"
    name = table.get("name", lens_id)
    if not isinstance(name, str) or not 0 < len(name) <= 80 or not name.isprintable():
        raise ConfigError(f"{source}: {where} name: expected a printable name up to 80 characters")
    mount = table.get("mount", "m")
    if mount not in ("m", "phone"):
        raise ConfigError(f"{source}: {where} mount = {mount!r}: allowed: m, phone")
    focal = _number(source, f"{where} focal_length_mm", table.get("focal_length_mm"), 1.0, 2000.0)
    apertures = table.get("apertures")
    if not isinstance(apertures, list) or not apertures:
        raise ConfigError(f"{source}: {where} apertures: expected a list of f-numbers, widest first")
    stops = tuple(_number(source, f"{where} apertures", a, 0.5, 64.0) for a in apertures)
    if list(stops) != sorted(stops):
        raise ConfigError(f"{source}: {where} apertures: expected widest first (ascending f-numbers)")
    close = _number(source, f"{where} close_focus_mm", table.get("close_focus_mm"), focal * 1.01, 1e6)
    throw = table.get("focus_throw_deg")
    code = table.get("code")
    if mount == "m":
        throw = _number(source, f"{where} focus_throw_deg", throw, 1.0, 720.0)
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 63:
            raise ConfigError(f"{source}: {where} code = {code!r}: expected the 6-bit code, 0..63")
    elif throw is not None or code is not None:
        raise ConfigError(f"{source}: {where}: a phone lens has no focus_throw_deg or code")
    return LensData(lens_id, name, mount, focal, stops, close, throw, code)


def parse_catalog(text: str, source: str) -> dict[str, LensData]:
    """The lenses of a catalogue TOML ``text`` (``source`` names it in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    return {lens_id: _entry(source, lens_id, table) for lens_id, table in doc.items()}


@functools.cache
def shipped_catalog() -> dict[str, LensData]:
    """The catalogue shipped in the package (``station/data/lenses.toml``)."""
    text = resources.files("station").joinpath("data", "lenses.toml").read_text(encoding="utf-8")
    return parse_catalog(text, "station/data/lenses.toml")


def read_catalog_file(path: str | Path) -> dict[str, LensData]:
    """A user's catalogue file; ``ConfigError`` naming it when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--lens-catalog {p}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_catalog(text, str(p))


def use_catalog(path: str | Path | None) -> None:
    """Apply the file ``path`` over the shipped catalogue from now on (checked now); None: the shipped one."""
    _EXTRA.clear()
    if path is not None:
        read_catalog_file(path)
        _EXTRA.append(Path(path))


def catalog() -> dict[str, LensData]:
    """The lenses: the shipped catalogue, then every file given with ``use_catalog``."""
    lenses = dict(shipped_catalog())
    for path in _EXTRA:
        lenses.update(read_catalog_file(path))
    return lenses


def m_lenses() -> dict[str, LensData]:
    """The M lenses of the catalogue, by id."""
    return {k: v for k, v in catalog().items() if v.mount == "m"}


def get_lens(lens_id: str) -> LensData:
    """The lens ``lens_id``; ``ConfigError`` listing the known ones."""
    lenses = catalog()
    if lens_id not in lenses:
        raise ConfigError(f"lens {lens_id!r} is not in the station's lens catalogue; known: "
                          f"{', '.join(sorted(lenses))} (add it with --lens-catalog FILE)")
    return lenses[lens_id]
