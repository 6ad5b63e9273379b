"""A record's measurements, kept to prove a refactoring changed nothing: ``python -m tests.unit.record_snapshot OUT``.

Runs ``station run`` on the twin (seed 1, one M lens) over a subset of the factory and regression plans that
takes every procedure kind once, cheaply, and writes each measurement's name, case, unit, limits, value and
verdict (no timestamps, no paths) as JSON. ``tests/unit/data/record_before_house.json`` is its output from the
code before issue 11's consolidation; ``test_record_snapshot.py`` runs it again and compares. When another
change alters the twin's frames on purpose, regenerate the file with this module and say why in the commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The one M lens of the snapshot, and the twin's seed.
LENS = "summicron-m-50-f2"
SEED = 1
#: Each plan's subset (pytest ``-k``): every procedure kind once (self-check, EMVA 1288, shading, ISP write,
#: colour, RAW integrity, zebra and peaking calibration and verification, geometry, SFR, lateral CA, adapter
#: focus, profiles and the phone write-back; the app's features and noise), the slow repeats left out
#: (the M sensor's second EMVA sweep and RAW check, the main geometry's five poses), and the steps added since
#: the snapshot was kept (defect pixels, AWB, the M sensor's RAW colour half, AF, the pose: their captures would
#: shift the twin's frame sequence). The phone is the twin's ideal unit (``IDEAL_UNIT``), as when the snapshot
#: was kept: the factory plan's twin is now a unit with its own variation by default.
SUBSETS: dict[str, str] = {
    "factory": ("not m_bare_sensor_characterization and not m_raw_integrity and not test_geometry "
                "and not sfr_wide_open and not sfr_stopped_down and not lens_lateral_ca "
                "and not test_defect_pixels and not test_awb and not m_raw_colour "
                "and not test_main_af and not test_lens_pose"),
    "regression": "test_zebra or test_peaking or test_histogram or test_noise",
}
#: The twin's per-unit variation switched off (``station.plans.units.PER_UNIT_FAULTS``): the frames of then.
IDEAL_UNIT = ("--twin-fault", "unit_variation=false", "--twin-fault", "sensor_defects=false")
#: What a snapshot keeps of each measurement.
FIELDS = ("name", "case", "unit", "low", "high", "value", "verdict")


def run_plan(plan: str, select: str, reports: Path) -> dict[str, Any]:
    """``station run --plan PLAN`` on a fresh twin, ``-k select``: its record."""
    argv = [sys.executable, "-m", "station", "run", "--plan", plan, "--lens", LENS, "--reports", str(reports),
            "--no-report", "--", "-k", select, "-p", "no:cacheprovider", f"--twin-seed={SEED}", *IDEAL_UNIT]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    records = sorted((reports / "records").glob("*.json"))
    if not records:
        raise RuntimeError(f"station run --plan {plan} left no record (exit {done.returncode}): "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return json.loads(records[-1].read_text())


def snapshot() -> dict[str, Any]:
    """Every subset's measurements and test outcomes, in a stable order."""
    out: dict[str, Any] = {"lens": LENS, "seed": SEED, "plans": {}}
    with tempfile.TemporaryDirectory(prefix="record-snapshot-") as tmp:
        for plan, select in SUBSETS.items():
            record = run_plan(plan, select, Path(tmp) / plan)
            measurements = sorted(({k: m[k] for k in FIELDS} for m in record["measurements"]),
                                  key=lambda m: (m["name"], m["case"]))
            tests = sorted((t["name"], t["outcome"]) for t in record["tests"])
            out["plans"][plan] = {"select": select, "outcome": record["outcome"],
                                  "tests": [list(t) for t in tests], "measurements": measurements}
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.unit.record_snapshot OUT.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
