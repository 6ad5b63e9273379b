"""The record of one DUT run: one JSON document, rewritten atomically after every test (DESIGN 8).

OpenHTF-like: the DUT, the station and its instruments' identities, firmware, lenses, start
and end (ISO 8601 UTC), the outcome, every measurement with value, limits, unit and verdict
(and baseline and delta in a regression run), profile paths and attachments. Because it is
rewritten after every test, a station fault or a power cut part way keeps what ran before.

Outcomes and the exit codes of ``station run`` (DESIGN 8): ``pass`` 0, ``fail`` 1 (the
product failed), ``aborted`` 2 (usage or config error) or 130 (interrupted), ``station-fault``
3 (a device of the bench failed: takes precedence over everything else).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from station.atomic import atomic_write_text
from station.errors import ConfigError, DeviceError, InputError, StationError
from station.measurements import Measurement
from station.validation import FiniteFloat, read_text_limited, validate

FORMAT = "m-station-record"
FORMAT_VERSION = 1
STATION_FAULT, PRODUCT_DEFECT, CONFIG_ERROR = "station-fault", "product-defect", "config-error"
#: The scene or the operator was wrong (wrong chart, lens not recognised, calibration impossible on the scene):
#: exit 3 like a station fault, but no device failed; the operator can fix it and retry.
SETUP_FAULT = "setup-fault"
PASS, FAIL, ABORTED = "pass", "fail", "aborted"
EXIT_CODES = {PASS: 0, FAIL: 1, ABORTED: 2, STATION_FAULT: 3, SETUP_FAULT: 3}
EXIT_INTERRUPTED = 130
_SERIAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}", re.ASCII)  # fullmatch: no trailing newline
_RUN_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4,}", re.ASCII)


# --- time and names ----------------------------------------------------------------------

def _run_id(value: str) -> str:
    if not _RUN_ID_RE.fullmatch(value):
        raise ValueError("allowed: a run id such as 20250125T084012Z-3fa9")
    return value


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds: ``2025-01-25T08:40:12.345Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(moment: datetime | None = None) -> str:
    """``20250125T084012Z-3fa9``: the UTC start, and a random suffix so two runs never share a name."""
    moment = moment or utc_now()
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID_RE.fullmatch(text))


def check_serial(serial: str, where: str = "--dut-serial") -> str:
    """A DUT serial from outside, checked before it reaches a file name (DESIGN 10)."""
    if not isinstance(serial, str) or not _SERIAL_RE.fullmatch(serial):
        raise ConfigError(f"{where} {serial!r}: expected 1-64 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    return serial


def file_safe_serial(serial: Any) -> str:
    """A serial the phone reported, made safe for a file name (unsafe characters become ``_``)."""
    text = re.sub(r"[^A-Za-z0-9._\-]", "_", str(serial or ""))[:64].lstrip("._-")
    return text or "unknown"


# --- failure classification ---------------------------------------------------------------

def failure_kind(exc: BaseException | None) -> str:
    """Whose fault a test failure is: the station's, the product's, or a usage/config error.

    A ``DeviceError`` (or any ``StationError`` with exit code 3), anywhere in the chain of
    explicit causes, is a station fault: a bench device failed, the product is not to blame; an
    error whose ``fault_kind`` is ``"setup"`` (``station.procedures.ProcedureError``: the scene or the
    operator was wrong) is a setup fault.
    A ``ConfigError`` or a pytest usage error is a config error. Everything else (a failed
    measurement, an assertion, a product error, an unexpected exception) is a product defect.
    """
    seen: set[int] = set()
    probe = exc
    while probe is not None and id(probe) not in seen:
        seen.add(id(probe))
        if isinstance(probe, DeviceError):
            return STATION_FAULT
        if getattr(probe, "fault_kind", None) == "setup":
            return SETUP_FAULT
        probe = probe.__cause__
    seen.clear()
    probe = exc
    while probe is not None and id(probe) not in seen:
        seen.add(id(probe))
        if isinstance(probe, DeviceError) or (isinstance(probe, StationError) and probe.exit_code == 3):
            return STATION_FAULT
        probe = probe.__cause__
    if isinstance(exc, ConfigError) or type(exc).__name__ == "UsageError":
        return CONFIG_ERROR
    return PRODUCT_DEFECT


def decide_outcome(tests: list[dict[str, Any]], *, collection_errors: int = 0, interrupted: bool = False,
                   ) -> tuple[str, int, str]:
    """``(outcome, exit_code, reason)`` of a run from its tests (station fault first, then config)."""
    failed = [t for t in tests if t["outcome"] in ("failed", "error")]
    by_kind = {kind: [t for t in failed if t.get("category") == kind]
               for kind in (STATION_FAULT, SETUP_FAULT, CONFIG_ERROR, PRODUCT_DEFECT)}
    if by_kind[STATION_FAULT]:
        first = by_kind[STATION_FAULT][0]
        return STATION_FAULT, 3, f"station fault in {first['name']}: {first.get('message') or ''}".strip()
    if by_kind[SETUP_FAULT]:
        first = by_kind[SETUP_FAULT][0]
        return SETUP_FAULT, 3, (f"setup fault in {first['name']}: {first.get('message') or ''} -- the scene or "
                                "the operator's step was wrong, no device failed: fix the setup and run again")
    if by_kind[CONFIG_ERROR]:
        first = by_kind[CONFIG_ERROR][0]
        return ABORTED, 2, f"config error in {first['name']}: {first.get('message') or ''}".strip()
    if collection_errors:
        return ABORTED, 2, f"{collection_errors} plan file(s) could not be collected"
    if interrupted:
        return ABORTED, EXIT_INTERRUPTED, "interrupted"
    if by_kind[PRODUCT_DEFECT]:
        names = ", ".join(t["name"] for t in by_kind[PRODUCT_DEFECT])
        return FAIL, 1, f"product failed: {names}"
    if not any(t["outcome"] == "passed" for t in tests):
        return ABORTED, 2, "no test ran"
    return PASS, 0, ""


# --- the record ------------------------------------------------------------------------------

@dataclass
class RunRecord:
    """The record of one run, kept in memory and written to ``records_dir`` (None: not written)."""

    run_id: str
    records_dir: Path | None = None
    plan: str = ""
    start: str = field(default_factory=lambda: iso_utc(utc_now()))
    data: dict[str, Any] = field(default_factory=dict)
    _written: Path | None = None

    def __post_init__(self) -> None:
        base = {
            "format": FORMAT, "version": FORMAT_VERSION, "run_id": self.run_id, "plan": self.plan,
            "station": {}, "dut": {"serial": None}, "firmware": None, "lenses": [], "limits": None,
            "baseline": None, "start": self.start, "end": None, "outcome": None, "exit_code": None,
            "reason": "", "tests": [], "measurements": [], "profiles": [], "attachments": [],
            "safe_state": None, "paths": {}, "versions": {},
            "incomplete": False, "tests_planned": 0, "tests_never_ran": 0, "operator_requests": 0,
            "hw_time_s": None,
        }
        base.update(self.data)
        self.data = base

    # --- filling in --------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        self.data.update(fields)

    def add_measurement(self, measurement: Measurement, test: str) -> dict[str, Any]:
        entry = measurement.to_dict() | {"test": test}
        self.data["measurements"].append(entry)
        return entry

    def add_profile(self, path: str | Path, test: str = "", **about: Any) -> None:
        self.data["profiles"].append({"path": str(path), "test": test, **about})

    def add_attachment(self, name: str, test: str, media_type: str, path: str | Path | None = None) -> None:
        self.data["attachments"].append({"name": name, "test": test, "media_type": media_type,
                                         "path": None if path is None else str(path)})

    def add_test(self, nodeid: str, name: str, outcome: str, *, category: str | None = None,
                 message: str = "", duration_s: float = 0.0, start: str | None = None) -> dict[str, Any]:
        entry = {"nodeid": nodeid, "name": name, "outcome": outcome, "category": category,
                 "message": message, "duration_s": round(duration_s, 4), "start": start,
                 "end": iso_utc(utc_now())}
        self.data["tests"].append(entry)
        return entry

    def finish(self, *, collection_errors: int = 0, interrupted: bool = False) -> None:
        outcome, code, reason = decide_outcome(self.data["tests"], collection_errors=collection_errors,
                                               interrupted=interrupted)
        self.data.update(end=iso_utc(utc_now()), outcome=outcome, exit_code=code, reason=reason)

    # --- writing ----------------------------------------------------------------------------
    @property
    def serial(self) -> str:
        return file_safe_serial(self.data["dut"].get("serial"))

    @property
    def path(self) -> Path | None:
        if self.records_dir is None:
            return None
        return self.records_dir / f"{self.serial}-{self.run_id}.json"

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, allow_nan=False) + "\n"

    def write(self) -> Path | None:
        """Write the record atomically (temp file + rename); None when it has no folder."""
        path = self.path
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.data["paths"]["record"] = str(path)
        atomic_write_text(path, self.to_json())
        if self._written is not None and self._written != path:  # the serial became known
            self._written.unlink(missing_ok=True)
        self._written = path
        return path


# --- reading ------------------------------------------------------------------------------------

class MeasurementEntry(BaseModel):
    """One measurement of a record (``Measurement.to_dict`` plus its test); more keys are kept."""

    model_config = ConfigDict(extra="allow")
    name: StrictStr = ""
    key: StrictStr
    value: FiniteFloat | None = None
    unit: StrictStr = ""


class RecordTest(BaseModel):
    """One test of a record (``RunRecord.add_test``); more keys are kept."""

    model_config = ConfigDict(extra="allow")
    nodeid: StrictStr
    outcome: StrictStr
    duration_s: Annotated[FiniteFloat, Field(ge=0.0)] = 0.0


class HardwareTime(BaseModel):
    """A record's ``hw_time_s``: seconds blocked on the devices' wires, the union and per device."""

    model_config = ConfigDict(extra="forbid")
    total: Annotated[FiniteFloat, Field(ge=0.0)]
    by_device: dict[StrictStr, Annotated[FiniteFloat, Field(ge=0.0)]] = Field(default_factory=dict)
    blocks: dict[StrictStr, Annotated[StrictInt, Field(ge=0)]] = Field(default_factory=dict)


class RecordDocument(BaseModel):
    """A run record as ``RunRecord`` writes it: every key it writes, with its type.

    Unknown top-level keys are kept rather than refused (``extra="allow"``): a record is the station's
    own output and newer stations add keys that an older reader must still load.
    """

    model_config = ConfigDict(extra="allow")
    format: Literal["m-station-record"]
    version: Annotated[StrictInt, Field(ge=1, le=FORMAT_VERSION)] = FORMAT_VERSION
    run_id: Annotated[StrictStr, AfterValidator(_run_id)]
    plan: StrictStr = ""
    station: dict[str, Any] = Field(default_factory=dict)
    dut: dict[str, Any] = Field(default_factory=dict)
    firmware: StrictStr | None = None
    lenses: list[Any] = Field(default_factory=list)
    limits: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    start: StrictStr | None = None
    end: StrictStr | None = None
    outcome: Literal[PASS, FAIL, ABORTED, STATION_FAULT, SETUP_FAULT] | None = None  # every key of EXIT_CODES
    exit_code: StrictInt | None = None
    reason: StrictStr = ""
    tests: list[RecordTest] = Field(default_factory=list)
    measurements: list[MeasurementEntry] = Field(default_factory=list)
    profiles: list[dict[str, Any]] = Field(default_factory=list)
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    paths: dict[str, StrictStr | None] = Field(default_factory=dict)
    versions: dict[str, Any] = Field(default_factory=dict)
    hw_time_s: HardwareTime | None = None


def hardware_time(spent: Any) -> dict[str, Any]:
    """A record's ``hw_time_s`` from a ``station.devices.wire_time.WireTime`` difference: the seconds the
    station was blocked on each device's wire during the run, and ``total``, their union over devices and
    threads (on a bench: moves, settling, exposure, transfer)."""
    return {"total": round(float(spent.busy_s), 4),
            "by_device": {str(d): round(float(s), 4) for d, s in sorted(spent.by_device_s.items())},
            "blocks": {str(d): int(n) for d, n in sorted(spent.blocks.items())}}


def load_record(path: str | Path) -> dict[str, Any]:
    """A record written by ``RunRecord`` (regular file, bounded size, validated); ``InputError`` naming the
    file and every problem otherwise."""
    path = Path(path)
    text = read_text_limited(path, "record", InputError, max_bytes=64 * 1024 * 1024)
    try:
        data = json.loads(text)
    except (RecursionError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON record ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not an m-station run record (format {FORMAT!r} expected)")
    validate(RecordDocument, data, str(path), InputError)
    return data


def find_run(reports_dir: str | Path, run: str | None = None) -> tuple[str, Path | None, Path]:
    """``(run_id, record_path or None, run_dir)`` of ``run``: a run id, a run folder or a record file.

    With no ``run``: the latest run under ``reports_dir/runs``. ``InputError`` when not found.
    """
    reports = Path(reports_dir)
    runs = reports / "runs"
    if run is None:
        ids = sorted(p.name for p in runs.glob("*") if p.is_dir() and is_run_id(p.name)) if runs.is_dir() else []
        if not ids:
            raise InputError(f"{runs}: no runs yet (station run makes one)")
        run = ids[-1]
    candidate = Path(run)
    if candidate.is_file():
        data = load_record(candidate)
        run_id = str(data.get("run_id", ""))
        run_dir = Path(data.get("paths", {}).get("run_dir") or runs / run_id)
        return run_id, candidate, run_dir
    if candidate.is_dir() and is_run_id(candidate.name):
        run_id, run_dir = candidate.name, candidate
        reports = candidate.parent.parent
    elif is_run_id(run):
        run_id, run_dir = run, runs / run
    else:
        raise InputError(f"run {run!r}: not a run id (20250125T084012Z-3fa9), a run folder or a record file")
    matches = sorted((reports / "records").glob(f"*-{run_id}.json"))
    if not matches and not run_dir.is_dir():
        raise InputError(f"run {run_id}: no record in {reports / 'records'} and no folder {run_dir}")
    return run_id, (matches[-1] if matches else None), run_dir
