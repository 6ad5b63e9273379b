"""The checksummed calibration blob: exact round trip, a corrupt block named, the phone's capacity kept,
and write + read-back byte for byte against the twin's phone over its real TCP wire."""

from __future__ import annotations

import struct
import zlib

import pytest

from station import calblob
from station.calblob import Block, CorruptBlockError, pack, unpack
from station.devices.phone import PhoneClient
from station.errors import DeviceError, InputError
from station.twin.phone_server import CALBLOB_CAPACITY_BYTES
from station.twin.world import World

BLOCKS = [Block("dpc", 1, {"main": {"hot_pixel_map": [10, 20, 11, 20]}}),
          Block("afc", 2, {"infinity_code": 101.5, "macro_code": 612.0}, "sha256"),
          Block("wbc", 1, {"r_g": 0.512, "b_g": 0.61})]


def test_round_trip_is_exact_and_the_layout_is_the_documented_one():
    data = pack(BLOCKS)
    assert unpack(data) == BLOCKS
    assert pack(unpack(data)) == data
    magic, version, count, total = struct.unpack_from("<4sHHI", data)
    assert (magic, version, count, total) == (b"MSCB", 1, 3, len(data))
    assert struct.unpack_from("<I", data, 12)[0] == zlib.crc32(data[:12])
    # first block: name, version, CRC32 kind, its payload, then CRC32 of head + payload (independent maths)
    name, block_version, kind, _, length = struct.unpack_from("<12sHBBI", data, 16)
    assert (name.rstrip(b"\0"), block_version, kind) == (b"dpc", 1, 1)
    end = 16 + 20 + length
    assert data[36:end] == b'{"main":{"hot_pixel_map":[10,20,11,20]}}'
    assert struct.unpack_from("<I", data, end)[0] == zlib.crc32(data[16:end])


@pytest.mark.parametrize("index, name", [(0, "dpc"), (1, "afc"), (2, "wbc")])
def test_a_flipped_byte_is_reported_by_its_block_name(index, name):
    data = bytearray(pack(BLOCKS))
    start, end = calblob.block_spans(bytes(data))[index][1:]
    data[start + 3] ^= 0x01
    with pytest.raises(CorruptBlockError, match=f"'{name}'") as caught:
        unpack(bytes(data))
    assert caught.value.block == name
    assert [ok for _, ok in calblob.check_each(bytes(data))] == [i != index for i in range(3)]


def test_header_damage_and_truncation_are_caught():
    data = pack(BLOCKS)
    with pytest.raises(CorruptBlockError, match="header"):
        unpack(b"X" + data[1:])
    with pytest.raises(CorruptBlockError):
        unpack(data[:-3])


def test_bad_blocks_are_refused_on_pack():
    with pytest.raises(InputError, match="block name"):
        pack([Block("Bad Name", 1, {})])
    with pytest.raises(InputError, match="unique"):
        pack([Block("dpc", 1, {}), Block("dpc", 1, {})])
    with pytest.raises(InputError, match="not plain JSON"):
        pack([Block("dpc", 1, {"x": float("nan")})])


@pytest.fixture
def world() -> World:
    return World(seed=3, time_scale=0.0)


@pytest.fixture
def phone(world: World, phone_client: PhoneClient) -> tuple[World, PhoneClient]:
    return world, phone_client


def test_written_and_read_back_byte_for_byte(phone):
    world, client = phone
    data = pack(BLOCKS)
    receipt = calblob.write_to_phone(client, data)
    assert receipt["bytes"] == len(data)
    assert calblob.read_from_phone(client) == data
    assert calblob.read_blocks(client)["afc"].content == BLOCKS[1].content


def test_a_corrupt_block_on_the_phone_is_caught_on_read_back_naming_it(phone):
    world, client = phone
    calblob.write_to_phone(client, pack(BLOCKS))
    world.faults["calblob_corrupt_block"] = 2  # the twin flips a byte of the second block
    result, _ = client.request("calblob.read")
    assert result["blocks"] == [{"name": "dpc", "ok": True}, {"name": "afc", "ok": False},
                                {"name": "wbc", "ok": True}]
    with pytest.raises(CorruptBlockError, match="'afc'.*SHA-256 mismatch"):
        calblob.read_blocks(client)
    with pytest.raises(DeviceError, match="'afc'"):
        calblob.write_to_phone(client, pack(BLOCKS))


def test_a_blob_over_the_declared_capacity_is_refused_before_writing(phone):
    _, client = phone
    assert client.info()["calibration_capacity_bytes"] == CALBLOB_CAPACITY_BYTES
    big = pack([Block("dpc", 1, {"hot_pixel_map": list(range(CALBLOB_CAPACITY_BYTES // 2))})])
    assert len(big) > CALBLOB_CAPACITY_BYTES
    with pytest.raises(InputError, match=f"exceeds the phone's declared capacity of {CALBLOB_CAPACITY_BYTES}"):
        calblob.write_to_phone(client, big)
    assert calblob.read_from_phone(client) == b""  # nothing was written
