"""All of a line's statistics as one JSON-able dict, from the runs of the records database.

``runs`` are ``station.db.store.load_runs`` rows: run columns plus ``measurements``. Every series
is in run order (start time, then run id). Only judged runs (pass or fail) feed the statistics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from station.stats.capability import capability
from station.stats.yields import JUDGED, yields


def judged(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in runs if r.get("outcome") in JUDGED), key=lambda r: (r["start_utc"], r["run_id"]))


def series(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per measurement key: unit, limits and ``points`` [(run_id, station, dut, start, value)] in run order."""
    out: dict[str, dict[str, Any]] = {}
    for run in judged(runs):
        for m in run["measurements"]:
            if m.get("value") is None or not math.isfinite(m["value"]):
                continue
            entry = out.setdefault(m["key"], {"name": m["name"], "case": m["case"], "unit": m.get("unit"),
                                              "low": m.get("low"), "high": m.get("high"), "points": []})
            entry["points"].append((run["run_id"], run["station"], run["dut_serial"], run["start_utc"],
                                    float(m["value"])))
    return dict(sorted(out.items()))


def golden(runs: list[dict[str, Any]], serials: list[str]) -> dict[str, Any]:
    """Golden units per station over time, and each station's offset from the all-station mean.

    Offset of station s on a measurement: the mean over golden units g of (mean of s on g - mean
    of every station on g), in the unit and in % of that mean.
    """
    wanted = set(serials)
    data: dict[str, dict[str, dict[str, list[float]]]] = {}  # key -> serial -> station -> values
    over_time: dict[str, list[dict[str, Any]]] = {}
    for key, entry in series([r for r in runs if r["dut_serial"] in wanted]).items():
        for run_id, station, dut, start, value in entry["points"]:
            data.setdefault(key, {}).setdefault(dut, {}).setdefault(station, []).append(value)
            over_time.setdefault(key, []).append({"run_id": run_id, "station": station, "dut": dut,
                                                  "start": start, "value": value})
    offsets: dict[str, dict[str, dict[str, float]]] = {}
    for key, by_dut in data.items():
        per_station: dict[str, list[tuple[float, float]]] = {}
        for by_station in by_dut.values():
            overall = float(np.mean([v for values in by_station.values() for v in values]))
            for station, values in by_station.items():
                per_station.setdefault(station, []).append((float(np.mean(values)) - overall, overall))
        offsets[key] = {station: {"offset": float(np.mean([d for d, _ in pairs])),
                                  "offset_pct": float(np.mean([100.0 * d / m if m else 0.0 for d, m in pairs])),
                                  "golden_units": len(pairs)}
                        for station, pairs in sorted(per_station.items())}
    return {"serials": sorted(wanted), "over_time": over_time, "correlation": offsets}


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def statistics(runs: list[dict[str, Any]], golden_serials: list[str] | None = None) -> dict[str, Any]:
    """``station stats --json``: runs, yields by key, per-measurement capability, golden units."""
    measurements = {}
    for key, entry in series(runs).items():
        values = [p[4] for p in entry["points"]]
        measurements[key] = {"name": entry["name"], "case": entry["case"], "unit": entry["unit"],
                             **capability(values, entry["low"], entry["high"])}
    return clean({"runs": len(runs), "judged_runs": len(judged(runs)), "yields": yields(runs),
                  "measurements": measurements, "golden": golden(runs, list(golden_serials or []))})
