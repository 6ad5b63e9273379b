"""The Gage R&R table of a line: parts (DUT serials) x appraisers (stations) x trials (repeat runs).

A balanced study: the DUTs measured at least ``trials`` times at every station; each cell takes
its first ``trials`` runs in time order; ``trials`` is the smallest count over those cells (>= 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from station.msa import gage_rr, grr_summary, tolerance_of, type1_study
from station.stats.report import clean, series


def study_table(points: list[tuple], min_trials: int = 2) -> tuple[np.ndarray, list[str], list[str]] | None:
    """``(data[part, station, trial], parts, stations)`` from (run, station, dut, start, value) points."""
    cells: dict[str, dict[str, list[float]]] = {}
    for _run, station, dut, _start, value in points:
        cells.setdefault(dut, {}).setdefault(station, []).append(value)
    stations = sorted({s for by in cells.values() for s in by})
    parts = sorted(d for d, by in cells.items() if all(len(by.get(s, [])) >= min_trials for s in stations))
    if len(parts) < 2:
        return None
    trials = min(len(cells[d][s]) for d in parts for s in stations)
    data = np.array([[cells[d][s][:trials] for s in stations] for d in parts], dtype=float)
    return data, parts, stations


def msa(runs: list[dict[str, Any]], golden_serial: str | None = None) -> dict[str, Any]:
    """``station msa --json``: Gage R&R per measurement, and the type-1 study on one golden unit."""
    out: dict[str, Any] = {}
    type1: dict[str, Any] = {}
    for key, entry in series(runs).items():
        table = study_table(entry["points"])
        if table is not None:
            data, parts, stations = table
            result = gage_rr(data)
            out[key] = {"unit": entry["unit"], "low": entry["low"], "high": entry["high"], "stations": stations,
                        **grr_summary(result, entry["low"], entry["high"], float(data.mean()))}
        if golden_serial:
            golden = [p for p in entry["points"] if p[2] == golden_serial]
            allv = np.array([p[4] for p in golden])
            tolerance = tolerance_of(entry["low"], entry["high"], float(allv.mean()) if allv.size else 0.0)
            per_station = {}
            for station in sorted({p[1] for p in golden}):
                values = np.array([p[4] for p in golden if p[1] == station])
                if values.size >= 2 and tolerance:
                    # reference: the golden unit's mean over every station (no master measurement here)
                    per_station[station] = type1_study(values, tolerance, float(allv.mean()))
            if per_station:
                type1[key] = per_station
    return clean({"measurements": out, "type1": {"serial": golden_serial, "measurements": type1}})
