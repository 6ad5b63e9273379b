"""The station's plan steps as plain functions: each takes an open ``Station`` (and plain parameters),
talks to the devices, hands the frames to ``calibration/`` and returns a JSON-able result.

Shared here: the errors a procedure raises when its measurement cannot give an answer, and the
write-back of a calibration entry into the phone's stored blob (read, merge, write, read back, compare).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from station.errors import StationError

if TYPE_CHECKING:
    from station.station import Station

__all__ = ["ProcedureError", "SweepError", "calibration_path", "write_back"]


class ProcedureError(StationError):
    """A procedure cannot measure what it must with the bench as set up (wrong lens, no chart, no edges).

    A setup fault (exit code 3, ``fault_kind`` "setup"): the scene, not a device and not the phone, is in question.
    """

    exit_code = 3
    fault_kind = "setup"


class SweepError(ProcedureError):
    """A sweep never reached what it looks for (clipping, focus): it gives no threshold."""


def calibration_path(sensor: str, lens: str | None, *keys: str) -> list[str]:
    """Where a sensor's (and mounted lens's) entry sits in the phone's blob, as the ISP reads overrides:
    ``sensors.<sensor>[.lenses.<lens>].<keys...>`` (the layout the phone's ISP reads its overrides in)."""
    path = ["sensors", sensor]
    if lens:
        path += ["lenses", lens]
    return path + [str(k) for k in keys]


def write_back(station: Station, path: Sequence[str], entry: dict[str, Any]) -> dict[str, Any]:
    """Store ``entry`` at ``path`` in the phone's calibration blob, keeping everything else: the one write-back,
    ``station.procedures.profile.write_calibration`` (read, merge, write, read back, compare every key; a phone
    that stores something else is a ``ProductError`` naming the key). Returns ``{path, entry, bytes, sha256,
    read_back_match}``."""
    from station.procedures.profile import write_calibration

    entry = json.loads(json.dumps(entry, allow_nan=False))  # what the phone will hold: plain JSON
    written = write_calibration(station, [(list(path), entry)])
    return {"path": ".".join(path), "entry": entry, "bytes": written.receipt.get("bytes"),
            "sha256": written.receipt.get("sha256"), "read_back_match": True}
