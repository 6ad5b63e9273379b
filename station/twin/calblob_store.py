"""The twin phone's storage of the checksummed calibration blob (``station.calblob``): ``calblob.write``
(base64 bytes, refused over the declared capacity) and ``calblob.read`` (the bytes as payload, and the
phone's own check of each block). The ``calblob_corrupt_block`` fault flips a byte of one block's payload
on read, as a worn EEPROM cell would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from typing import Any

from station import calblob
from station.twin.jsonlines import BadRequestError, Reply, check_args, ok_header
from station.twin.world import World

#: What ``info`` declares as the phone's calibration storage, bytes.
CALBLOB_CAPACITY_BYTES = 16 * 1024


class CalblobStore:
    """The blob bytes a phone keeps, behind the two wire commands."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._data = b""

    def write(self, args: dict[str, Any]) -> Reply:
        check_args(args, "calblob.write", ("data_b64",))
        text = args["data_b64"]
        if not isinstance(text, str):
            raise BadRequestError("calblob.write: data_b64 must be base64 text")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequestError("calblob.write: data_b64 is not valid base64") from None
        if len(data) > CALBLOB_CAPACITY_BYTES:
            raise BadRequestError(f"calblob.write: {len(data)} bytes over the phone's "
                                  f"{CALBLOB_CAPACITY_BYTES} bytes of calibration storage")
        with self._lock:
            self._data = data
        return Reply(ok_header({"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}))

    def read(self, args: dict[str, Any]) -> Reply:
        """The stored blob as payload; the header lists each block and whether its checksum holds."""
        check_args(args, "calblob.read", ())
        with self._lock:
            data = self._data
        with self.world.lock:
            fault = self.world.faults.get("calblob_corrupt_block")
        from station.twin.phone_server import fault_period

        try:
            nth = fault_period(fault)
        except ValueError:
            nth = None
        if nth is not None and data:
            data = corrupt_block(data, nth)
        header = ok_header({"bytes": len(data), "blocks": check_blocks(data)})
        header["payload_bytes"] = len(data)
        header["payload_sha256"] = hashlib.sha256(data).hexdigest()
        return Reply(header, data)


def corrupt_block(data: bytes, nth: int) -> bytes:
    """``data`` with one payload byte of its ``nth`` block (1-based) flipped (unchanged if it has fewer)."""
    spans = calblob.block_spans(data)
    if not 1 <= nth <= len(spans):
        return data
    start, end = spans[nth - 1][1:]
    corrupt = bytearray(data)
    corrupt[(start + end) // 2] ^= 0x5A
    return bytes(corrupt)


def check_blocks(data: bytes) -> list[dict[str, Any]]:
    """The phone's own check of its blob: each block's name and whether its checksum holds."""
    return [{"name": name, "ok": ok} for name, ok in calblob.check_each(data)]
