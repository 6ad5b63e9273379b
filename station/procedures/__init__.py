"""The station's plan steps as plain functions: each takes an open ``Station`` (and plain parameters),
talks to the devices, hands the frames to ``calibration/`` and returns a JSON-able result.

Shared here: the errors a procedure raises when its measurement cannot give an answer, and the
write-back of a calibration entry into the phone's stored blob (read, merge, write, read back, compare).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from station.errors import ProductError, StationError

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


def _set(blob: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = blob
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _get(blob: Any, path: Sequence[str]) -> Any:
    node = blob
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def write_back(station: Any, path: Sequence[str], entry: dict[str, Any]) -> dict[str, Any]:
    """Store ``entry`` at ``path`` in the phone's calibration blob, keeping everything else.

    Reads the blob, sets the entry (creating the dicts on the way), writes it with ``calibration.write``,
    reads it back and compares the whole blob with what was written. A phone that stores something else
    is a ``ProductError`` naming the key. Returns ``{path, entry, bytes, sha256, read_back_match}``.
    """
    entry = json.loads(json.dumps(entry, allow_nan=False))  # what the phone will hold: plain JSON
    before = station.dut.calibration_read()
    blob = copy.deepcopy(before)
    _set(blob, list(path), entry)
    receipt = station.dut.calibration_write(blob)
    after = station.dut.calibration_read()
    where = ".".join(path)
    if _get(after, path) != entry:
        raise ProductError(f"dut: calibration read back at {where} is {_get(after, path)!r}, "
                           f"wrote {entry!r}")
    if after != blob:
        raise ProductError(f"dut: calibration read back differs from the blob written (beyond {where})")
    return {"path": where, "entry": entry, "bytes": receipt.get("bytes"), "sha256": receipt.get("sha256"),
            "read_back_match": True}
