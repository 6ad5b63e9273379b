"""Golden-module values as data (``station/data/limits/<product>.golden.toml``): what a unit's AWB is compared against.

::

    [meta]
    product = "m-phone"
    version = "1.0"

    [awb.<sensor>.illuminant1]      # and illuminant2
    cct_k = 2850
    android_illuminant = "STANDARD_A"
    r_g = 0.83687
    b_g = 0.32019

Every error is one line naming the file and the key (ConfigError, exit 2).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from station.errors import ConfigError
from station.limits import limits_dir

DEFAULT_GOLDEN = limits_dir() / "m-phone.golden.toml"
ILLUMINANTS = ("illuminant1", "illuminant2")
ANDROID_ILLUMINANTS = ("STANDARD_A", "D65", "D50", "D55", "D75", "FLUORESCENT", "DAYLIGHT", "CLOUDY_WEATHER",
                       "COOL_WHITE_FLUORESCENT", "WHITE_FLUORESCENT", "TUNGSTEN", "STANDARD_B", "STANDARD_C")
CCT_RANGE_K = (2700.0, 6500.0)  # what the light source reaches


def load_golden_awb(path: str | Path = DEFAULT_GOLDEN) -> dict[str, dict[str, dict[str, Any]]]:
    """``{sensor: {illuminant1|illuminant2: {cct_k, android_illuminant, r_g, b_g}}}`` from the golden file."""
    name = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such golden-values file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{name}: not a readable TOML file ({exc})") from None
    for key in ("product", "version"):
        if not isinstance(doc.get("meta", {}).get(key), str):
            raise ConfigError(f"{name}: meta.{key}: missing; expected text")
    awb = doc.get("awb")
    if not isinstance(awb, dict) or not awb:
        raise ConfigError(f"{name}: awb: missing; expected [awb.<sensor>.illuminant1] and illuminant2")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sensor, entry in awb.items():
        out[sensor] = {}
        for illuminant in ILLUMINANTS:
            out[sensor][illuminant] = _illuminant(name, f"awb.{sensor}.{illuminant}",
                                                  entry.get(illuminant) if isinstance(entry, dict) else None)
    return out


def _illuminant(name: str, key: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{name}: {key}: missing; expected a table with cct_k, android_illuminant, r_g, b_g")
    for field in ("cct_k", "r_g", "b_g"):
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name}: {key}.{field} {value!r}: expected a positive number")
    if not CCT_RANGE_K[0] <= entry["cct_k"] <= CCT_RANGE_K[1]:
        raise ConfigError(f"{name}: {key}.cct_k {entry['cct_k']}: expected {CCT_RANGE_K[0]:g}..{CCT_RANGE_K[1]:g} K")
    if entry.get("android_illuminant") not in ANDROID_ILLUMINANTS:
        raise ConfigError(f"{name}: {key}.android_illuminant {entry.get('android_illuminant')!r}; "
                          f"allowed: {', '.join(ANDROID_ILLUMINANTS)}")
    return {"cct_k": float(entry["cct_k"]), "android_illuminant": entry["android_illuminant"],
            "r_g": float(entry["r_g"]), "b_g": float(entry["b_g"])}
