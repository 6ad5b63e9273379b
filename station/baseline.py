"""Firmware regression baselines: the measured values of an approved build's passing run (DESIGN 8).

A baseline is a JSON document ``{"format": "m-station-baseline", "values": {key: {"value",
"unit"}}, ...}`` made from a passing run's record by ``station baseline save RUN -o FILE``.
A later run looks each measurement up by its key (``name`` or ``name[case]``) and reports the
value, the baseline and the delta; the limits file's ``[regression.<name>]`` tolerance gives
the verdict (``station.measurements.Tolerance``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from station.atomic import atomic_write_text
from station.errors import InputError
from station.records import iso_utc, load_record, utc_now
from station.validation import FiniteFloat, SafeStr, read_text_limited, validate

FORMAT = "m-station-baseline"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Baseline:
    """Approved values by measurement key, and where they came from."""

    path: str
    values: dict[str, float]
    units: dict[str, str]
    meta: dict[str, Any]

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def describe(self) -> dict[str, Any]:
        """What a run record says about the baseline it was compared with."""
        keep = ("created", "run_id", "firmware", "plan", "station", "dut_serial", "limits")
        return {"path": self.path, **{k: self.meta.get(k) for k in keep}}


def baseline_from_record(record: dict[str, Any], source: str = "<record>") -> dict[str, Any]:
    """The baseline document of a passing run; ``InputError`` if the run did not pass."""
    outcome = record.get("outcome")
    if record.get("incomplete"):
        raise InputError(f"{source}: the run is incomplete ({record.get('tests_never_ran')} test(s) of its plan "
                         "never ran); a baseline comes only from a complete run")
    if outcome != "pass":
        raise InputError(f"{source}: run outcome is {outcome!r}; a baseline comes only from a passing run")
    values: dict[str, dict[str, Any]] = {}
    for entry in record.get("measurements", []):
        value = entry.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values[str(entry["key"])] = {"value": float(value), "unit": entry.get("unit", "")}
    if not values:
        raise InputError(f"{source}: the run has no measurements to make a baseline of")
    dut = record.get("dut") or {}
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "created": iso_utc(utc_now()),
        "run_id": record.get("run_id"), "record": source, "plan": record.get("plan"),
        "firmware": dut.get("firmware") or record.get("firmware"),
        "station": (record.get("station") or {}).get("name"), "dut_serial": dut.get("serial"),
        "limits": record.get("limits"), "start": record.get("start"), "values": values,
    }


def save_baseline(record_path: str | Path, out: str | Path) -> Path:
    """Write the baseline of the run recorded in ``record_path`` to ``out`` (atomically)."""
    record = load_record(record_path)
    document = baseline_from_record(record, str(record_path))
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    atomic_write_text(out, json.dumps(document, indent=2) + "\n")
    return out


class BaselineValue(BaseModel):
    """One approved value: ``{"value": finite number, "unit": "..."}``."""

    model_config = ConfigDict(extra="forbid")
    value: FiniteFloat
    unit: Annotated[SafeStr, Field(max_length=32)] = ""


class BaselineDocument(BaseModel):
    """A baseline JSON document as ``baseline_from_record`` writes it."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["m-station-baseline"]
    version: Annotated[StrictInt, Field(ge=1, le=FORMAT_VERSION)] = FORMAT_VERSION
    created: SafeStr | None = None
    run_id: SafeStr | None = None
    record: SafeStr | None = None
    plan: SafeStr | None = None
    firmware: SafeStr | None = None
    station: SafeStr | None = None
    dut_serial: SafeStr | None = None
    limits: dict[str, Any] | SafeStr | None = None
    start: SafeStr | None = None
    values: dict[Annotated[SafeStr, Field(min_length=1, max_length=200)], BaselineValue]


def parse_baseline(data: Any, source: str = "<baseline>") -> Baseline:
    """Validate a baseline document; ``InputError`` listing every problem (key path, value, what is allowed)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{source}: not an m-station baseline (format {FORMAT!r} expected)")
    doc: BaselineDocument = validate(BaselineDocument, data, source, InputError)
    values = {key: entry.value for key, entry in doc.values.items()}
    units = {key: entry.unit for key, entry in doc.values.items()}
    meta = doc.model_dump(exclude={"values"})
    return Baseline(path=source, values=values, units=units, meta=meta)


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline JSON (regular file, bounded size); ``InputError`` naming the file and what is wrong."""
    path = Path(path)
    text = read_text_limited(path, "baseline file", InputError)
    try:
        data = json.loads(text)
    except (RecursionError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON baseline ({exc.__class__.__name__})") from None
    return parse_baseline(data, str(path))
