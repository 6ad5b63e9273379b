"""Defect pixels (EMVA 1288 defect-pixel characterization) against the twin's seeded truth: every
seeded defect found with its kind, nothing else flagged, clusters sized, and the maps out."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from calibration.defects import DefectThresholds, defects_from_hot_pixel_map, find_defects
from station.twin.render import render_raw
from station.twin.sensor import DEFECT_COLUMN_PX, defect_map
from station.twin.world import World

DARK_LONG_US = 250_000
FLAT_US = {"main": 1500, "m": 2200}  # mid-scale at 60 % light


@lru_cache(maxsize=2)
def frames(sensor: str) -> tuple[dict[str, list[np.ndarray]], str]:
    """One frame each (the thresholds stand tens of noise sigmas off): dark at 0.25 s, dark and flat at the
    flats' exposure (light 60 %, bare M sensor or the main camera on the flat diffuser); the sensor's serial."""
    world = World(seed=5, resolution="ci", time_scale=0.0, faults={"sensor_defects": True})
    world.chart = "flat"
    out: dict[str, list[np.ndarray]] = {"dark_long": [], "dark_short": [], "flat": []}
    seq = 0
    for name, level, exposure_us in (("dark_long", 0.0, DARK_LONG_US), ("dark_short", 0.0, FLAT_US[sensor]),
                                     ("flat", 60.0, FLAT_US[sensor])):
        world.set_light(output=level > 0, level_pct=level)
        for _ in range(1):
            seq += 1
            raw, _ = render_raw(world, sensor, {"exposure_us": exposure_us, "analog_gain": 1.0}, seq)
            out[name].append(raw)
    return out, world.sensor_serial_for(sensor)


@pytest.mark.parametrize("sensor", ["main", "m"])
def test_every_seeded_defect_is_found_with_its_kind_and_nothing_else(sensor):
    data, serial = frames(sensor)
    flat_mean = np.mean(data["flat"][0][100:-100, 100:-100])
    assert 300 < flat_mean < 800  # the flats are mid-scale
    found = find_defects(data["dark_long"], DARK_LONG_US * 1e-6, data["flat"], data["dark_short"], "RGGB")
    truth = {(d["x"], d["y"]): d["kind"] for d in defect_map(serial, "ci").truth()}
    got = {(int(x), int(y)): k for x, y, k in zip(found.x, found.y, found.kind, strict=True)}
    missed = sorted(set(truth) - set(got))
    false = sorted(set(got) - set(truth))
    wrong_kind = sorted(p for p in set(truth) & set(got) if truth[p] != got[p])
    print(f"\n{sensor}: {len(truth)} seeded, {len(got)} found, missed {len(missed)}, false {len(false)}, "
          f"wrong kind {len(wrong_kind)}; by kind {found.counts()}")
    assert missed == [] and false == [] and wrong_kind == []
    # clusters: the column segment is the largest, pairs are 2, under the default limit of 16
    assert max(found.cluster_sizes) == DEFECT_COLUMN_PX
    assert sorted(found.cluster_sizes).count(2) == 3
    assert found.oversized_clusters == []
    tight = find_defects(data["dark_long"], DARK_LONG_US * 1e-6, data["flat"], data["dark_short"], "RGGB",
                         DefectThresholds(max_cluster_px=8))
    assert tight.oversized_clusters == [DEFECT_COLUMN_PX]


def test_hot_pixel_map_is_android_x_y_pairs():
    data, serial = frames("m")
    found = find_defects(data["dark_long"], DARK_LONG_US * 1e-6, data["flat"], data["dark_short"], "RGGB")
    pairs = defects_from_hot_pixel_map(found.hot_pixel_map())
    truth = [(d["x"], d["y"]) for d in defect_map(serial, "ci").truth()]  # sorted by (y, x)
    assert pairs == truth
    assert found.to_dict()["count"] == len(truth)
    with pytest.raises(ValueError, match="pairs"):
        defects_from_hot_pixel_map([1, 2, 3])


def test_other_serials_other_defects_and_none_without_the_fault():
    a, b = defect_map("UNIT-A-main", "ci").truth(), defect_map("UNIT-B-main", "ci").truth()
    assert a != b and len(a) == len(b)
    world = World(seed=5, resolution="ci", time_scale=0.0)
    world.chart = "flat"
    raw, truth = render_raw(world, "m", {"exposure_us": DARK_LONG_US, "analog_gain": 1.0}, 1)
    assert raw.max() < 200 and truth["defect_pixels"] == []  # without the fault: no defect pixel
    world.faults["sensor_defects"] = True
    raw, truth = render_raw(world, "m", {"exposure_us": DARK_LONG_US, "analog_gain": 1.0}, 2)
    assert truth["defect_pixels"] == defect_map(world.sensor_serial_for("m"), "ci").truth()  # the capture's truth
    assert raw.max() > 500


def test_analyze_defects_cli_on_dngs(tmp_path, capsys):
    import json

    from station.cli import main
    from station.dng import write_dng
    from station.frame import Frame

    data, serial = frames("m")
    files = []
    for kind, exposure_us in (("dark_long", DARK_LONG_US), ("dark_short", FLAT_US["m"]), ("flat", FLAT_US["m"])):
        for i, raw in enumerate(data[kind]):
            name = f"{'dark' if kind.startswith('dark') else 'flat'}_{kind}_{i}.dng"
            frame = Frame(data=np.array(raw), cfa="RGGB", black_level=64, white_level=1023,
                          exposure_s=exposure_us * 1e-6)
            files.append(str(write_dng(tmp_path / name, frame)))
    assert main(["analyze", "defects", *files, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    truth = defect_map(serial, "ci").truth()
    assert doc["count"] == len(truth) and doc["dark_frames"] == 2 and doc["flat_frames"] == 1
    assert [(p["x"], p["y"], p["kind"]) for p in doc["pixels"]] == [(d["x"], d["y"], d["kind"]) for d in truth]
    assert main(["analyze", "defects", files[0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "need dark frames" in err


def test_the_map_goes_into_the_profile():
    import json

    from calibration.profile import loads_profile, make_profile, make_provenance, verify_digest

    data, serial = frames("m")
    found = find_defects(data["dark_long"], DARK_LONG_US * 1e-6, data["flat"], data["dark_short"], "RGGB")
    provenance = make_provenance(station="twin", dut_serial="SN", firmware="golden", tool="test",
                                 time="2024-01-01T00:00:00Z", code_version="0")
    doc = make_profile(sensor="m", image_size=[2048, 1536], pixel_pitch_um=6.4, provenance=provenance,
                       defects=found.to_dict())
    assert verify_digest(doc)
    back = loads_profile(json.dumps(doc))
    assert [(p["x"], p["y"]) for p in back["defects"]["pixels"]] == [
        (d["x"], d["y"]) for d in defect_map(serial, "ci").truth()]
