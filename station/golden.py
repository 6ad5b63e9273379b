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

The file's shape is a pydantic v2 model (``extra="forbid"``, like ``station.limits``): one error, on one line,
names the file and lists every problem with its key path, the value and what is allowed (ConfigError, exit 2).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.errors import ConfigError
from station.limits import MetaSpec, limits_dir
from station.validation import FiniteFloat, pattern, read_text_limited, validate

DEFAULT_GOLDEN = limits_dir() / "m-phone.golden.toml"
ILLUMINANTS = ("illuminant1", "illuminant2")
ANDROID_ILLUMINANTS = ("STANDARD_A", "D65", "D50", "D55", "D75", "FLUORESCENT", "DAYLIGHT", "CLOUDY_WEATHER",
                       "COOL_WHITE_FLUORESCENT", "WHITE_FLUORESCENT", "TUNGSTEN", "STANDARD_B", "STANDARD_C")
CCT_RANGE_K = (2700.0, 6500.0)  # what the light source reaches

_FORBID = ConfigDict(extra="forbid")
SensorName = Annotated[str, pattern(r"[a-z][a-z0-9_]{0,31}", "a sensor name such as main or m")]
Ratio = Annotated[FiniteFloat, Field(gt=0.0, description="a raw channel ratio on a flat grey")]


class IlluminantSpec(BaseModel):
    """``[awb.<sensor>.illuminant1]`` (or 2): the golden module's R/G and B/G at one light CCT."""

    model_config = _FORBID
    cct_k: Annotated[FiniteFloat, Field(ge=CCT_RANGE_K[0], le=CCT_RANGE_K[1])]
    android_illuminant: Literal[ANDROID_ILLUMINANTS]  # type: ignore[valid-type]
    r_g: Ratio
    b_g: Ratio


class SensorAwbSpec(BaseModel):
    """``[awb.<sensor>]``: both illuminants."""

    model_config = _FORBID
    illuminant1: IlluminantSpec
    illuminant2: IlluminantSpec


class GoldenDocument(BaseModel):
    """A golden-values TOML document."""

    model_config = _FORBID
    meta: MetaSpec
    awb: Annotated[dict[SensorName, SensorAwbSpec], Field(min_length=1)]


def parse_golden(data: object, source: str = "<golden>") -> GoldenDocument:
    """Validate a parsed golden-values document; ``ConfigError`` listing every problem otherwise."""
    return validate(GoldenDocument, data, source, ConfigError)


def load_golden_awb(path: str | Path = DEFAULT_GOLDEN) -> dict[str, dict[str, dict[str, Any]]]:
    """``{sensor: {illuminant1|illuminant2: {cct_k, android_illuminant, r_g, b_g}}}`` from the golden file
    (read as a regular file of bounded size)."""
    text = read_text_limited(path, "golden-values file", ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from None
    doc = parse_golden(data, str(path))
    return {sensor: {name: getattr(entry, name).model_dump() for name in ILLUMINANTS}
            for sensor, entry in doc.awb.items()}
