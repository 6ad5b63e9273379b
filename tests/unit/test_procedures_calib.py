"""The calibration items of a phone line over the real wires of a twin station: defect pixels and AWB
against golden measured by the procedures, assembled into the checksummed blob, written to the phone and
read back byte for byte. The test side puts the flat diffuser up and switches the twin's seeded sensor
defects on (through its control interface); the truth is the twin's, held out."""

from __future__ import annotations

import pytest

from calibration.export_dng import parse_opcode_list
from station import calblob
from station.procedures.awb import measure_awb
from station.procedures.defects import measure_defects
from station.twin.sensor import channel_gains, defect_map
from tests.unit.twin_station import twin_station


@pytest.fixture(scope="module")
def measured():
    with twin_station(seed=7) as station:
        station.twin.chart_set("flat")
        station.twin.fault_set("sensor_defects")
        truth = station.twin.truth()
        defects = measure_defects(station, "m")
        awb = measure_awb(station, "main")
        blob = calblob.build_blob({"dpc": {"m": defects.phone_entry()}, "wbc": {"main": awb.phone_entry()}})
        receipt = calblob.write_to_phone(station.dut, blob)
        back = calblob.read_blocks(station.dut)
        yield defects, awb, blob, receipt, back, truth


def test_the_defect_map_over_the_wire_matches_the_seeded_truth(measured):
    defects, _, _, _, _, truth = measured
    seeded = {(d["x"], d["y"]) for d in defect_map(truth["sensor_serials"]["m"], truth["resolution"]).truth()}
    found = set(zip(defects.defects.x.tolist(), defects.defects.y.tolist(), strict=True))
    print(f"\nm sensor over the wire: {len(seeded)} seeded, missed {len(seeded - found)}, false {len(found - seeded)}")
    assert found == seeded
    (opcode,) = parse_opcode_list(defects.dng_opcode_list1())
    assert sorted((x, y) for y, x in opcode.points) == sorted(seeded)


def test_awb_over_the_wire_within_half_a_percent(measured):
    _, awb, _, _, _, truth = measured
    gains = channel_gains(truth["sensor_serials"]["main"])
    for result in awb.results:
        assert result.r_ratio == pytest.approx(gains["r"] / gains["g"], rel=0.005)
        assert result.b_ratio == pytest.approx(gains["b"] / gains["g"], rel=0.005)
    entry = awb.phone_entry()
    assert entry["SENSOR_REFERENCE_ILLUMINANT1"] == "STANDARD_A" and len(entry["SENSOR_CALIBRATION_TRANSFORM2"]) == 9


def test_the_blob_went_to_the_phone_and_read_back(measured):
    defects, awb, blob, receipt, back, _ = measured
    assert receipt["bytes"] == len(blob)
    assert back["dpc"].content["m"]["hot_pixel_map"] == defects.defects.hot_pixel_map()
    assert back["dpc"].checksum == "sha256" and back["wbc"].checksum == "crc32"
    assert back["wbc"].content["main"]["SENSOR_CALIBRATION_TRANSFORM1"] == awb.phone_entry()[
        "SENSOR_CALIBRATION_TRANSFORM1"]
