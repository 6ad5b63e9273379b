"""The plans' steps for what a phone line calibrates and hands on (issue 14): the main camera's AF, the two
cameras' pose, and the checksummed calibration blob (``station.calblob``) written into the phone and read
back byte for byte. Each puts its chart up through the scene, runs its procedure inside an Allure step, keeps
its phone entry in ``results`` and takes the measurements its procedure declares (``@measures``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from station.plans.helpers import chart_step, procedure, take
from station.scene import Scene

if TYPE_CHECKING:
    from station.station import Station


def main_af(station: Station, operator: Scene, measure: Any, results: dict) -> Any:
    """AF of the main camera on the slanted-edge chart (``station.procedures.af``): infinity and macro codes
    from through-focus sweeps at the rail's ends, the hyperfocal check; the phone's AF entry."""
    from station.procedures.af import calibrate_main_af

    return chart_step(station, operator, measure, results, "sfr", "AF of the main camera: through-focus sweeps of "
                      "its actuator at the rail's far and near ends, the hyperfocal check",
                      lambda: calibrate_main_af(station), "main", None, "main")


def pose(station: Station, operator: Scene, measure: Any, results: dict, lens: str, board: str,
         distance_mm: float) -> Any:
    """The M camera's pose against the main camera through ``lens`` (mounted by the caller) on the geometry
    phase's ChArUco ``board`` at ``distance_mm`` (``station.procedures.pose``): the phone's ``LENS_POSE_*``
    and the bare sensor's pose (``sensor_plane``)."""
    from station.procedures.pose import measure_pose

    return chart_step(station, operator, measure, results, board, f"pose of the M camera through {lens} against "
                      f"the main camera: the board {board} seen by both at each gimbal pose, the rig's bundle "
                      "adjustment", lambda: measure_pose(station, lens, board=board, distance_mm=distance_mm),
                      "m", lens, f"m/{lens}")


#: The blob's items (``station.calblob.ITEMS``) from the phone entries the steps keep, by entry key.
BLOB_ITEMS = {"defect_pixels": "dpc", "af": "afc", "awb": "wbc", "pose": "pose", "lens_shading_map": "lsc"}


#: Lens-shading gains in the blob as a module's OTP keeps them: unsigned 16-bit fixed point with this many
#: fraction bits (1/1024 steps, gains up to 64), little-endian, base64 in the block's JSON.
LSC_FRACTION_BITS = 10


def lsc_entry(gain_map: Any) -> dict[str, Any]:
    """A lens-shading gain map (Android ``LENS_SHADING_MAP`` layout) as the blob stores it."""
    import base64

    import numpy as np

    gains = np.asarray(gain_map, np.float64)
    fixed = np.clip(np.rint(gains * (1 << LSC_FRACTION_BITS)), 0, 65535).astype("<u2")
    return {"shape": list(gains.shape), "fraction_bits": LSC_FRACTION_BITS,
            "gains_u16le_b64": base64.b64encode(fixed.tobytes()).decode("ascii")}


def lsc_gains(entry: dict[str, Any]) -> Any:
    """The gain map back from ``lsc_entry``'s form (float64, its shape)."""
    import base64

    import numpy as np

    fixed = np.frombuffer(base64.b64decode(entry["gains_u16le_b64"]), "<u2")
    return fixed.reshape(entry["shape"]) / float(1 << int(entry["fraction_bits"]))


def blob_items(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The calibration blob's items from every case's phone entries: ``{item: {case: entry}}``. Lens shading
    is the sensor modules' own (``main``, ``m`` bare), as a module's OTP keeps it; an M lens's shading goes
    with its profile and the phone's JSON calibration (``calibration.write``), not into the module's blob."""
    items: dict[str, dict[str, Any]] = {}
    for case, entry in results.items():
        for key, item in BLOB_ITEMS.items():
            if key in entry.phone:
                value = entry.phone[key]
                if item == "lsc":
                    if "/" in case:
                        continue
                    value = lsc_entry(value)
                items.setdefault(item, {})[case] = value
    return items


def calblob_write(station: Station, measure: Any, results: Mapping[str, Any]) -> Any:
    """Build the checksummed blob from the calibration entries, write it (refused before writing when over the
    phone's declared capacity), read it back and compare byte for byte (``procedures.profile.write_calblob``)."""
    from station import calblob
    from station.procedures.profile import write_calblob

    items = blob_items(results)
    if not items:
        import allure

        with allure.step("calibration blob: no defects, AF, AWB, module shading or pose measured: nothing to "
                         "write"):
            return None
    with procedure(f"calibration blob: {', '.join(i for i in calblob.ITEMS if i in items)} written, read back, "
                   "compared byte for byte"):
        written = write_calblob(station, items)
    take(measure, written.measurements)
    return written
