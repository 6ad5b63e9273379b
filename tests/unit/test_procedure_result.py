"""One results interface (issue 11, item 2): every procedure result meets ``ProcedureResult``; the plans keep any
result the same way (``station.plans.helpers.keep``); an unknown profile section is an error naming it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np
import pytest

import station.procedures as procedures
from calibration.profile import SECTIONS
from station.measurements import declarations_of
from station.procedures.result import ProcedureResult, ResultParts, check_section_name, store_result

#: Dataclasses of ``station.procedures`` that are parts or tools of a procedure, not its result.
NOT_RESULTS = {"Shot", "FocusAxis", "FocusSearch", "SensorGeometry", "EdgeMtf",
               "CaseResults",  # a case's collection of results' sections and phone entries
               "RailSpread",  # the base of the self-check's two rail results
               "RightAxis"}  # a sweep plot's second axis (sweep_plots)
#: What the Protocol asks of a result besides ``PROFILE_SECTION``.
METHODS = ("measurements", "attachments", "figures", "profile_section", "phone_entries")
#: The plot methods the interface replaced (``figures``): none may come back.
OLD_PLOT_METHODS = ("png", "ptc_png", "distortion_png", "curves_png", "field_png", "sweep_png", "isp_png")


def _procedure_dataclasses() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in pkgutil.iter_modules(procedures.__path__):
        mod = importlib.import_module(f"{procedures.__name__}.{module.name}")
        for name, obj in vars(mod).items():
            public = not name.startswith("_")  # a module's private helper classes are not results
            if public and inspect.isclass(obj) and obj.__module__ == mod.__name__ and dataclasses.is_dataclass(obj):
                found[f"{module.name}.{name}"] = obj
    return found


def _result_classes() -> dict[str, type]:
    return {key: cls for key, cls in _procedure_dataclasses().items() if cls.__name__ not in NOT_RESULTS}


def test_every_procedure_result_class_meets_the_protocol() -> None:
    results = _result_classes()
    assert len(results) >= 20, sorted(results)  # the discovery found the procedures' results
    for key, cls in results.items():
        for name in METHODS:
            assert callable(getattr(cls, name, None)), f"{key} has no {name}()"
        assert "PROFILE_SECTION" in dir(cls), key
        assert cls.PROFILE_SECTION is None or cls.PROFILE_SECTION in SECTIONS, f"{key}: {cls.PROFILE_SECTION}"
        assert hasattr(cls.measurements, "measurements"), f"{key}.measurements is not a @measures method"
        assert not any(hasattr(cls, old) for old in OLD_PLOT_METHODS), f"{key} keeps an old plot method"
        overrides_section = cls.profile_section is not ResultParts.profile_section
        assert overrides_section == (cls.PROFILE_SECTION is not None), \
            f"{key}: gives a profile section {overrides_section}, names one {cls.PROFILE_SECTION}"


def test_every_profile_section_but_the_camera_model_is_filled_by_some_result() -> None:
    """The profile's sections come from results (``camera``: the plan writes the camera model from geometry)."""
    named = {cls.PROFILE_SECTION for cls in _result_classes().values()} - {None}
    assert named == set(SECTIONS) - {"camera"}


def test_instances_pass_isinstance_and_others_do_not() -> None:
    from station.procedures.selfcheck import ClosedLoop, Homing, LightLinearity
    from station.procedures.sensor import TemporalNoise

    samples = [ClosedLoop(1000.0, 990.0, 42.0), Homing([0.0, 0.01]),
               LightLinearity(np.array([10.0, 50.0, 90.0]), np.array([100.0, 500.0, 901.0]), 10.0, 0.0),
               TemporalNoise("main", 1000, {"R": 2.0}, {"R": 4.0}, {"R": 400.0})]
    for sample in samples:
        assert isinstance(sample, ProcedureResult), type(sample).__name__

    class NoFigures:
        PROFILE_SECTION = None

        def measurements(self) -> dict[str, float]:
            return {}

        def attachments(self) -> dict[str, bytes]:
            return {}

        def profile_section(self) -> None:
            return None

        def phone_entries(self) -> dict[str, Any]:
            return {}

    assert not isinstance(NoFigures(), ProcedureResult)


def test_a_figure_is_a_png_under_its_report_name() -> None:
    from station.procedures.selfcheck import LightLinearity

    result = LightLinearity(np.array([10.0, 50.0, 90.0]), np.array([100.0, 500.0, 901.0]), 10.0, 0.0)
    figures = result.figures()
    assert list(figures) == ["light linearity"]
    assert figures["light linearity"].startswith(b"\x89PNG\r\n\x1a\n")


class _Result(ResultParts):
    """A result of the interface's own shape (for ``store_result`` / ``keep``)."""

    def __init__(self, section: str | None, content: dict | None, phone: dict | None = None,
                 pictures: dict | None = None, figures: dict | None = None) -> None:
        self.PROFILE_SECTION = section
        self._content, self._phone = content, phone or {}
        self.pictures, self._figures = pictures or {}, figures or {}

    def measurements(self) -> dict[str, float]:
        return {}

    def figures(self) -> dict[str, bytes]:
        return dict(self._figures)

    def profile_section(self) -> dict | None:
        return self._content

    def phone_entries(self) -> dict[str, Any]:
        return dict(self._phone)


def test_an_unknown_profile_section_is_an_error_naming_it_never_dropped() -> None:
    with pytest.raises(ValueError, match="'lens_flare' is unknown to the profile schema"):
        check_section_name("lens_flare")
    sections: dict[str, Any] = {}
    with pytest.raises(ValueError, match="lens_flare"):
        store_result(sections, {}, _Result("lens_flare", {"ghosts": 3}))
    assert sections == {}
    with pytest.raises(ValueError, match="names none"):
        store_result(sections, {}, _Result(None, {"x": 1}))
    with pytest.raises(TypeError, match="not a procedure result"):
        store_result(sections, {}, object())  # type: ignore[arg-type]


def test_the_profile_assembly_still_refuses_an_unknown_section() -> None:
    from station.procedures.profile import CaseResults, assemble_profile

    case = CaseResults(sensor="main", image_size=(2048, 1536), pixel_pitch_um=1.6, sections={"lens_flare": {}})
    with pytest.raises(ValueError, match="lens_flare"):
        assemble_profile(case, {})


def test_store_result_merges_an_sfr_section_by_aperture_and_keeps_phone_entries() -> None:
    sections: dict[str, Any] = {}
    phone: dict[str, Any] = {}
    store_result(sections, phone, _Result("sfr", {"apertures": {"f2": {"mtf50": 0.3}}}, {"wb_gains": [2.0, 1, 1.5]}))
    store_result(sections, phone, _Result("sfr", {"apertures": {"f8": {"mtf50": 0.35}}}))
    assert sections == {"sfr": {"apertures": {"f2": {"mtf50": 0.3}, "f8": {"mtf50": 0.35}}}}
    assert phone == {"wb_gains": [2.0, 1, 1.5]}


def test_keep_attaches_pictures_then_figures_stores_and_takes_the_measurements(monkeypatch) -> None:
    import station.plans.helpers as helpers
    from station.procedures.profile import CaseResults
    from station.procedures.sensor import TemporalNoise

    attached: list[str] = []
    monkeypatch.setattr(helpers, "attach_png", lambda name, png: attached.append(name))
    from tests.unit.measure_log import MeasureLog as Measure

    measure = Measure()
    taken = measure.taken
    entry = CaseResults(sensor="main")
    result = _Result("color", {"ccm": [[1.0]]}, {"ccm": [[1.0]]}, pictures={"capture": b"a", "empty": b""},
                     figures={"plot": b"b"})
    helpers.keep(measure, result, "main", entry)
    assert attached == ["capture", "plot"]  # nothing empty attached
    assert entry.sections == {"color": {"ccm": [[1.0]]}} and entry.phone == {"ccm": [[1.0]]}
    assert taken == [("checked", 0.0, "")]

    taken.clear()
    noise = TemporalNoise("main", 1000, {"R": 2.0, "B": 3.0}, {"R": 4.0, "B": 5.0}, {"R": 400.0, "B": 300.0})
    helpers.keep(measure, noise, "main", check=False)
    assert [t[0] for t in taken] == ["noise_dark_dn", "noise_lit_dn", "noise_snr"]
    assert set(declarations_of(noise.measurements)) == {t[0] for t in taken}
    with pytest.raises(TypeError, match="not a procedure result"):
        helpers.keep(Measure(), object(), "main")  # type: ignore[arg-type]
