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

pytestmark = pytest.mark.slow  # a twin station and ~30 captures over its wires: tens of seconds


@pytest.fixture(scope="module")
def measured():
    with twin_station(seed=7) as station:
        station.twin.chart_set("flat")
        station.twin.fault_set("sensor_defects")
        station.twin.fault_set("unit_variation")
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


@pytest.mark.slow
def test_af_procedure_over_the_wire_within_the_depth_of_focus():
    from calibration.af import extension_um
    from station.procedures.af import calibrate_main_af
    from station.twin.lenses import MAIN_LENS, actuator_truth

    with twin_station(seed=8) as station:
        station.twin.chart_set("sfr")
        station.light.set_level_pct(60.0)
        station.light.set_output(True)
        result = calibrate_main_af(station)
        truth = actuator_truth(station.twin.truth()["serial"])
    entry = result.phone_entry()
    true_macro = truth["infinity_code"] + extension_um(MAIN_LENS.focal_length_mm,
                                                       entry["macro_distance_mm"]) / truth["um_per_code"]
    inf_um = abs(entry["infinity_code"] - truth["infinity_code"]) * truth["um_per_code"]
    macro_um = abs(entry["macro_code"] - true_macro) * truth["um_per_code"]
    print(f"\nAF over the wire: infinity {entry['infinity_code']} (truth {truth['infinity_code']:.2f}, "
          f"{inf_um:.1f} um), macro {entry['macro_code']} at {entry['macro_distance_mm']:g} mm "
          f"(truth {true_macro:.2f}, {macro_um:.1f} um), depth of focus +-{entry['depth_of_focus_um']} um, "
          f"hyperfocal ratio {entry['hyperfocal_check']['ratio']:.2f}")
    assert inf_um <= entry["depth_of_focus_um"] and macro_um <= entry["depth_of_focus_um"]
    assert entry["hyperfocal_check"]["pass"]


@pytest.mark.slow
def test_pose_procedure_over_the_wire_within_a_tenth_degree_and_a_fifth_mm():
    import numpy as np

    from calibration.stereo import rotation_angle_deg
    from station.procedures.pose import BOARD, measure_pose
    from station.twin.lenses import get_lens, sensor_pose_truth

    with twin_station(seed=8) as station:
        station.twin.chart_set(BOARD)
        station.twin.fault_set("unit_variation")
        station.twin.lens_mount("summilux-m-35-f1.4", 8.0)
        station.light.set_level_pct(80.0)
        station.light.set_output(True)
        result = measure_pose(station, "summilux-m-35-f1.4")
        world = station.twin.truth()
        truth = sensor_pose_truth(world["serial"])
    angle = rotation_angle_deg(result.pose.rotation @ np.array(truth["rotation"]).T)
    offset = float(np.linalg.norm(result.pose.centre_mm - np.array(truth["centre_mm"])))
    # the bare sensor's pose: the twin's pinhole sits the lens's image distance in front of the sensor (its
    # focal length plus the helicoid's extension at the ring angle the mount holds)
    lens = get_lens("summilux-m-35-f1.4")
    image_distance_mm = lens.focal_length_mm + lens.extension_for_ring_mm(world["pose"]["focus"])
    rotation = np.array(truth["rotation"])
    sensor_truth = np.array(truth["centre_mm"]) - rotation.T @ np.array([0.0, 0.0, image_distance_mm])
    sensor_offset = float(np.linalg.norm(result.sensor_centre_mm - sensor_truth))
    print(f"\npose over the wire: {angle:.4f} deg, {offset:.3f} mm; {result.phone_entry()['LENS_POSE_TRANSLATION']}; "
          f"bare sensor {sensor_offset:.3f} mm (image distance {result.image_distance_mm:.3f} mm, "
          f"truth {image_distance_mm:.3f} mm)")
    assert angle < 0.1 and offset < 0.2 and sensor_offset < 0.2
