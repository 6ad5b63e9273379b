"""A SCPI instrument over VISA (``pyvisa`` with the ``pyvisa-py`` backend), shared by light and meter.

The wire follows IEEE 488.2 / SCPI-99: ``*IDN?`` identity recorded at open, every setting
followed by draining ``SYST:ERR?`` until ``0,"No error"``. Instruments differ in spelling,
so a driver is mostly a table of commands: a ``Dialect``, chosen by the config's ``dialect``.
A dialect also sets the line terminators, the serial line of an ``ASRL`` resource (baud,
data bits, parity, stop bits, flow control), and whether the box has an error queue and a
settle query at all (a box without one is checked by read-back, and waits a settle time).
Resources are opened by name; ``list_resources()`` is never called (pyvisa-py would probe
the network). Nothing reaches a SCPI line unchecked: lines are printable ASCII, numbers
finite and in the dialect's range.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
import socket
from dataclasses import dataclass

import pyvisa
from pyvisa import constants
from pyvisa.errors import Error as VisaError
from pyvisa.errors import VisaIOError

from station.config import InstrumentConfig
from station.devices import wire_time
from station.errors import ConfigError, DeviceError, InputError

#: Bound on transient-error retries (a query that timed out is sent again this many times).
RETRIES = 2
#: Bound on ``SYST:ERR?`` reads while draining the queue after a setting.
MAX_ERROR_READS = 32
_ERROR_RE = re.compile(r'^\s*([+-]?\d+)\s*,\s*"(.*)"\s*$')
_LINE_RE = re.compile(r"^[\x20-\x7e]+$")


@dataclass(frozen=True)
class SerialLine:
    """An RS-232 line as a light box's manual gives it (applied to ``ASRL...::INSTR`` resources only)."""

    baud_rate: int = 9600
    data_bits: int = 8
    parity: str = "none"  # none, odd, even, mark, space
    stop_bits: float = 1  # 1, 1.5, 2
    flow_control: str = "none"  # none, xon_xoff, rts_cts, dtr_dsr

    def visa_kwargs(self) -> dict[str, object]:
        """The pyvisa resource attributes for this line (``open_resource`` keyword arguments)."""
        stop = {1: constants.StopBits.one, 1.5: constants.StopBits.one_and_a_half, 2: constants.StopBits.two}
        return {"baud_rate": self.baud_rate, "data_bits": self.data_bits,
                "parity": getattr(constants.Parity, self.parity), "stop_bits": stop[self.stop_bits],
                "flow_control": getattr(constants.ControlFlow, self.flow_control)}


@dataclass(frozen=True)
class Dialect:
    """How one family of instruments spells the commands of DESIGN 3.1, and its ranges.

    ``{value}`` in a setting is replaced by a validated, formatted number. ``None`` for
    ``clear_status``, ``settled_query`` or ``error_query``: the box has no such command (no
    error queue: a setting is checked by its read-back only; no settle query: the driver
    waits ``settle_s`` after a change, or the config's ``settle_s``).
    """

    name: str
    idn: str = "*IDN?"
    clear_status: str | None = "*CLS"
    level_set: str = "SOUR:LEV {value}"
    level_query: str = "SOUR:LEV?"
    cct_set: str = "SOUR:CCT {value}"
    cct_query: str = "SOUR:CCT?"
    output_on: str = "OUTP ON"
    output_off: str = "OUTP OFF"
    output_query: str = "OUTP?"
    settled_query: str | None = "SOUR:SETT?"
    error_query: str | None = "SYST:ERR?"
    meas_ill: str = "MEAS:ILL?"
    meas_cct: str = "MEAS:CCT?"
    level_range_pct: tuple[float, float] = (0.0, 100.0)
    cct_range_k: tuple[float, float] = (2700.0, 6500.0)
    #: Read-back agreement accepted after a setting (the instrument's resolution).
    level_tolerance_pct: float = 0.01
    cct_tolerance_k: float = 1.0
    read_termination: str = "\n"
    write_termination: str = "\n"
    #: The RS-232 line, for a box on a serial port (ignored on a LAN resource).
    serial: SerialLine | None = None
    #: Seconds to wait after a change when the box has no settle query.
    settle_s: float = 0.0


#: The DESIGN 3.1 table, short forms.
GENERIC = Dialect(name="generic")
#: The same instrument model spelled in SCPI long forms (a light box whose firmware wants them).
LONG_FORM = Dialect(
    name="long-form", idn="*IDN?", clear_status="*CLS",
    level_set="SOURce:LEVel {value}", level_query="SOURce:LEVel?",
    cct_set="SOURce:CCT {value}", cct_query="SOURce:CCT?",
    output_on="OUTPut ON", output_off="OUTPut OFF", output_query="OUTPut?",
    settled_query="SOURce:SETTled?", error_query="SYSTem:ERRor?",
    meas_ill="MEASure:ILLuminance?", meas_cct="MEASure:CCT?",
)
#: An RS-232 LED light box of the common kind: CR LF on both ways, 9600 8N1 without flow control,
#: terse commands, no error queue (a refused setting is seen by its read-back), no settle query
#: (its manual gives 0.5 s to settle within 0.1 %), whole-step CCT and 0.1 % level resolution.
SERIAL_CRLF = Dialect(
    name="serial-crlf", idn="*IDN?", clear_status=None,
    level_set="LEV {value}", level_query="LEV?", cct_set="CCT {value}", cct_query="CCT?",
    output_on="OUT 1", output_off="OUT 0", output_query="OUT?",
    settled_query=None, error_query=None, meas_ill="ILL?", meas_cct="CCT?",
    level_tolerance_pct=0.05, cct_tolerance_k=1.0,
    read_termination="\r\n", write_termination="\r\n",
    serial=SerialLine(baud_rate=9600, data_bits=8, parity="none", stop_bits=1, flow_control="none"),
    settle_s=0.5,
)
DIALECTS: dict[str, Dialect] = {d.name: d for d in (GENERIC, LONG_FORM, SERIAL_CRLF)}


def dialect_for(name: str, device: str) -> Dialect:
    """The dialect a config names; ``ConfigError`` naming it and the allowed ones otherwise."""
    try:
        return DIALECTS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"{device}.dialect: unknown dialect {name!r}; allowed: "
                          f"{', '.join(sorted(DIALECTS))}") from None


def checked_number(device: str, what: str, value: object, lo: float, hi: float, unit: str) -> float:
    """``value`` as a finite float in ``lo..hi``; ``InputError`` naming device, quantity and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{device}: {what} must be a number in {lo:g}..{hi:g} {unit}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InputError(f"{device}: {what} {number!r} out of range {lo:g}..{hi:g} {unit}")
    return number


def format_number(value: float) -> str:
    """A validated number as a SCPI <NRf>: ``40``, ``12.5``, ``5600`` (no exponent for our ranges)."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _short(answer: str, limit: int = 60) -> str:
    return repr(answer if len(answer) <= limit else answer[:limit] + "...")


class VisaInstrument:
    """One SCPI instrument on a VISA resource: checked lines, bounded retries, error-queue drain.

    ``name`` is the device as the config names it (``light``, ``meter``); every error is a
    one-line ``DeviceError`` naming it and, for the wire, the resource.
    """

    def __init__(self, config: InstrumentConfig, name: str, *, visa_library: str = "@py") -> None:
        self.name = name
        self.config = config
        self.resource_name = config.resource
        self.dialect = dialect_for(config.dialect, name)
        if not (isinstance(config.timeout_s, (int, float)) and 0 < config.timeout_s < math.inf):
            raise ConfigError(f"{name}.timeout_s: expected a number > 0, got {config.timeout_s!r}")
        if not isinstance(config.resource, str) or not _LINE_RE.match(config.resource):
            raise ConfigError(f"{name}.resource: expected a VISA resource string, got {config.resource!r}")
        self.timeout_s = float(config.timeout_s)
        self._rm: pyvisa.ResourceManager | None = None
        self._res = None
        self.identity = ""
        line = self.dialect.serial.visa_kwargs() if self.dialect.serial and self.is_serial else {}
        try:
            self._rm = pyvisa.ResourceManager(visa_library)
            self._res = self._rm.open_resource(
                config.resource, open_timeout=int(self.timeout_s * 1000),
                read_termination=self.dialect.read_termination,
                write_termination=self.dialect.write_termination,
                timeout=int(self.timeout_s * 1000), encoding="latin-1", **line)
        except Exception as exc:  # pyvisa-py raises bare Exception("could not connect: ...")
            self.close()
            raise DeviceError(name, f"cannot open {config.resource}: {_reason(exc)}") from None
        self._set_no_delay()
        try:
            self.identity = self._identify()
            if self.dialect.clear_status:
                self.write(self.dialect.clear_status)
        except BaseException:
            self.close()
            raise

    @property
    def is_serial(self) -> bool:
        """The resource is a serial port (``ASRL...``): the dialect's serial line applies."""
        return self.resource_name.upper().startswith("ASRL")

    # --- context manager -------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set_no_delay(self) -> None:
        """TCP_NODELAY on a LAN socket: else Nagle holds ``SYST:ERR?`` behind a setting ~40 ms.

        The VISA attribute is the official way; pyvisa-py 0.8 wires its setter wrongly
        (UnknownAttribute), so fall back to its session's socket.
        """
        if "::SOCKET" not in self.resource_name.upper():
            return
        try:
            self._res.set_visa_attribute(constants.ResourceAttribute.tcpip_nodelay, constants.VI_TRUE)
            return
        except Exception:  # fall back below
            pass
        with contextlib.suppress(Exception):
            interface = self._rm.visalib.sessions[self._res.session].interface
            interface.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- the wire ---------------------------------------------------------------------
    def _check_line(self, command: str) -> str:
        if not isinstance(command, str) or not _LINE_RE.match(command):
            raise InputError(f"{self.name}: refusing to send {command!r}: a SCPI line is printable ASCII")
        return command

    def _wire_error(self, command: str, exc: BaseException) -> DeviceError:
        if isinstance(exc, ConnectionRefusedError):
            what = f"unreachable at {self.resource_name} (connection refused)"
        elif isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            what = f"connection to {self.resource_name} lost ({_reason(exc)})"
        else:
            what = f"{self.resource_name}: {_reason(exc)}"
        return DeviceError(self.name, f"{command} -> {what}")

    def _require_open(self, command: str):
        if self._res is None:
            raise DeviceError(self.name, f"{command} -> {self.resource_name} is closed")
        return self._res

    def write(self, command: str) -> None:
        """Send one line (no answer expected, no error check: see ``setting``)."""
        res = self._require_open(self._check_line(command))
        try:
            res.write(command)
        except (OSError, VisaError) as exc:
            raise self._wire_error(command, exc) from None

    def query(self, command: str, retries: int = RETRIES) -> str:
        """Send a query and return its answer line; a timeout is retried ``retries`` times."""
        res = self._require_open(self._check_line(command))
        for _attempt in range(retries + 1):
            try:
                res.write(command)
                with wire_time.waiting(self.name):
                    answer = res.read()
                return answer.strip()
            except VisaIOError as exc:
                if exc.error_code != constants.StatusCode.error_timeout:
                    raise self._wire_error(command, exc) from None
                self._discard_input()
            except (OSError, VisaError) as exc:
                raise self._wire_error(command, exc) from None
        tries = f" ({retries + 1} tries)" if retries else ""
        message = f"{command} -> no answer within {self.timeout_s:g} s from {self.resource_name}{tries}"
        if self.dialect.error_query and command != self.dialect.error_query:
            said = self._last_words()
            if said:
                message += f"; instrument says {said}"
        raise DeviceError(self.name, message)

    def _discard_input(self) -> None:
        """Drop a late answer so it cannot be taken for the next query's."""
        if self._res is not None:
            with contextlib.suppress(Exception):
                self._res.clear()

    def _last_words(self) -> str:
        """Best effort after a timeout: the instrument's own error, if it still answers."""
        if not self.dialect.error_query:
            return ""
        try:
            answer = self.query(self.dialect.error_query, retries=0)
        except DeviceError:
            return ""
        match = _ERROR_RE.match(answer)
        return answer if match and int(match.group(1)) != 0 else ""

    # --- answers ------------------------------------------------------------------------
    def garbage(self, command: str, answer: str, expected: str) -> DeviceError:
        """The one-line error for an answer that does not parse: device, query, answer, expectation."""
        return DeviceError(self.name,
                           f"{command} -> unreadable answer {_short(answer)} (expected {expected})")

    def _identify(self) -> str:
        answer = self.query(self.dialect.idn)
        if not _LINE_RE.match(answer) or answer.count(",") != 3:  # IEEE 488.2: four fields
            raise self.garbage(self.dialect.idn, answer, "maker,model,serial,version")
        return answer

    def query_float(self, command: str) -> float:
        answer = self.query(command)
        try:
            value = float(answer)
        except ValueError:
            raise self.garbage(command, answer, "a number") from None
        if not math.isfinite(value) or abs(value) >= 9.9e37:  # SCPI NaN / overflow is 9.91E+37
            raise self.garbage(command, answer, "a finite number")
        return value

    def query_bool(self, command: str) -> bool:
        answer = self.query(command)
        word = answer.upper()
        if word in ("1", "ON", "+1"):
            return True
        if word in ("0", "OFF", "+0"):
            return False
        raise self.garbage(command, answer, "1, 0, ON or OFF")

    def errors(self, context: str) -> list[str]:
        """Drain the error queue: every entry before ``0,"No error"``, in the instrument's words.

        A box without an error queue reports nothing here; its settings are checked by read-back.
        """
        found: list[str] = []
        query = self.dialect.error_query
        if not query:
            return found
        for _ in range(MAX_ERROR_READS):
            answer = self.query(query)
            match = _ERROR_RE.match(answer)
            if not match:
                raise self.garbage(f"{query} (after {context})", answer, '<code>,"<message>"')
            if int(match.group(1)) == 0:
                return found
            found.append(answer)
        raise DeviceError(self.name, f"{context} -> error queue still not empty after {MAX_ERROR_READS} "
                                     f"reads of {query}: {'; '.join(found[:3])} ...")

    def setting(self, command: str) -> None:
        """Send a setting, then drain the error queue; any error is a ``DeviceError`` in its words."""
        self.write(command)
        found = self.errors(command)
        if found:
            raise DeviceError(self.name, f"{command} -> {'; '.join(found)}")

    def close(self) -> None:
        """Close the resource (idempotent, never raises).

        The ResourceManager is not closed: pyvisa shares one per backend in the process, and
        closing it would close every other driver's resource too.
        """
        res, self._res, self._rm = self._res, None, None
        if res is not None:
            with contextlib.suppress(Exception):
                res.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, VisaIOError):
        return f"{exc.abbreviation}: {exc.description}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
