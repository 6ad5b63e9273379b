"""The end of the factory plan: a lens profile for every case of the capture matrix (main, m bare, m + each
lens) written beside the run and listed in the record; then the whole calibration written into the phone
with ``calibration.write`` and read back, and the checksummed calibration blob (defects, AF, AWB, lens
shading, pose: ``station.calblob``) built from the same entries, written, read back and compared byte for
byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import allure
import pytest

from station.plans import calib_steps
from station.plans.helpers import take
from station.procedures import profile as profile_proc

if TYPE_CHECKING:
    from station.station import Station


def test_lens_profile(station: Station, case: str, results: dict, profile_dir: Any, run_record: Any, measure: Any,
                      request: pytest.FixtureRequest) -> None:
    sensor, _, lens = case.partition("/")
    entry = results.need(case, "its profile sections", "the shading, geometry, SFR, colour and sensor tests")
    with allure.step(f"assemble the {case} profile: {', '.join(sorted(entry.sections)) or 'no sections'}"):
        doc = profile_proc.assemble_profile(entry, profile_proc.provenance(
            station, dut_serial=request.config.option.dut_serial))
    with allure.step("write it atomically beside the run"):
        path = profile_proc.write_profile(doc, profile_dir)
    entry.phone["profile_digest"] = doc["digest"]
    if "geometry" in doc:
        geometry = doc["geometry"]
        entry.phone["camera_model"] = {"camera_matrix": geometry["camera_matrix"],
                                       "dist_coeffs": geometry["dist_coeffs"]}
    run_record.add_profile(path, request.node.nodeid, case=case, sensor=sensor, lens=lens or None,
                           digest=doc["digest"], sections=sorted(entry.sections))
    allure.attach.file(str(path), name=path.name, attachment_type=allure.attachment_type.JSON)
    take(measure, entry.measurements, case)


def test_calibration_writeback(station: Station, results: dict, measure: Any, run_record: Any) -> None:
    entries = [item for entry in results.values() for item in profile_proc.phone_entries(entry)]
    with allure.step(f"write {len(entries)} calibration entries of {len(results)} cases into the phone, "
                     "read it back, compare"):
        written = profile_proc.write_calibration(station, entries)
    run_record.update(calibration=written.to_dict())
    allure.attach(str(written.to_dict()), name="calibration write-back", attachment_type=allure.attachment_type.TEXT)
    take(measure, written.measurements, check=False)
    blob = calib_steps.calblob_write(station, measure, results)
    if blob is not None:
        run_record.update(calblob=blob.to_dict())
        allure.attach(str(blob.to_dict()), name="calibration blob", attachment_type=allure.attachment_type.TEXT)
    measure.check()
