"""A calibration blob a phone can trust: versioned blocks, each with its own checksum, under a header.

The layout follows what shipping camera OTP/EEPROM maps carry (Rockchip ``otp_eeprom.h``, Qualcomm
mm-camera's ``is_dpc`` / ``is_afc`` / ``is_wbc`` / ``is_lsc`` items): a header, then one block per
calibration, each self-checking so a reader can tell *which* block went bad. All integers little-endian.

Header (16 bytes): magic ``b"MSCB"``, format version u16, block count u16, total length u32, CRC32 u32
of the 12 bytes before it.

Block: name 12 bytes ASCII NUL-padded, block version u16, checksum kind u8 (1 CRC32, 2 SHA-256),
reserved u8 (0), payload length u32, the payload (compact JSON, sorted keys, UTF-8), then the checksum
of the block's 20-byte head and payload (4 bytes CRC32 or 32 bytes SHA-256).

``pack`` / ``unpack`` are exact inverses; ``unpack`` raises ``CorruptBlockError`` naming the block.
``write_to_phone`` writes, reads back and compares byte for byte; it refuses a blob over the phone's
declared capacity (``info`` ``calibration_capacity_bytes``) before sending anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from station.errors import DeviceError, InputError

MAGIC = b"MSCB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHI")  # magic, format version, block count, total length (+ CRC32 u32)
BLOCK_HEAD = struct.Struct("<12sHBBI")  # name, version, checksum kind, reserved, payload length
CRC32, SHA256 = 1, 2
CHECKSUM_BYTES = {CRC32: 4, SHA256: 32}
CHECKSUM_NAMES = {"crc32": CRC32, "sha256": SHA256}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,11}$")


class CorruptBlockError(ValueError):
    """A blob that does not check: ``block`` names the bad block (``"header"`` for the header)."""

    def __init__(self, block: str, message: str) -> None:
        super().__init__(f"calibration blob block {block!r}: {message}")
        self.block = block


@dataclass(frozen=True)
class Block:
    """One block: a name (the item it carries), its own version, its checksum kind and its content."""

    name: str
    version: int
    content: Mapping[str, Any]
    checksum: str = "crc32"

    def payload(self) -> bytes:
        return json.dumps(self.content, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def _checksum(kind: int, data: bytes) -> bytes:
    if kind == CRC32:
        return struct.pack("<I", zlib.crc32(data))
    return hashlib.sha256(data).digest()


def pack(blocks: list[Block]) -> bytes:
    """The blob's bytes: header and blocks. InputError for a bad name, version or duplicate block."""
    seen: set[str] = set()
    body = bytearray()
    for block in blocks:
        if not isinstance(block.name, str) or not _NAME_RE.match(block.name) or block.name in seen:
            raise InputError(f"calibration blob: block name {block.name!r}: expected a unique lower-case "
                             "word of at most 12 characters")
        if not isinstance(block.version, int) or not 0 <= block.version < 65536:
            raise InputError(f"calibration blob: block {block.name!r} version {block.version!r}: expected 0..65535")
        if block.checksum not in CHECKSUM_NAMES:
            raise InputError(f"calibration blob: block {block.name!r} checksum {block.checksum!r}; "
                             f"allowed: {', '.join(CHECKSUM_NAMES)}")
        seen.add(block.name)
        kind = CHECKSUM_NAMES[block.checksum]
        try:
            payload = block.payload()
        except (TypeError, ValueError) as exc:
            raise InputError(f"calibration blob: block {block.name!r} is not plain JSON: {exc}") from None
        head = BLOCK_HEAD.pack(block.name.encode(), block.version, kind, 0, len(payload))
        body += head + payload + _checksum(kind, head + payload)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, len(blocks), HEADER.size + 4 + len(body))
    return header + struct.pack("<I", zlib.crc32(header)) + bytes(body)


def unpack(data: bytes) -> list[Block]:
    """The blocks of a blob, every checksum verified; CorruptBlockError naming the first bad block."""
    data = bytes(data)
    if len(data) < HEADER.size + 4:
        raise CorruptBlockError("header", f"{len(data)} bytes, shorter than the {HEADER.size + 4}-byte header")
    magic, version, count, total = HEADER.unpack_from(data)
    (crc,) = struct.unpack_from("<I", data, HEADER.size)
    if magic != MAGIC or crc != zlib.crc32(data[:HEADER.size]):
        raise CorruptBlockError("header", "magic or header CRC32 mismatch")
    if version != FORMAT_VERSION:
        raise CorruptBlockError("header", f"format version {version}; this station reads {FORMAT_VERSION}")
    if total != len(data):
        raise CorruptBlockError("header", f"declares {total} bytes, the blob has {len(data)}")
    blocks, pos = [], HEADER.size + 4
    for index in range(count):
        if pos + BLOCK_HEAD.size > len(data):
            raise CorruptBlockError(f"#{index + 1}", "truncated block head")
        raw_name, block_version, kind, _, length = BLOCK_HEAD.unpack_from(data, pos)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace") or f"#{index + 1}"
        size = CHECKSUM_BYTES.get(kind)
        end = pos + BLOCK_HEAD.size + length
        if size is None or end + size > len(data):
            raise CorruptBlockError(name, "unknown checksum kind or length past the end of the blob")
        if data[end:end + size] != _checksum(kind, data[pos:end]):
            raise CorruptBlockError(name, f"{'CRC32' if kind == CRC32 else 'SHA-256'} mismatch")
        try:
            content = json.loads(data[pos + BLOCK_HEAD.size:end])
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CorruptBlockError(name, "payload is not JSON") from None
        checksum = "crc32" if kind == CRC32 else "sha256"
        blocks.append(Block(name, block_version, content, checksum))
        pos = end + size
    if pos != len(data):
        raise CorruptBlockError("header", f"{len(data) - pos} bytes after the last block")
    return blocks


def block_spans(data: bytes) -> list[tuple[str, int, int]]:
    """Each block's name and payload byte range ``(name, start, end)``, read from the block heads only
    (no checksum verified; stops at the first head that does not fit)."""
    spans: list[tuple[str, int, int]] = []
    if len(data) < HEADER.size + 4 or data[:4] != MAGIC:
        return spans
    _, _, count, _ = HEADER.unpack_from(data)
    pos = HEADER.size + 4
    for index in range(count):
        if pos + BLOCK_HEAD.size > len(data):
            break
        raw_name, _, kind, _, length = BLOCK_HEAD.unpack_from(data, pos)
        start = pos + BLOCK_HEAD.size
        end = start + length
        if kind not in CHECKSUM_BYTES or end + CHECKSUM_BYTES[kind] > len(data):
            break
        spans.append((raw_name.rstrip(b"\0").decode("ascii", "replace") or f"#{index + 1}", start, end))
        pos = end + CHECKSUM_BYTES[kind]
    return spans


def check_each(data: bytes) -> list[tuple[str, bool]]:
    """Each block's name and whether its checksum holds (what a phone reports of its own storage)."""
    result = []
    for name, start, end in block_spans(data):
        kind = BLOCK_HEAD.unpack_from(data, start - BLOCK_HEAD.size)[2]
        head = start - BLOCK_HEAD.size
        result.append((name, data[end:end + CHECKSUM_BYTES[kind]] == _checksum(kind, data[head:end])))
    return result


#: The items a phone line stores, as blocks: name -> (block version, checksum). The names are Qualcomm
#: mm-camera's EEPROM items (``is_dpc`` defect pixels, ``is_afc`` AF, ``is_wbc`` white balance, ``is_lsc``
#: lens shading) and the pose.
ITEMS: dict[str, tuple[int, str]] = {"dpc": (1, "sha256"), "afc": (1, "crc32"), "wbc": (1, "crc32"),
                                     "lsc": (1, "crc32"), "pose": (1, "crc32")}


def build_blob(items: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The blob of the items measured (``dpc``, ``afc``, ``wbc``, ``lsc``, ``pose``: each ``{sensor or key: entry}``),
    in that order; InputError for an item this format does not know."""
    unknown = sorted(set(items) - set(ITEMS))
    if unknown:
        raise InputError(f"calibration blob: item {unknown[0]!r}; allowed: {', '.join(ITEMS)}")
    return pack([Block(name, ITEMS[name][0], items[name], ITEMS[name][1]) for name in ITEMS if name in items])


class _Phone(Protocol):
    def info(self) -> dict[str, Any]: ...

    def request(self, cmd: str, **args: Any) -> tuple[dict[str, Any], bytes | None]: ...


def phone_capacity_bytes(phone: _Phone) -> int:
    """The calibration storage the phone declares in ``info`` (``calibration_capacity_bytes``)."""
    capacity = phone.info().get("calibration_capacity_bytes")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        raise DeviceError("dut", f"info: calibration_capacity_bytes {capacity!r}; expected a positive integer")
    return capacity


def write_to_phone(phone: _Phone, blob: bytes) -> dict[str, Any]:
    """Write ``blob``, read it back and compare byte for byte; the phone's receipt.

    InputError (before any write) when the blob exceeds the phone's capacity; DeviceError when the
    read-back differs or does not check (naming the block).
    """
    capacity = phone_capacity_bytes(phone)
    if len(blob) > capacity:
        raise InputError(f"calibration blob of {len(blob)} bytes exceeds the phone's declared capacity of "
                         f"{capacity} bytes; not written")
    receipt, _ = phone.request("calblob.write", data_b64=base64.b64encode(blob).decode("ascii"))
    back = read_from_phone(phone)
    if back != blob:
        first = next((i for i, (a, b) in enumerate(zip(back, blob, strict=False)) if a != b),
                     min(len(back), len(blob)))
        try:
            unpack(back)
        except CorruptBlockError as exc:
            raise DeviceError("dut", f"calibration blob read-back differs from what was written: {exc}") from None
        raise DeviceError("dut", f"calibration blob read-back differs from what was written at byte {first}")
    return receipt


def read_from_phone(phone: _Phone) -> bytes:
    """The blob bytes the phone stores (empty when it stores none)."""
    _, payload = phone.request("calblob.read")
    return bytes(payload or b"")


def read_blocks(phone: _Phone) -> dict[str, Block]:
    """The phone's blob as blocks by name; CorruptBlockError naming a block that does not check."""
    return {block.name: block for block in unpack(read_from_phone(phone))}
