"""First-pass and final yield of a line, by station, day, firmware and plan.

Within a group (one station, one day, ...) each DUT counts once: its first run in the group decides
first-pass yield, its last run the final yield. Only runs that judged the phone count (outcome
``pass`` or ``fail``); a station fault or an aborted run says nothing about the phone.
"""

from __future__ import annotations

from typing import Any

KEYS = ("station", "day", "firmware", "plan")
JUDGED = ("pass", "fail")


def group_yields(runs: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``{group: {"duts", "runs", "first_pass", "final"}}`` (yields as fractions 0..1)."""
    firsts: dict[str, dict[str, dict[str, Any]]] = {}
    lasts: dict[str, dict[str, dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for run in sorted(runs, key=lambda r: (r["start_utc"], r["run_id"])):
        if run.get("outcome") not in JUDGED:
            continue
        group = str(run.get(key) or "unknown")
        counts[group] = counts.get(group, 0) + 1
        firsts.setdefault(group, {}).setdefault(run["dut_serial"], run)
        lasts.setdefault(group, {})[run["dut_serial"]] = run
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(firsts):
        duts = len(firsts[group])
        first_pass = sum(1 for r in firsts[group].values() if r["outcome"] == "pass")
        final = sum(1 for r in lasts[group].values() if r["outcome"] == "pass")
        out[group] = {"duts": duts, "runs": counts[group], "first_pass": first_pass / duts, "final": final / duts}
    return out


def yields(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Yields by every key: ``{"station": {...}, "day": {...}, "firmware": {...}, "plan": {...}}``."""
    return {key: group_yields(runs, key) for key in KEYS}
