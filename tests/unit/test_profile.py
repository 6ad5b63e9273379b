"""The lens profile document: schema checks, a digest that is stable and catches tampering, safe file names."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest

from calibration.profile import (
    SCHEMA,
    ProfileError,
    dumps_profile,
    loads_profile,
    make_profile,
    make_provenance,
    profile_digest,
    profile_filename,
    profile_stem,
    validate_profile,
    verify_digest,
)

SIZE = [640, 480]
CAMERA_MATRIX = [[560.0, 0.0, 321.3], [0.0, 560.0, 238.9], [0.0, 0.0, 1.0]]


def sample_profile(**overrides) -> dict:
    """A full profile (m sensor + Summilux) with numpy inputs, as the calibration steps hand them over."""
    rows, cols = 5, 7
    yy, xx = np.mgrid[0:rows, 0:cols]
    r2 = ((xx - 3) / 3) ** 2 + ((yy - 2) / 2) ** 2
    gain_map = np.repeat((1.0 + 0.4 * r2)[..., None], 4, axis=2) * np.array([1.0, 1.01, 1.01, 1.02])
    kwargs = dict(
        sensor="m", lens="summilux-m-35-f1.4", adapter=None, image_size=SIZE, pixel_pitch_um=9.6,
        provenance=make_provenance(station="twin-ci", dut_serial="SN0001", firmware="golden", tool="pytest",
                                   time="2025-01-31T12:00:00Z", code_version="0.1.0"),
        geometry={"camera_matrix": np.array(CAMERA_MATRIX), "dist_coeffs": np.array([-0.21, 0.09, 0.0, 0.0, 0.0]),
                  "rms_px": np.float64(0.042), "views_used": 12},
        shading={"grid": [rows, cols], "map": gain_map, "cfa": "RGGB", "f_number": 1.4,
                 "radial": {"k": [-0.3, 0.05, 0.0], "center_px": [320.0, 240.0], "radius_norm_px": 400.0}},
        chromatic={"r_scale": 1.0003, "b_scale": 0.9996, "center_px": [321.3, 238.9]},
        sensor_response={"R": {"system_gain_dn_per_e": 0.25, "read_noise_e": 2.1}},
        color={"wb_gains": [2.0, 1.0, 1.6], "ccm": np.eye(3)},
        sfr={"mtf50_cy_px": 0.31},
        focus={"ring_deg_at_infinity": 3.5},
    )
    kwargs.update(overrides)
    return make_profile(**kwargs)


def test_profile_has_schema_sections_and_a_digest_over_canonical_json():
    doc = sample_profile()
    assert doc["schema"] == SCHEMA and doc["version"] == 1
    assert doc["geometry"]["camera_matrix"] == CAMERA_MATRIX
    assert np.asarray(doc["shading"]["map"]).shape == (5, 7, 4)
    body = {k: v for k, v in doc.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert verify_digest(doc)


def test_digest_is_stable_across_text_round_trips_and_input_order():
    doc = sample_profile()
    text = dumps_profile(doc)
    assert dumps_profile(json.loads(text)) == text  # stable
    again = loads_profile(text)
    assert again == doc and verify_digest(again)
    reordered = sample_profile(color={"ccm": np.eye(3), "wb_gains": [2.0, 1.0, 1.6]})
    assert reordered["digest"] == doc["digest"]
    # pretty: a map cell and a coefficient list on one line each
    assert '"dist_coeffs": [-0.21, 0.09, 0.0, 0.0, 0.0]' in text
    assert text.endswith("}\n")


@pytest.mark.parametrize("edit", [
    lambda d: d["geometry"]["dist_coeffs"].__setitem__(0, -0.2100001),
    lambda d: d["shading"]["map"][0][0].__setitem__(0, 1.5),
    lambda d: d["provenance"].__setitem__("dut_serial", "SN0002"),
    lambda d: d.__setitem__("lens", "summicron-m-50-f2"),
])
def test_any_edit_is_detected(edit):
    doc = copy.deepcopy(sample_profile())
    edit(doc)
    assert not verify_digest(doc)
    assert profile_digest(doc) != doc["digest"]


def test_bare_m_sensor_has_no_geometry():
    doc = sample_profile(lens=None, geometry=None, chromatic=None, sfr=None, focus=None)
    assert "geometry" not in doc and doc["lens"] is None
    assert verify_digest(validate_profile(doc))


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda d: d["geometry"].pop("rms_px"), "geometry.rms_px"),
    (lambda d: d.pop("provenance"), "provenance"),
    (lambda d: d["provenance"].pop("firmware"), "provenance.firmware"),
    (lambda d: d["shading"].pop("map"), "shading.map"),
    (lambda d: d["color"].pop("ccm"), "color.ccm"),
    (lambda d: d.pop("image_size"), "image_size"),
    (lambda d: d.__setitem__("version", 2), "version"),
    (lambda d: d.__setitem__("schema", "other/thing"), "schema"),
    (lambda d: d.__setitem__("sensor", "tele"), "sensor"),
    (lambda d: d.__setitem__("extra_key", 1), "extra_key"),
    (lambda d: d["geometry"].__setitem__("dist_coeffs", [0.1, 0.2]), "geometry.dist_coeffs"),
    (lambda d: d["shading"]["map"][1][1].__setitem__(2, 0.98), "shading.map"),
    (lambda d: d["provenance"].__setitem__("time", "2025-01-31T12:00:00+02:00"), "provenance.time"),
    (lambda d: d.__setitem__("digest", "md5:abc"), "digest"),
])
def test_schema_errors_name_the_key(mutate, key):
    doc = copy.deepcopy(sample_profile())
    mutate(doc)
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")) as info:
        validate_profile(doc)
    assert "\n" not in str(info.value)


def test_non_finite_numbers_are_refused():
    with pytest.raises(ProfileError, match="sfr"):
        sample_profile(sfr={"mtf50_cy_px": float("nan")})
    with pytest.raises(ProfileError, match="not JSON"):
        loads_profile(dumps_profile(sample_profile()).replace("0.042", "NaN"))
    with pytest.raises(ProfileError, match="not JSON"):
        loads_profile("{not json")


@pytest.mark.parametrize("bad", ["../x", "a b", "Summicron-m-50", "", "x/y", ".hidden", "a..b", "lens-", "é", "a" * 65])
def test_filename_accepts_only_lower_case_slugs(bad):
    with pytest.raises(ProfileError):
        profile_filename("m", bad, None)
    with pytest.raises(ProfileError):
        profile_filename("main", None, bad)


def test_filename_from_checked_parts():
    assert profile_filename("m", "summilux-m-35-f1.4", None) == "m-summilux-m-35-f1.4.profile.json"
    assert profile_filename("m", None, None) == "m.profile.json"
    assert profile_stem("m", "summicron-m-50-f2", "m-adapter-2") == "m-summicron-m-50-f2-m-adapter-2"
    with pytest.raises(ProfileError, match="sensor"):
        profile_filename("../main", None, None)
    with pytest.raises(ProfileError, match="lens"):
        sample_profile(lens="../../etc/passwd")


def test_provenance_defaults_to_utc_now_and_installed_version():
    p = make_provenance(station="s", dut_serial="d", firmware="f", tool="t")
    assert p["time"].endswith("Z") and len(p["time"]) == 20
    assert p["code_version"]
