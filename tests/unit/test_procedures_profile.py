"""Lens profiles from a case's results and the calibration write-back (``station.procedures.profile``), and the
the scene (``station.scene.Scene``) on a bench: no twin, fake phones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from calibration.profile import loads_profile, verify_digest
from station.errors import ProductError
from station.operator.prompt import PromptOperator
from station.operator.twin import TwinOperator
from station.procedures.profile import CaseResults, assemble_profile, phone_entries, write_calibration, write_profile
from station.scene import Scene, SetupError


class FakePhone:
    """A phone's calibration storage: keeps what it is given (``lossy``: drops one key on the way)."""

    def __init__(self, stored: dict[str, Any] | None = None, lossy: str | None = None) -> None:
        self.stored = stored or {}
        self.lossy = lossy
        self.writes = 0

    def calibration_read(self) -> dict[str, Any]:
        return copy.deepcopy(self.stored)

    def calibration_write(self, blob: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        self.stored = json.loads(json.dumps(blob))
        if self.lossy:
            self.stored["sensors"]["main"].pop(self.lossy, None)
        return {"bytes": len(json.dumps(blob, separators=(",", ":")))}

    def info(self) -> dict[str, Any]:
        return {"serial": "SN-1", "firmware": "golden", "m_lens": None}


def _results() -> CaseResults:
    gains = np.ones((3, 4, 4))
    gains[0, 0] = 1.5
    return CaseResults(sensor="main", image_size=(2048, 1536), pixel_pitch_um=6.4,
                       sections={"geometry": {"camera_matrix": [[1370.0, 0, 1023.5], [0, 1370.0, 767.5], [0, 0, 1]],
                                              "dist_coeffs": [-0.045, 0.03, 0.0, 0.0, -0.008], "rms_px": 0.05,
                                              "views_used": 5},
                                 "shading": {"grid": [3, 4], "map": gains.tolist(), "cfa": "RGGB"}},
                       phone={"lens_shading_map": gains.tolist(), "wb_gains": [1.76, 1.0, 1.66]})


def test_a_profile_is_valid_has_its_digest_and_is_written_under_its_name(tmp_path: Path) -> None:
    station = SimpleNamespace(config=SimpleNamespace(name="line-3"), dut=FakePhone())
    from station.procedures.profile import provenance

    doc = assemble_profile(_results(), provenance(station))
    path = write_profile(doc, tmp_path)
    assert path == tmp_path / "main.profile.json"
    again = loads_profile(path.read_text())
    assert verify_digest(again) and again["provenance"]["station"] == "line-3"
    assert again["provenance"]["dut_serial"] == "SN-1" and again["provenance"]["firmware"] == "golden"
    assert again["geometry"]["views_used"] == 5 and np.asarray(again["shading"]["map"]).shape == (3, 4, 4)
    m_lens = CaseResults(sensor="m", lens="summicron-m-50-f2", image_size=(2048, 1536), pixel_pitch_um=6.4)
    assert write_profile(assemble_profile(m_lens, provenance(station)), tmp_path).name == \
        "m-summicron-m-50-f2.profile.json"


def test_a_section_the_profile_schema_does_not_know_is_an_error_not_dropped() -> None:
    station = SimpleNamespace(config=SimpleNamespace(name="line-3"), dut=FakePhone())
    from station.procedures.profile import provenance

    results = _results()
    results.sections["hot_pixel_map"] = {"count": 3}
    with pytest.raises(ValueError, match=r"^main: profile section\(s\) hot_pixel_map unknown to the profile schema"):
        assemble_profile(results, provenance(station))


def test_the_write_back_merges_into_what_the_phone_keeps_and_reads_it_back() -> None:
    phone = FakePhone({"sensors": {"main": {"zebra": {"1": {"raw_threshold_dn": 946}}}}})
    station = SimpleNamespace(dut=phone)
    written = write_calibration(station, phone_entries(_results()))
    assert phone.writes == 1 and written.mismatched == []
    main = phone.stored["sensors"]["main"]
    assert main["zebra"]["1"]["raw_threshold_dn"] == 946  # kept
    assert main["wb_gains"] == [1.76, 1.0, 1.66] and np.asarray(main["lens_shading_map"]).shape == (3, 4, 4)
    assert written.keys > 3 and written.to_dict()["bytes"] > 0


def test_a_phone_that_keeps_something_else_is_a_product_defect_naming_the_key() -> None:
    station = SimpleNamespace(dut=FakePhone(lossy="wb_gains"))
    with pytest.raises(ProductError, match=r"sensors\.main\.wb_gains"):
        write_calibration(station, phone_entries(_results()))


class BenchPhone(FakePhone):
    def __init__(self) -> None:
        super().__init__()
        self.lens: str | None = None

    def info(self) -> dict[str, Any]:
        return {"m_lens": None if self.lens is None else {"code": 3, "id": self.lens}}


class _Light:
    def __init__(self) -> None:
        self.on = True
        self.seen: list[bool] = []

    def output(self) -> bool:
        return self.on

    def set_output(self, on: bool) -> None:
        self.on = on

    def wait_settled(self) -> None:
        pass


def test_on_a_bench_the_prompt_is_asked_only_for_changes_in_the_dark_and_the_lens_checked() -> None:
    phone, light = BenchPhone(), _Light()
    asked: list[str] = []

    def person(text: str) -> str:
        asked.append(text)
        light.seen.append(light.on)
        if "Summicron" in text:
            phone.lens = "summicron-m-50-f2"
        return ""

    scene = Scene(SimpleNamespace(twin=None, dut=phone, light=light), PromptOperator(ask=person), verify=False)
    scene.chart("sfr", sensor="main")
    scene.chart("sfr")  # already there: not asked again
    scene.verify = True
    scene.lens("summicron-m-50-f2")
    scene.set_aperture("summicron-m-50-f2", 8.0)
    assert asked[0].startswith("step 1, sensor main: put the sfr chart (")
    assert asked[1:] == ["step 2, sensor m: mount the M lens Summicron-M 50 mm f/2, aperture ring at f/2",
                         "step 3, sensor m: turn the aperture ring of Summicron-M 50 mm f/2 to f/8"]
    assert light.seen == [False, False, False] and light.on  # dark while hands are at the bench, then back on
    with pytest.raises(SetupError, match="Elmarit-M 28 mm f/2.8 ASPH is not on the adapter after 3 requests"):
        scene.lens("elmarit-m-28-f2.8")  # the operator never changes it: the adapter reads code 3
    assert scene.requests == 6


def test_on_the_twin_the_stand_in_does_the_operators_steps() -> None:
    calls: list[tuple[str, Any]] = []
    twin = SimpleNamespace(chart_set=lambda c: calls.append(("chart", c)),
                           lens_mount=lambda lens, ap: calls.append(("lens", (lens, ap))),
                           lens_aperture=lambda ap: calls.append(("aperture", ap)))
    scene = Scene(SimpleNamespace(twin=twin, dut=FakePhone(), light=_Light()), TwinOperator(twin), verify=False)
    scene.chart("flat")
    scene.lens("noctilux-m-50-f0.95", 0.95)
    scene.set_aperture("noctilux-m-50-f0.95", 8.0)
    assert calls == [("chart", "flat"), ("lens", ("noctilux-m-50-f0.95", 0.95)), ("aperture", 8.0)]
