"""The twin phone's firmware builds and faults on a real TCP socket: the golden build's outputs are the spec of
the frame, every regression build shows on the wire, several clients, dropped/corrupt/cut payloads, stored
white balance. A physics frame costs ~0.2 s, so these tests replay two frames rendered once for the module;
payloads are checked against the independent references of ``tests.unit.phone_wire``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from typing import Any

import numpy as np
import pytest

from station.dng import read_dng
from station.twin import isp
from station.twin.firmware import FIRMWARE_BUILDS, firmware_catalog
from station.twin.phone_server import PHONE_FAULTS, PhoneServer
from station.twin.render import render_raw
from tests.unit.phone_wire import (
    BLACK,
    WHITE,
    Wire,
    block_means,
    decode_png,
    laplacian_ref,
    luma_ref,
    quad_zebra_ref,
    srgb8,
    unpack,
)
from tests.unit.wires import lit_world

# --- firmware: the golden build's features and every regression, on the wire -----------------

#: Outputs that show each feature of the firmware (``firmware_catalog()[build]["feature"]``).
FEATURE_OUTPUTS = {"raw": ("raw", "dark", "dng", "info"), "preview": ("preview",),
                   "zebra": ("zebra_luma", "zebra_raw"), "peaking": ("peaking",),
                   "histogram": ("hist_preview", "hist_raw")}
ALL_OUTPUTS = tuple(k for kinds in FEATURE_OUTPUTS.values() for k in kinds)
MAP_ROWS, MAP_COLS = 13, 17


@pytest.fixture(scope="module")
def scene() -> dict[str, Any]:
    """Two physics frames: ``main`` a flat through the main lens (vignetted), ``m`` a dark frame;
    and the phone's stored shading map, made here from the truth's vignetting model."""
    lit = lit_world(seed=3)
    main_raw, main_truth = render_raw(lit, "main", {"exposure_us": 1000, "analog_gain": 1.0}, 1)
    dark = lit_world(seed=3)
    dark.set_light(output=False)
    dark_raw, dark_truth = render_raw(dark, "m", {"exposure_us": 1000, "analog_gain": 1.0}, 1)
    v = main_truth["vignetting"]
    h, w = main_raw.shape
    xs = np.linspace(0, w - 1, MAP_COLS)
    ys = np.linspace(0, h - 1, MAP_ROWS)
    r = np.hypot(xs[None, :] - v["cx"], ys[:, None] - v["cy"]) / v["r_scale_px"]
    relative = np.cos(np.arctan(r)) ** 4 * (1 + v["a2"] * r**2 + v["a4"] * r**4)
    gains = np.repeat((1.0 / relative)[:, :, None], 4, axis=2)
    assert gains.min() >= 1.0 and gains.max() > 1.5  # a clearly vignetted flat
    blob = {"sensors": {"main": {"lens_shading_map": np.round(gains, 5).tolist()}}}
    return {"frames": {"main": (main_raw, main_truth), "m": (dark_raw, dark_truth)}, "blob": blob}


def replaying(scene: dict[str, Any]):
    """A renderer that hands the phone the module's physics frame of each sensor."""
    return lambda world, sensor, settings, seq: scene["frames"][sensor]


def collect(scene: dict[str, Any], kinds: tuple[str, ...], thresholds: dict[str, int],
            firmware: str = "golden", faults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The phone's outputs ``kinds`` over the wire, on the scene's frames (calibration stored first)."""
    world = lit_world(seed=3)
    world.firmware, world.faults = firmware, dict(faults or {})
    out: dict[str, Any] = {}
    with PhoneServer(world, render=replaying(scene)) as phone:
        w = Wire(phone.port)
        w.ok({"cmd": "calibration.write", "blob": scene["blob"]})
        if "raw" in kinds:
            meta, payload = w.ok({"cmd": "capture", "sensor": "main", "format": "raw10"})
            out["raw"] = (meta, unpack(meta, payload))
            out["dng"] = read_dng(w.ok({"cmd": "capture", "sensor": "main", "format": "dng", "frame": "last"})[1])
            meta, payload = w.ok({"cmd": "capture", "sensor": "m", "format": "raw10"})
            out["dark"] = (meta, unpack(meta, payload))
            out["info"] = w.ok({"cmd": "info"})[0]
        if "preview" in kinds:
            out["preview"] = decode_png(w.ok({"cmd": "capture", "sensor": "main", "format": "preview"})[1])
        for kind, mode in (("zebra_luma", "luma"), ("zebra_raw", "raw")):
            if kind in kinds:
                zebra = {"enabled": True, "mode": mode, "threshold": thresholds[kind]}
                w.ok({"cmd": "configure", "sensor": "main", "zebra": zebra})
                out[kind] = decode_png(w.ok({"cmd": "capture", "sensor": "main", "format": "zebra_mask"})[1])
        if "peaking" in kinds:
            w.ok({"cmd": "configure", "sensor": "main",
                  "peaking": {"enabled": True, "threshold": thresholds["peaking"]}})
            out["peaking"] = decode_png(w.ok({"cmd": "capture", "sensor": "main", "format": "peaking_mask"})[1])
        for source in ("preview", "raw"):
            if f"hist_{source}" in kinds:
                out[f"hist_{source}"] = np.array(w.ok({"cmd": "histogram", "sensor": "main",
                                                       "source": source})[0]["counts"])
        w.close()
    return out


@pytest.fixture(scope="module")
def golden(scene: dict[str, Any]) -> dict[str, Any]:
    """The golden build's outputs, with thresholds that cut through the frame's noise."""
    raw = scene["frames"]["main"][0]
    first = collect(scene, ("preview",), {})
    luma = luma_ref(first["preview"])
    thresholds = {"zebra_luma": int(np.median(luma)), "zebra_raw": int(np.median(raw)),
                  "peaking": max(1, int(np.percentile(laplacian_ref(luma), 90)))}
    out = collect(scene, ALL_OUTPUTS, thresholds)
    out["thresholds"] = thresholds
    return out


def test_golden_outputs_are_the_spec_of_the_frame(scene: dict[str, Any], golden: dict[str, Any]) -> None:
    raw, truth = scene["frames"]["main"]
    dark_raw, dark_truth = scene["frames"]["m"]
    t = golden["thresholds"]
    luma = luma_ref(golden["preview"])
    # RAW: the sensor's frame unchanged, all codes, the declared levels and CFA are the true ones
    meta, data = golden["raw"]
    np.testing.assert_array_equal(data, raw)
    np.testing.assert_array_equal(golden["dng"].data, raw)
    assert np.mean(raw % 4 != 0) > 0.5  # 10-bit codes: the two low bits are used
    assert meta["cfa"] == golden["dng"].cfa == golden["info"]["sensors"]["main"]["cfa"] == truth["sensor_params"]["cfa"]
    dark_meta, dark = golden["dark"]
    assert dark_meta["black_level"] == golden["dng"].black_level == truth["black_level"]
    assert dark.mean() - dark_meta["black_level"] == pytest.approx(0.0, abs=0.1)  # declared black is the dark level
    # the declared R and B sites carry the true red and blue signal (5000 K light: R < B after the ISP's gains)
    cx, cy = int(truth["intrinsics"]["cx"]) // 2 * 2, int(truth["intrinsics"]["cy"]) // 2 * 2
    centre = raw[cy - 32:cy + 32, cx - 32:cx + 32].astype(np.float64)
    sites = {c: centre[i // 2::2, i % 2::2].mean() for i, c in enumerate(meta["cfa"]) if c != "G"}
    for channel in "RB":
        assert sites[channel] == pytest.approx(truth["expected_mean_dn_rgb"][channel.lower()], abs=1.5)
    assert abs(truth["expected_mean_dn_rgb"]["r"] - truth["expected_mean_dn_rgb"]["b"]) > 10
    # zebra, peaking and histograms as DESIGN 7's table defines them
    np.testing.assert_array_equal(golden["zebra_luma"] > 0, luma >= t["zebra_luma"])
    np.testing.assert_array_equal(golden["zebra_raw"] > 0, quad_zebra_ref(raw, t["zebra_raw"]))
    np.testing.assert_array_equal(golden["peaking"] > 0, laplacian_ref(luma) >= t["peaking"])
    for kind in ("zebra_luma", "zebra_raw", "peaking"):
        assert 0.02 < (golden[kind] > 0).mean() < 0.98, kind
    np.testing.assert_array_equal(golden["hist_preview"], np.bincount(luma.ravel(), minlength=256))
    np.testing.assert_array_equal(golden["hist_raw"], np.bincount(raw.ravel(), minlength=1024))
    # lens shading corrected with the stored map: the vignetted flat comes out flat
    blocks = block_means(luma.astype(np.float64))
    assert blocks.min() / blocks.max() > 0.93
    assert dark_truth["illuminance_lux"] == 0.0


def test_disabled_zebra_and_peaking_draw_nothing(scene: dict[str, Any]) -> None:
    with PhoneServer(lit_world(seed=3), render=replaying(scene)) as phone:
        w = Wire(phone.port)
        w.ok({"cmd": "configure", "sensor": "main", "zebra": {"enabled": False, "threshold": 0},
              "peaking": {"enabled": False, "threshold": 0}})
        zebra = w.ok({"cmd": "capture", "sensor": "main", "format": "zebra_mask"})[1]
        peaking = w.ok({"cmd": "capture", "sensor": "main", "format": "peaking_mask", "frame": "last"})[1]
        w.close()
    assert not decode_png(zebra).any() and not decode_png(peaking).any()


def _check_raw(golden: dict, got: dict, build: str) -> None:
    (meta, data), (gmeta, gdata) = got["raw"], golden["raw"]
    (dmeta, dark), (_, gdark) = got["dark"], golden["dark"]
    if build == "bl-offset":
        assert dmeta["black_level"] == got["dng"].black_level == BLACK  # declared as before...
        assert dark.mean() - BLACK == pytest.approx(gdark.mean() - BLACK + 8, abs=0.01)  # ...data 8 DN above
        np.testing.assert_array_equal(data, np.minimum(gdata.astype(np.int32) + 8, WHITE))
    elif build == "raw8-truncation":
        assert not np.any(data % 4) and np.any(gdata % 4)
        np.testing.assert_array_equal(data, gdata & ~np.uint16(3))
    else:  # cfa-swap: the data are right, what is declared is not
        np.testing.assert_array_equal(data, gdata)
        assert gmeta["cfa"] == "RGGB"
        assert meta["cfa"] == got["dng"].cfa == got["info"]["sensors"]["main"]["cfa"] == "BGGR"
    np.testing.assert_array_equal(got["dng"].data, data)  # DNG and raw10 carry the same RAW


def _check_preview(golden: dict, got: dict, build: str) -> None:
    flat = block_means(luma_ref(golden["preview"]).astype(np.float64))
    vignetted = block_means(luma_ref(got["preview"]).astype(np.float64))
    assert vignetted.min() / vignetted.max() < 0.8 < flat.min() / flat.max()


def _check_zebra(golden: dict, got: dict, build: str) -> None:
    for kind in ("zebra_luma", "zebra_raw"):
        assert (got[kind] > 0).sum() < (golden[kind] > 0).sum(), kind  # the threshold sits higher


def _check_peaking(golden: dict, got: dict, build: str) -> None:
    assert golden["peaking"].any() and not got["peaking"].any()


def _check_histogram(golden: dict, got: dict, build: str) -> None:
    for kind in ("hist_preview", "hist_raw"):
        expected = np.concatenate(([0], golden[kind][:-1]))
        expected[-1] += golden[kind][-1]  # value v counted in bin v + 1, the top bin keeps its own
        np.testing.assert_array_equal(got[kind], expected)


CHECKS = {"raw": _check_raw, "preview": _check_preview, "zebra": _check_zebra, "peaking": _check_peaking,
          "histogram": _check_histogram}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):  # (capture metadata, RAW): the data and what is declared about them
        return np.array_equal(a[1], b[1]) and (a[0]["cfa"], a[0]["black_level"]) == (b[0]["cfa"], b[0]["black_level"])
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if hasattr(a, "data") and hasattr(a, "cfa"):  # a Frame from a DNG
        return np.array_equal(a.data, b.data) and (a.cfa, a.black_level) == (b.cfa, b.black_level)
    return a == b


@pytest.mark.parametrize("build", [name for name in firmware_catalog() if name != "golden"])
def test_each_regression_build_shows_on_the_wire_and_its_fault_does_the_same(
        scene: dict[str, Any], golden: dict[str, Any], build: str) -> None:
    entry = firmware_catalog()[build]
    kinds = FEATURE_OUTPUTS[entry["feature"]]
    got = collect(scene, kinds, golden["thresholds"], firmware=build)
    assert any(not _same(got[k], golden[k]) for k in kinds)
    CHECKS[entry["feature"]](golden, got, build)
    # the same regression switched on as a twin fault over the golden build (--twin-fault NAME)
    faulted = collect(scene, kinds, golden["thresholds"], faults={entry["regression"]: True})
    for kind in kinds:
        if kind == "info":
            assert faulted["info"]["sensors"] == got["info"]["sensors"]
            assert faulted["info"]["firmware"] == "golden"  # a fault is hidden, as a real bug is
        elif kind == "raw":
            np.testing.assert_array_equal(faulted["raw"][1], got["raw"][1])
            assert faulted["raw"][0]["truth"]["firmware"]["regression"] == entry["regression"]
        else:
            assert _same(faulted[kind], got[kind]), kind


def test_catalog_has_one_build_per_regression() -> None:
    regressions = {b.regression for b in FIRMWARE_BUILDS.values() if b.regression}
    assert len(regressions) == len(FIRMWARE_BUILDS) - 1
    assert {b.feature for b in FIRMWARE_BUILDS.values() if b.feature} == set(FEATURE_OUTPUTS)


# --- several clients, phone faults on the wire -----------------------------------------------

def test_several_clients_at_once(scene: dict[str, Any]) -> None:
    results: list[int] = []
    with PhoneServer(lit_world(), render=replaying(scene)) as phone:
        def client() -> None:
            w = Wire(phone.port)
            for _ in range(2):
                header, payload = w.call({"cmd": "capture", "sensor": "m", "format": "raw10"})
                assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
                results.append(header["result"]["seq"])
            w.close()

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert sorted(results) == list(range(1, 7))  # one phone, one frame counter


@pytest.fixture
def quick(scene: dict[str, Any]):
    """A phone replaying the module's frames (faults on the wire need no new physics)."""
    world = lit_world()
    with PhoneServer(world, render=replaying(scene)) as phone:
        yield phone, world


def test_phone_faults_are_documented() -> None:
    assert set(PHONE_FAULTS) == {"dut_drop_frame", "dut_corrupt_payload", "dut_disconnect", "dut_flaky",
                                 "calblob_corrupt_block", "sensor_defects", "unit_variation"}
    assert all(isinstance(text, str) and text for text in PHONE_FAULTS.values())


def test_drop_frame_gets_no_reply(quick) -> None:
    server, world = quick
    world.faults["dut_drop_frame"] = 2  # every second capture
    w = Wire(server.port, timeout_s=0.3)
    try:
        assert w.call({"cmd": "capture", "sensor": "m", "format": "raw10"})[0]["ok"]
        w.send({"cmd": "capture", "sensor": "m", "format": "raw10"})
        with pytest.raises(TimeoutError):
            w.file.readline()
    finally:
        w.close()
    w = Wire(server.port)
    meta, _ = w.ok({"cmd": "capture", "sensor": "m", "format": "raw10"})
    assert meta["seq"] == 3  # the dropped frame was taken, then lost
    w.close()


def test_corrupt_payload_fails_its_sha(quick) -> None:
    server, world = quick
    world.faults["dut_corrupt_payload"] = True
    w = Wire(server.port)
    header, payload = w.call({"cmd": "capture", "sensor": "m", "format": "raw10"})
    assert len(payload) == header["payload_bytes"]
    assert hashlib.sha256(payload).hexdigest() != header["payload_sha256"]
    del world.faults["dut_corrupt_payload"]
    header, payload = w.call({"cmd": "capture", "sensor": "m", "format": "raw10"})
    assert hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
    w.close()


def test_disconnect_closes_mid_payload(quick) -> None:
    server, world = quick
    world.faults["dut_disconnect"] = True
    w = Wire(server.port)
    w.send({"cmd": "capture", "sensor": "m", "format": "raw10"})
    header = json.loads(w.file.readline())
    rest = w.file.read()
    assert header["payload_bytes"] > 0 and len(rest) == header["payload_bytes"] // 2
    w.close()


def test_stored_white_balance_reaches_the_preview_and_the_dng(scene: dict[str, Any]) -> None:
    gains = (2.0, 1.0, 1.25)
    with PhoneServer(lit_world(), render=replaying(scene)) as phone:
        w = Wire(phone.port)
        plain = decode_png(w.ok({"cmd": "capture", "sensor": "main", "format": "preview"})[1])
        w.ok({"cmd": "calibration.write", "blob": {"sensors": {"main": {"wb_gains": list(gains)}}}})
        _, dng = w.ok({"cmd": "capture", "sensor": "main", "format": "dng"})
        tuned = decode_png(w.ok({"cmd": "capture", "sensor": "main", "format": "preview", "frame": "last"})[1])
        w.close()
    assert read_dng(dng).extra["as_shot_neutral"] == pytest.approx([1 / g for g in gains])
    # the preview's red over green follows the gains: sRGB of the linear ratio, at the centre
    raw, truth = scene["frames"]["main"]
    e = truth["expected_mean_dn_rgb"]
    cx, cy = round(truth["intrinsics"]["cx"]), round(truth["intrinsics"]["cy"])
    for image, wb in ((plain, isp.DEFAULT_WB_GAINS), (tuned, gains)):
        centre = image[cy - 16:cy + 16, cx - 16:cx + 16].reshape(-1, 3).mean(axis=0)
        expected_r = srgb8((e["r"] - BLACK) / (WHITE - BLACK) * wb[0])
        assert centre[0] == pytest.approx(expected_r, abs=1.0)
    assert math.isfinite(float(plain.mean()))
