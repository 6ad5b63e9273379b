"""DNGs other tools read fully: exiftool 12.57 ``-validate -warning`` finds nothing on any DNG the station or
the twin phone writes (ExposureTime and ISO in the Exif IFD, the lens there too), a FixBadPixelsList opcode
reads back, and lensfun finds the camera and lens of a profile from a DNG's own tags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import lensfunpy
import numpy as np
import pytest
import rawpy
import tifffile

from calibration.export_dng import (
    TAG_OPCODE_LIST1,
    FixBadPixelsList,
    dng_opcode_list,
    embed_opcode_lists,
    fix_bad_pixels_from_map,
    parse_opcode_list,
)
from calibration.export_lensfun import lensfun_export
from calibration.profile import make_profile
from station.config import DutConfig
from station.devices.phone import PhoneClient
from station.dng import dng_bytes, read_dng, write_dng
from station.frame import Frame
from station.twin.phone_server import PhoneServer
from station.twin.world import World
from tests.unit.test_profile import SIZE, sample_profile

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None and os.environ.get("CI") != "true",
    reason="exiftool not installed (.ci/system-packages.sh: apt-get install libimage-exiftool-perl)")


def exiftool(path: Path, *args: str) -> dict:
    out = subprocess.run([EXIFTOOL, "-j", "-G1", *args, str(path)], capture_output=True, text=True, check=True,
                         timeout=60)
    return json.loads(out.stdout)[0]


def validate(path: Path) -> dict:
    return exiftool(path, "-validate", "-warning", "-a")


def station_frame() -> Frame:
    data = (np.arange(96 * 128).reshape(96, 128) % 1024).astype(np.uint16)
    return Frame(data=data, sensor="m", cfa="RGGB", black_level=64, white_level=1023, bit_depth=10,
                 exposure_s=1 / 250, analog_gain=2.0, lens="summicron-m-50-f2", dut_serial="SN1",
                 firmware="golden", timestamp="2024-01-01T00:00:00+00:00",
                 extra={"f_number": 2.8, "focal_length_mm": 50.0})


@pytest.fixture(scope="module")
def phone_dngs(tmp_path_factory):
    """The twin phone's own DNGs: the main camera, the M sensor with a lens, the bare M sensor."""
    out = tmp_path_factory.mktemp("dng")
    world = World(seed=2, time_scale=0.0)
    world.set_light(output=True, level_pct=50.0)
    paths = {}
    with PhoneServer(world) as server:
        client = PhoneClient(DutConfig(host="127.0.0.1", port=server.port))
        try:
            for name, lens in (("main", None), ("m-lens", "summicron-m-50-f2"), ("m-bare", None)):
                world.m_lens = lens
                _, payload = client.capture("main" if name == "main" else "m", "dng")
                paths[name] = out / f"{name}.dng"
                paths[name].write_bytes(payload)
        finally:
            client.close()
    return paths


@needs_exiftool
def test_station_dng_has_no_exiftool_warning_and_exif_in_the_exif_ifd(tmp_path):
    path = write_dng(tmp_path / "station.dng", station_frame())
    assert validate(path)["ExifTool:Validate"] == "OK"
    tags = exiftool(path)
    assert tags["ExifIFD:ExposureTime"] == "1/250" and tags["ExifIFD:ISO"] == 200
    assert tags["ExifIFD:FNumber"] == 2.8 and tags["ExifIFD:FocalLength"] == "50.0 mm"
    assert tags["ExifIFD:LensModel"] == "summicron-m-50-f2" and tags["ExifIFD:LensMake"] == "M-Station"
    assert "IFD0:ExposureTime" not in tags and "IFD0:ISO" not in tags
    frame = read_dng(path)  # and the station reads its own DNG back the same
    assert frame.exposure_s == pytest.approx(1 / 250) and frame.analog_gain == 2.0
    with rawpy.imread(str(path)) as raw:  # LibRaw too
        np.testing.assert_array_equal(raw.raw_image_visible, station_frame().data)


@needs_exiftool
@pytest.mark.parametrize("name", ["main", "m-lens", "m-bare"])
def test_the_phone_dngs_have_no_exiftool_warning(phone_dngs, name):
    path = phone_dngs[name]
    assert validate(path)["ExifTool:Validate"] == "OK"
    tags = exiftool(path)
    assert "ExifIFD:ExposureTime" in tags and "ExifIFD:ISO" in tags
    if name != "m-bare":
        assert {"ExifIFD:LensModel", "ExifIFD:LensMake", "ExifIFD:FNumber", "ExifIFD:FocalLength"} <= set(tags)


@needs_exiftool
def test_fix_bad_pixels_list_reads_back_and_validates(tmp_path):
    hot_pixel_map = [10, 20, 11, 20, 5, 3, 40, 90]  # Android (x, y) pairs
    opcode = fix_bad_pixels_from_map(hot_pixel_map, "RGGB")
    assert opcode.points == ((3, 5), (20, 10), (20, 11), (90, 40))  # (row, column), sorted
    path = tmp_path / "fixed.dng"
    path.write_bytes(embed_opcode_lists(dng_bytes(station_frame()), opcode_list1=dng_opcode_list([opcode])))
    assert validate(path)["ExifTool:Validate"] == "OK"
    with tifffile.TiffFile(path) as tif:
        raw = tif.pages.first.tags[TAG_OPCODE_LIST1].value
    (back,) = parse_opcode_list(bytes(raw))
    assert back == FixBadPixelsList(0, opcode.points)
    # the layout itself: ID 5, DNG 1.3, then BayerPhase 0, 4 points, 0 rects, rows and columns big-endian
    assert bytes(raw)[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x05"
    assert np.frombuffer(bytes(raw)[20:], ">u4").tolist() == [0, 4, 0, 3, 5, 20, 10, 20, 11, 90, 40]


@needs_exiftool
def test_lensfun_finds_camera_and_lens_from_the_dngs_own_tags(phone_dngs):
    tags = exiftool(phone_dngs["m-lens"])
    camera = {"make": tags["IFD0:Make"], "model": tags["IFD0:Model"], "lens_make": tags["ExifIFD:LensMake"],
              "lens_model": tags["ExifIFD:LensModel"]}
    base = sample_profile()
    doc = make_profile(sensor="m", image_size=list(SIZE), pixel_pitch_um=base["pixel_pitch_um"],
                       provenance=base["provenance"], lens="summicron-m-50-f2", geometry=base["geometry"],
                       camera=camera)
    export = lensfun_export(doc)
    db = lensfunpy.Database(xml=export.xml, load_common=False, load_bundled=False)
    cameras = db.find_cameras(tags["IFD0:Make"], tags["IFD0:Model"])
    assert [(c.maker, c.model) for c in cameras] == [(tags["IFD0:Make"], tags["IFD0:Model"])]
    lenses = db.find_lenses(cameras[0], tags["ExifIFD:LensMake"], tags["ExifIFD:LensModel"])
    assert [lens.model for lens in lenses] == [tags["ExifIFD:LensModel"]]


@needs_exiftool
def test_a_dng_with_the_profiles_opcodes_has_no_exiftool_warning(tmp_path):
    from calibration.export_dng import dng_export

    export = dng_export(sample_profile())
    path = tmp_path / "profiled.dng"
    path.write_bytes(embed_opcode_lists(dng_bytes(station_frame()), opcode_list2=export.opcode_list2,
                                       opcode_list3=export.opcode_list3))
    assert validate(path)["ExifTool:Validate"] == "OK"
    assert "ExifIFD:ExposureTime" in exiftool(path)  # the Exif IFD survives the rewritten IFD 0
