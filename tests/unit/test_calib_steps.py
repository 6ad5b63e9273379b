"""The factory plan's blob step: the checksummed blob assembled from the cases' phone entries (defects, AF,
AWB, the modules' own lens shading, pose), written into the twin's phone over its wire and read back byte
for byte; a blob over the phone's declared capacity refused by the station before anything is written."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from station import calblob
from station.devices.phone import PhoneClient
from station.errors import InputError
from station.plans.calib_steps import LSC_FRACTION_BITS, blob_items, lsc_entry, lsc_gains
from station.plans.helpers import RunResults
from station.procedures.profile import CaseResults, write_calblob
from station.twin.phone_server import CALBLOB_CAPACITY_BYTES
from station.twin.world import World


def _results(gain: float = 1.23456) -> RunResults:
    results = RunResults()
    main = results["main"] = CaseResults("main")
    main.phone.update(defect_pixels={"hot_pixel_map": [3, 4, 10, 11], "width": 64, "height": 48},
                      af={"infinity_code": 97.3}, awb={"SENSOR_CALIBRATION_TRANSFORM1": [1.0] * 9},
                      lens_shading_map=[[gain, 1.0]], wb_gains=[2.0, 1.0, 1.0, 1.5])
    results["m"] = CaseResults("m")
    results["m"].phone["lens_shading_map"] = [[1.5, 1.0]]
    lens = results["m/summicron-m-50-f2"] = CaseResults("m", "summicron-m-50-f2")
    lens.phone.update(lens_shading_map=[[2.0, 1.0]], pose={"centre_mm": [28.0, 0.0, 0.1]})
    return results


def test_the_blob_items_come_from_the_phone_entries_of_every_case() -> None:
    items = blob_items(_results())
    assert items == {"dpc": {"main": {"hot_pixel_map": [3, 4, 10, 11], "width": 64, "height": 48}},
                     "afc": {"main": {"infinity_code": 97.3}},
                     "wbc": {"main": {"SENSOR_CALIBRATION_TRANSFORM1": [1.0] * 9}},
                     "lsc": {"main": lsc_entry([[1.23456, 1.0]]), "m": lsc_entry([[1.5, 1.0]])},
                     "pose": {"m/summicron-m-50-f2": {"centre_mm": [28.0, 0.0, 0.1]}}}
    assert items["lsc"]["main"]["fraction_bits"] == LSC_FRACTION_BITS


def test_lens_shading_goes_into_the_blob_as_16_bit_fixed_point_within_half_a_step() -> None:
    rng = np.random.default_rng(3)
    gains = 1.0 + 3.0 * rng.random((4, 13, 17))
    entry = lsc_entry(gains)
    back = lsc_gains(entry)
    assert back.shape == gains.shape and entry["shape"] == [4, 13, 17]
    assert np.max(np.abs(back - gains)) <= 0.5 / (1 << LSC_FRACTION_BITS) + 1e-12
    assert len(entry["gains_u16le_b64"]) == 4 * ((gains.size * 2 + 2) // 3)  # two bytes a gain, base64


@pytest.fixture
def world() -> World:
    return World(seed=3, time_scale=0.0)


@pytest.fixture
def station(phone_client: PhoneClient) -> SimpleNamespace:
    return SimpleNamespace(dut=phone_client)


def test_the_blob_is_written_and_read_back_byte_for_byte(station) -> None:
    written = write_calblob(station, blob_items(_results()))
    back = calblob.read_blocks(station.dut)
    assert list(back) == written.blocks == ["dpc", "afc", "wbc", "lsc", "pose"]
    assert back["afc"].content == {"main": {"infinity_code": 97.3}}
    assert written.measurements() == {"calblob_bytes": float(len(written.blob)), "calblob_readback_ok": 1.0}
    assert written.to_dict()["capacity_bytes"] == CALBLOB_CAPACITY_BYTES


def test_a_blob_over_the_phones_capacity_is_refused_before_writing(station) -> None:
    write_calblob(station, blob_items(_results()))
    before = calblob.read_from_phone(station.dut)
    results = _results()
    results["main"].phone["defect_pixels"]["hot_pixel_map"] = np.arange(CALBLOB_CAPACITY_BYTES // 2).tolist()
    with pytest.raises(InputError, match=f"exceeds the phone's declared capacity of {CALBLOB_CAPACITY_BYTES}"):
        write_calblob(station, blob_items(results))
    assert calblob.read_from_phone(station.dut) == before  # nothing was written
