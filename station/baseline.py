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
from typing import Any

from station.atomic import atomic_write_text
from station.errors import InputError
from station.records import iso_utc, load_record, utc_now

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


def parse_baseline(data: Any, source: str = "<baseline>") -> Baseline:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{source}: not an m-station baseline (format {FORMAT!r} expected)")
    raw = data.get("values")
    if not isinstance(raw, dict):
        raise InputError(f"{source}: values: expected a table of measurement -> {{value, unit}}")
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for key, entry in raw.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{source}: values.{key}.value: expected a finite number, got {value!r}")
        values[key] = float(value)
        units[key] = str(entry.get("unit", ""))
    meta = {k: v for k, v in data.items() if k != "values"}
    return Baseline(path=source, values=values, units=units, meta=meta)


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline JSON; ``InputError`` naming the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such baseline file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON baseline ({exc.__class__.__name__})") from None
    return parse_baseline(data, str(path))
