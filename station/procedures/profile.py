"""Lens profiles from a run's results, written beside the run, and the calibration written into the phone.

Profiles (``calibration.profile``, schema ``m-station/lens-profile`` v1): one per (sensor, lens) of the capture
matrix (``main``, ``m`` bare, ``m/<lens>``), with the sections that case measured (geometry, shading,
chromatic, sensor_response, color, sfr, focus), the provenance (station, DUT, firmware, time, code version)
and a digest; written atomically as ``<sensor>[-<lens>].profile.json``.

The phone's calibration blob: what its ISP reads (``lens_shading_map``, ``wb_gains``, ``ccm`` at
``sensors.<sensor>[.lenses.<lens>]``, the layout of ``station.procedures.calibration_path``) plus what the
station adds for the camera app (the camera model, zebra and peaking thresholds, the profile's digest). It
is merged into what the phone holds, written with ``calibration.write`` in one go, read back and compared
key by key: a phone that keeps something else is a product defect naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.atomic import atomic_write_text
from station.errors import ProductError
from station.measurements import Declared, measures
from station.procedures import calibration_path
from station.procedures.result import ResultParts

if TYPE_CHECKING:
    from station.station import Station

#: The blob's own header: what wrote it.
BLOB_FORMAT = "m-station-calibration"
BLOB_VERSION = 1


@dataclass
class CaseResults:
    """Everything one capture-matrix case measured: profile sections and phone entries."""

    sensor: str
    lens: str | None = None
    image_size: tuple[int, int] | None = None
    pixel_pitch_um: float | None = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile section -> content
    phone: dict[str, Any] = field(default_factory=dict)  # key -> value in the phone's blob at this case

    @property
    def case(self) -> str:
        return self.sensor if self.lens is None else f"{self.sensor}/{self.lens}"

    @measures(Declared("profile_sections", "1"))
    def measurements(self) -> dict[str, float]:
        """How many profile sections the case measured."""
        return {"profile_sections": len(self.sections)}


def provenance(station: Station, *, dut_serial: str | None = None, tool: str = "station run") -> dict[str, str]:
    """Who made a profile: the station's name, the DUT's serial and firmware (its ``info``), now, the code."""
    from calibration.profile import make_provenance

    info = station.dut.info()
    return make_provenance(station=str(station.config.name or "station"),
                           dut_serial=str(dut_serial or info.get("serial") or "unknown"),
                           firmware=str(info.get("firmware") or "unknown"), tool=tool)


def assemble_profile(results: CaseResults, prov: Mapping[str, Any]) -> dict[str, Any]:
    """The validated profile document of one case (``calibration.profile.make_profile``). A section the
    profile schema does not know is an error (``ValueError`` naming it), never dropped."""
    from calibration.profile import SECTIONS, make_profile

    if results.image_size is None or results.pixel_pitch_um is None:
        raise ValueError(f"{results.case}: image size and pixel pitch unknown (nothing was measured)")
    unknown = sorted(set(results.sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{results.case}: profile section(s) {', '.join(unknown)} unknown to the profile schema "
                         f"(calibration.profile.SECTIONS: {', '.join(SECTIONS)})")
    return make_profile(sensor=results.sensor, lens=results.lens, image_size=list(results.image_size),
                        pixel_pitch_um=float(results.pixel_pitch_um), provenance=dict(prov), **results.sections)


def write_profile(doc: Mapping[str, Any], folder: str | Path) -> Path:
    """Write a profile atomically as ``folder/<sensor>[-<lens>].profile.json``; its path."""
    from calibration.profile import dumps_profile, profile_filename

    path = Path(folder) / profile_filename(doc["sensor"], doc["lens"], doc["adapter"])
    return atomic_write_text(path, dumps_profile(doc))


def _set(blob: dict[str, Any], path: list[str], value: Any) -> None:
    node = blob
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _leaves(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def merged_blob(current: Mapping[str, Any], entries: Iterable[tuple[list[str], Any]]) -> dict[str, Any]:
    """``current`` with every ``(path, value)`` set (dicts made on the way), and the blob's header."""
    blob = copy.deepcopy(dict(current))
    for path, value in entries:
        _set(blob, list(path), json.loads(json.dumps(value, allow_nan=False)))
    blob["format"], blob["version"] = BLOB_FORMAT, BLOB_VERSION
    return blob


@dataclass
class WriteBack(ResultParts):
    """What was written into the phone and what it read back."""

    blob: dict[str, Any]
    receipt: dict[str, Any]
    read_back: dict[str, Any]
    keys: int
    mismatched: list[str]

    @property
    def sha256(self) -> str:
        text = json.dumps(self.blob, separators=(",", ":"), sort_keys=True, allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @measures(Declared("calibration_blob_bytes", "bytes", ""), Declared("calibration_readback_mismatches", "1", ""))
    def measurements(self) -> dict[str, float]:
        """The whole blob written: its size, and the keys that came back different."""
        return {"calibration_blob_bytes": float(self.receipt.get("bytes") or 0),
                "calibration_readback_mismatches": len(self.mismatched)}

    @measures(Declared("calibration_readback_mismatches", "1"))
    def case_measurements(self) -> dict[str, float]:
        """One case's entries written: the keys that came back different."""
        return {"calibration_readback_mismatches": len(self.mismatched)}

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.receipt.get("bytes"), "sha256": self.sha256, "phone_sha256": self.receipt.get("sha256"),
                "keys": self.keys, "mismatched": self.mismatched}


def write_calibration(station: Station, entries: Iterable[tuple[list[str], Any]]) -> WriteBack:
    """Merge ``entries`` into the phone's calibration, write it (``calibration.write``), read it back and compare
    every key. ``ProductError`` naming the first keys that came back different (or missing)."""
    blob = merged_blob(station.dut.calibration_read(), entries)
    receipt = station.dut.calibration_write(blob)
    after = station.dut.calibration_read()
    written = dict(_leaves(blob))
    read = dict(_leaves(after))
    mismatched = [key for key, value in written.items() if read.get(key, object()) != value]
    mismatched += [key for key in read if key not in written]
    if mismatched:
        raise ProductError(f"dut: calibration read back differs at {', '.join(mismatched[:5])}"
                           + (f" and {len(mismatched) - 5} more keys" if len(mismatched) > 5 else ""))
    expected = hashlib.sha256(json.dumps(blob, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    if receipt.get("sha256") not in (None, expected):
        raise ProductError(f"dut: calibration.write receipt sha256 {str(receipt.get('sha256'))[:12]}... differs "
                           f"from the blob's {expected[:12]}...")
    return WriteBack(blob=blob, receipt=dict(receipt), read_back=after, keys=len(written), mismatched=[])


def phone_entries(results: CaseResults) -> list[tuple[list[str], Any]]:
    """The ``(path, value)`` entries of one case in the phone's blob."""
    return [(calibration_path(results.sensor, results.lens, key), value) for key, value in results.phone.items()]


class BlobWritten:
    """What the write-back of the checksummed blob did: its size, the blocks, and the read-back verdict."""

    def __init__(self, blob: bytes, blocks: list[str], receipt: Mapping[str, Any], capacity: int,
                 read_back: bytes) -> None:
        self.blob, self.blocks, self.receipt, self.capacity = blob, blocks, dict(receipt), capacity
        self.read_back = read_back

    @measures(Declared("calblob_bytes", "bytes", ""), Declared("calblob_readback_ok", "1", ""))
    def measurements(self) -> dict[str, float]:
        """The blob's size (against the phone's capacity) and 1 when it read back byte for byte."""
        return {"calblob_bytes": float(len(self.blob)), "calblob_readback_ok": float(self.read_back == self.blob)}

    def to_dict(self) -> dict[str, Any]:
        from station import calblob

        sizes = {name: end - start for name, start, end in calblob.block_spans(self.blob)}
        return {"bytes": len(self.blob), "capacity_bytes": self.capacity, "blocks": self.blocks,
                "block_payload_bytes": sizes,
                "sha256": hashlib.sha256(self.blob).hexdigest(), "phone_sha256": self.receipt.get("sha256")}


def write_calblob(station: Station, items: Mapping[str, Mapping[str, Any]]) -> BlobWritten:
    """The checksummed blob of ``items`` (``station.calblob.build_blob``) written into the phone, read back and
    compared byte for byte; ``InputError`` before anything is written when it exceeds the phone's declared
    capacity, ``DeviceError`` naming the block when the read-back does not check."""
    from station import calblob

    blob = calblob.build_blob(items)
    capacity = calblob.phone_capacity_bytes(station.dut)
    receipt = calblob.write_to_phone(station.dut, blob)
    read_back = calblob.read_from_phone(station.dut)
    return BlobWritten(blob, [i for i in calblob.ITEMS if i in items], receipt, capacity, read_back)
