"""Motorized mount driver: GRBL 1.1 / grblHAL over a serial port (DESIGN 3.2).

Wire: github.com/gnea/grbl/wiki "Grbl v1.1 Interface" (commands, status reports, error and
alarm codes). The port is a pyserial URL: ``/dev/ttyUSB0``, ``/dev/serial/by-id/...`` (a symlink),
``socket://host:port``, ``rfc2217://host:port``.

Open: soft reset (Ctrl-X), then the welcome banner (``Grbl 1.1h ['$' for help]``, grblHAL's
``GrblHAL 1.1f ['$' or '$HELP' for help]``), taken once the line has been quiet for
``boot_quiet_s`` after the last one: a board that resets when its port opens, or boots twice,
prints it again, and a banner in the middle of the hand-shake starts it over. Then ``$I`` and
one ``?``: the number of ``MPos`` fields is the controller's axis count, and a config that
binds an axis it lacks is a ``ConfigError`` before anything moves.

Moves are ``G53 G0 X.. Y..``: machine coordinates, whatever work offset (``G10 L2``, G54..)
the controller carries, and positions are read from ``MPos`` (or ``WPos`` + ``WCO``): one
coordinate system. Soft limits from the config are checked before anything is sent.

Alarms: the driver never unlocks with ``$X``. After an ``ALARM:N`` (hard or soft limit, reset
in motion, homing failure) or a stall, the next move or output change first homes again
(``$H``; first Ctrl-X, once a critical ALARM:1/2 says Reset to continue); without homing (error:5)
makes that a station fault in GRBL's words. ``stop()`` is a feed hold, a wait for Hold:0 and
Ctrl-X: after a completed hold GRBL comes back Idle with its position (grbl/motion_control.c,
``mc_reset``); if the hold did not complete it reports ALARM:3 and the mount is homed again.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from numbers import Real
from typing import Any

import serial

from station.config import GRBL_AXES, MountConfig
from station.devices import wire_time
from station.devices.protocols import MOUNT_AXES
from station.devices.registry import register
from station.errors import ConfigError, DeviceError, InputError

#: GRBL 1.1 error codes (the common ones; grblHAL shares 1..38).
ERRORS: dict[int, str] = {
    1: "Expected command letter", 2: "Bad number format", 3: "Invalid '$' statement",
    4: "Negative value", 5: "Homing not enabled", 6: "Step pulse below 3 us", 7: "EEPROM read fail",
    8: "'$' command only valid when Idle", 9: "G-code locked out during alarm or jog state",
    10: "Soft limits need homing enabled", 11: "Line too long", 12: "Step rate above 30 kHz",
    13: "Safety door open", 14: "Line too long for EEPROM", 15: "Travel exceeds machine travel",
    16: "Invalid jog command", 17: "Laser mode needs PWM output", 20: "Unsupported g-code command",
    21: "Modal group violation", 22: "Feed rate not set", 23: "Command needs an integer value",
    24: "Two commands need axis words", 25: "Repeated g-code word", 26: "No axis words",
    27: "Invalid line number", 28: "Missing value word", 29: "G59.x not supported",
    30: "G53 only with G0 and G1", 31: "Axis words not used by any command", 32: "Arc needs in-plane axis",
    33: "Motion target invalid", 34: "Arc radius invalid", 35: "Arc needs in-plane offset",
    36: "Unused value words", 37: "Tool length offset axis not assigned", 38: "Tool number too large",
}
#: GRBL 1.1 alarm codes.
ALARMS: dict[int, str] = {
    1: "Hard limit triggered, position lost: home again", 2: "Soft limit: target exceeds machine travel",
    3: "Reset while in motion, position may be lost: home again", 4: "Probe fail: not in initial state",
    5: "Probe fail: no contact", 6: "Homing fail: reset during homing", 7: "Homing fail: safety door",
    8: "Homing fail: could not pull off the limit switch", 9: "Homing fail: limit switch not found",
    10: "Homing fail: second switch of a dual axis not found (grblHAL: E-stop)",
}
_STATUS_RE = re.compile(r"^<([A-Za-z]+(?::\d+)?)((?:\|[^|<>]*)*)>$")
_BANNER_RE = re.compile(r"^(Grbl(?:HAL)?\s+\S+)")
_OTHER_RE = re.compile(r"^(\[.*\]|\$\d+=.*|>.*:(ok|error:\d+))$")  # push messages, settings, startup lines
#: GRBL 1.1h's boot on a blank EEPROM: error:7, the restored settings, >:error:7 (recorded_fresh_board.json).
_BOOT_RE = re.compile(r"^(error:7|\$\d+=\S*|>.*:(ok|error:\d+))$")
_MAX_LINE = 256
_CRITICAL_ALARMS = (1, 2)  # hard and soft limit: GRBL ignores everything but Ctrl-X
_CONTINUE = b"[MSG:Reset to continue]"  # after it (not before) a critical alarm takes Ctrl-X
_CONTINUE_WAIT_S = 1.5  # GRBL 1.1h prints it 500 ms after the ALARM line
_HANDSHAKES = 3  # banners in the middle of the open hand-shake tolerated before giving up


class _RebootedError(DeviceError):
    """The controller printed its banner in the middle of an exchange: it reset or rebooted."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


@register("mount", "grbl")
class GrblMount:
    """A ``station.devices.protocols.Mount`` on a GRBL 1.1 / grblHAL controller.

    ``poll_s``: interval of ``?`` polls while a move runs; ``stall_s``: a Run with an unchanged
    MPos for this long is a stall; ``hold_s``: how long ``stop()`` waits for Hold:0 before the
    reset; ``boot_quiet_s``: the quiet after a banner that ends the boot. ``identity`` is the
    banner and ``$I`` version; ``last_status`` the last status report; ``n_axes`` the
    controller's axis count; ``lost_position`` why the next move homes first ('' if it need not).
    """

    def __init__(self, config: MountConfig, name: str = "mount", *, poll_s: float = 0.05,
                 stall_s: float = 2.0, hold_s: float = 2.0, boot_quiet_s: float = 0.1) -> None:
        self.config = config
        self.name = name
        self.identity = ""
        self.last_status = ""
        self.n_axes = 0
        self.lost_position = ""
        self._poll_s, self._stall_s, self._hold_s = poll_s, stall_s, hold_s
        self._boot_quiet_s = boot_quiet_s
        self._buffer = b""
        self._wco: dict[str, float] = {}
        self._feed = 0.0  # the feed rate of the last status report (FS:f,s)
        self._critical = False  # an ALARM:1/2 waits for Ctrl-X
        self._continue_seen = False  # [MSG:Reset to continue] came after the last alarm
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        try:
            self._serial = serial.serial_for_url(config.port, baudrate=config.baudrate, timeout=poll_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(name, f"cannot open serial port {config.port}: {_one_line(exc)}") from None
        try:
            with self._lock:
                self._write(b"\x18")
                self._handshake(min(config.timeout_s, 10.0))
        except BaseException:
            self._serial.close()
            raise

    def _handshake(self, timeout_s: float) -> None:
        """Banner, ``$I`` and the axis count; a banner mid-way (a second boot) starts it over."""
        for attempt in range(_HANDSHAKES):
            try:
                banner = self._read_banner(timeout_s)
                identity = _BANNER_RE.match(banner).group(1)  # type: ignore[union-attr]
                for line in self._command("$I", timeout_s):
                    if line.startswith("[VER:"):
                        identity += "; " + line[1:-1]
                _, mpos = self._status("open")
            except _RebootedError:
                if attempt == _HANDSHAKES - 1:
                    raise
                continue
            self.identity, self.n_axes = identity, len(mpos)
            self._check_axis_count(mpos)
            return

    def _check_axis_count(self, mpos: dict[str, float]) -> None:
        for name, spec in self.config.axes.items():
            if spec.axis not in mpos:
                raise ConfigError(f"mount.axes.{name}: axis {spec.axis!r}, but the controller on "
                                  f"{self.config.port} has {len(mpos)} axes ({', '.join(mpos)}; status "
                                  f"{self.last_status}); bind {name} to one of them or remove it")

    # --- Mount protocol --------------------------------------------------------------
    def home(self) -> None:
        """Run the homing cycle ``$H`` and wait for ``ok`` (up to the config's timeout_s)."""
        with self._lock:
            if self._critical:
                self._reset_controller()
            self._command("$H", self.config.timeout_s)
            self.lost_position = ""
            state, mpos = self._status("$H")
            self._logical(mpos)  # the controller must serve every configured axis
            if state != "Idle":
                raise DeviceError(self.name, f"homing ended in state {state}, not Idle ({self.last_status})")

    def move_to(self, **axes: float) -> dict[str, float]:
        """Move logical axes within soft limits, wait for Idle, return the position from MPos."""
        targets = self._check(axes)
        with self._lock:
            self._home_again()
            line = "G53 G0 " + " ".join(f"{letter}{value:.3f}" for letter, value in
                                        sorted(targets.items(), key=lambda kv: GRBL_AXES.index(kv[0])))
            self._command(line, self.config.timeout_s)
            return self._wait_idle(line, targets)

    def state(self) -> str:
        """The controller's state from a status report (Idle, Run, Hold:0, Home, Alarm...)."""
        with self._lock:
            return self._status("?")[0]

    def set_aux_output(self, on: bool) -> None:
        """Switch the flood output (``M8`` on, ``M9`` off); a controller reset switches it off."""
        if not isinstance(on, bool):
            raise InputError(f"{self.name}: aux output must be true or false, got {on!r}")
        with self._lock:
            self._home_again()
            self._command("M8" if on else "M9", min(self.config.timeout_s, 10.0))

    def position(self) -> dict[str, float]:
        """Logical position from the controller's MPos."""
        with self._lock:
            return self._logical(self._status("?")[1])

    def stop(self) -> None:
        """Feed hold, wait (up to hold_s) for the axes to rest, soft reset. Best effort, never raises.

        From another thread while a move runs, that ``move_to`` ends with a DeviceError.
        """
        self._stopping.set()
        try:
            self._write(b"!")
            locked = self._lock.acquire(timeout=self._hold_s)
            try:
                if locked:
                    self._quietly(self._wait_hold)
                self._write(b"\x18")
                self._critical = False
                if locked:
                    self._quietly(self._read_banner, self._hold_s)  # notes an ALARM:3 in lost_position
                else:
                    self.lost_position = self.lost_position or "stop() could not wait for the hold"
            finally:
                if locked:
                    self._lock.release()
        except Exception:  # noqa: BLE001, S110 - the safe state is best effort and never raises
            pass
        finally:
            self._stopping.clear()

    def confirm_stopped(self) -> str:
        """'' if two status reports ``poll_s`` apart show Idle or Alarm, feed 0 and one MPos; else why not.

        The safe state's witness of motion (the controller's own report, read after ``stop()``).
        """
        if not self._lock.acquire(timeout=self._hold_s):
            return "motion stop not confirmed: the mount is busy with another command"
        try:
            first = self._status("the safe state's check")
            time.sleep(min(max(self._poll_s, 0.02), 0.1))
            state, mpos = self._status("the safe state's check")
            if state not in ("Idle", "Alarm") or self._feed != 0 or mpos != first[1]:
                return f"motion not stopped: the mount reports {self.last_status}"
            return ""
        except DeviceError as exc:
            return f"motion stop not confirmed: {exc}"
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the port (motion is not stopped: call ``stop()`` first for the safe state)."""
        with contextlib.suppress(Exception):  # closing is best effort
            self._serial.close()

    def __enter__(self) -> GrblMount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- checks ---------------------------------------------------------------------
    def _check(self, axes: dict[str, Any]) -> dict[str, float]:
        targets: dict[str, float] = {}
        for name, value in axes.items():
            spec = self.config.axes.get(name)
            if spec is None:
                allowed = ", ".join(self.config.axes)
                raise InputError(f"{self.name}: unknown axis {name!r}; allowed: {allowed}")
            unit = MOUNT_AXES.get(name, "")
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise InputError(f"{self.name}: {name}={value!r} is not a finite number of {unit}")
            if not spec.min <= value <= spec.max:
                raise InputError(f"{self.name}: {name}={float(value):g} {unit} outside soft limits "
                                 f"[{spec.min:g}, {spec.max:g}] {unit}")
            targets[spec.axis] = float(value)
        return targets

    # --- recovery -------------------------------------------------------------------
    def _home_again(self) -> None:
        """After an alarm or a stall the position is not trusted: home (never ``$X``), or fail."""
        if not self.lost_position:
            return
        why = self.lost_position
        self._drain()
        try:
            try:
                self.home()
            except _RebootedError:  # the banner of the alarm's reset came late: once more
                self.home()
        except DeviceError as exc:
            if "error:5" not in str(exc):
                raise
            raise DeviceError(self.name, f"position lost ({why}) and the controller has no homing "
                                         "(error:5 Homing not enabled): home it by hand; the station "
                                         "never unlocks with $X") from None

    def _drain(self) -> None:
        """Read what already waits on the line (the rest of an alarm's reset: banner, messages)."""
        deadline = time.monotonic() + self._poll_s
        while (raw := self._read_line(deadline)) is not None:
            line = raw.decode("ascii", errors="replace").strip()
            if line.startswith("ALARM:"):
                self._note_alarm(line)
            elif _BANNER_RE.match(line):
                self._critical = False

    def _reset_controller(self) -> None:
        """Ctrl-X out of a critical alarm (GRBL answers nothing else) and read the banner.

        GRBL 1.1h (protocol.c, protocol_exec_rt_system) prints ALARM:1/2, waits 500 ms in
        report_alarm_message(), prints ``[MSG:Reset to continue]`` and only then clears the reset
        flag: a Ctrl-X sent before that message is lost and GRBL stays locked (recorded from the
        real firmware: tests/unit/data/grbl/recorded_soft_limit.json). So wait for the message.
        """
        deadline = time.monotonic() + _CONTINUE_WAIT_S
        while not self._continue_seen and self._read_line(deadline) is not None:
            pass
        self._write(b"\x18")
        self._critical = False
        self._read_banner(min(self.config.timeout_s, 10.0))

    def _note_alarm(self, line: str) -> str:
        code = int(line[6:]) if line[6:].isdigit() else 0
        text = f"{line} {ALARMS.get(code, 'unknown alarm')}"
        self.lost_position = text
        self._critical = code in _CRITICAL_ALARMS
        self._continue_seen = False
        return text

    # --- wire -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(self.name, f"serial port {self.config.port} failed: {_one_line(exc)}") from None

    def _read_line(self, deadline: float) -> bytes | None:
        """One line without CR LF, or None at the deadline."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > _MAX_LINE:  # no GRBL line is this long: noise
                line, self._buffer = self._buffer, b""
                return line
            if time.monotonic() > deadline:
                return None
            try:
                with wire_time.waiting(self.name):
                    self._buffer += self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(self.name, f"serial port {self.config.port} failed: {_one_line(exc)}") \
                    from None
        line, _, self._buffer = self._buffer.partition(b"\n")
        line = line.rstrip(b"\r")
        if line == _CONTINUE:
            self._continue_seen = True
        return line

    def _next(self, sent: str, deadline: float, during: str = "") -> str | None:
        """Next meaningful line: ok, error:N, <status>, [push], $N=..; alarms and garbage raise."""
        while (raw := self._read_line(deadline)) is not None:
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                line = "\x00"
            if not line:
                continue
            context = during or sent
            if line.startswith("ALARM:"):
                raise DeviceError(self.name, f"{self._note_alarm(line)}, during {context!r}")
            if _BANNER_RE.match(line):
                self._buffer = raw + b"\n" + self._buffer  # left for _read_banner
                raise _RebootedError(self.name, f"controller reset unexpectedly ({line!r}) during {context!r}")
            if line == "ok" or re.fullmatch(r"error:\d+", line) or _OTHER_RE.match(line):
                return line
            if _STATUS_RE.match(line):
                self.last_status = line
                return line
            raise DeviceError(self.name, f"unexpected answer {raw[:40]!r} to {sent!r}: not a GRBL message")
        return None

    def _read_banner(self, timeout_s: float) -> str:
        """The last banner once the line is quiet for boot_quiet_s after it; alarms on the way are noted."""
        deadline = time.monotonic() + timeout_s
        banner = ""
        quiet_until = deadline
        while (raw := self._read_line(min(deadline, quiet_until))) is not None:
            line = raw.decode("ascii", errors="replace").strip()
            if _BANNER_RE.match(line):
                banner, quiet_until = line, time.monotonic() + self._boot_quiet_s
            elif line.startswith("ALARM:"):
                self._note_alarm(line)
            elif line and not (line.startswith(("[", "<")) or line == "ok" or _BOOT_RE.match(line)):
                if not banner and raw.isascii() and line.isprintable():
                    continue  # the tail of a line the port's opening cut (pyserial flushes input at open)
                raise DeviceError(self.name, f"unexpected answer {raw[:40]!r} to Ctrl-X: not a GRBL banner")
        if banner:
            self._critical = False
            return banner
        raise DeviceError(self.name, f"no GRBL welcome banner within {timeout_s:g} s after Ctrl-X on "
                                     f"{self.config.port}")

    def _command(self, line: str, timeout_s: float) -> list[str]:
        """Send a line, wait for ``ok``; return the push messages that came before it."""
        self._write(line.encode("ascii") + b"\n")
        deadline = time.monotonic() + timeout_s
        pushed: list[str] = []
        while (reply := self._next(line, deadline)) is not None:
            if reply == "ok":
                return pushed
            if reply.startswith("error:"):
                code = int(reply[6:])
                hint = "; home() the mount first" if code == 9 else ""
                raise DeviceError(self.name, f"{reply} {ERRORS.get(code, 'unknown error')} in reply to "
                                             f"{line!r}{hint}")
            if not reply.startswith("<"):
                pushed.append(reply)
        self._quietly(self._status, line)  # refresh last_status for the message
        raise DeviceError(self.name, f"no 'ok' to {line!r} within {timeout_s:g} s "
                                     f"(last status {self.last_status or 'none'})")

    def _status(self, during: str) -> tuple[str, dict[str, float]]:
        """Query ``?``: (state, machine position by controller letter)."""
        self._write(b"?")
        deadline = time.monotonic() + max(1.0, 20 * self._poll_s)
        while (reply := self._next("?", deadline, during)) is not None:
            if reply.startswith("<"):
                return self._parse(reply)
            if reply.startswith("error:"):
                raise DeviceError(self.name, f"{reply} {ERRORS.get(int(reply[6:]), '')} after {during!r}")
        raise DeviceError(self.name, f"no status report to '?' within {max(1.0, 20 * self._poll_s):g} s")

    def _parse(self, report: str) -> tuple[str, dict[str, float]]:
        state, rest = _STATUS_RE.match(report).groups()  # type: ignore[union-attr]
        fields = dict(f.split(":", 1) for f in rest.split("|")[1:] if ":" in f)
        try:
            if "FS" in fields or "F" in fields:
                self._feed = float(fields.get("FS", fields.get("F", "0")).split(",")[0])
            if "WCO" in fields:
                self._wco = dict(zip(GRBL_AXES, map(float, fields["WCO"].split(",")), strict=False))
            if "MPos" in fields:
                mpos = dict(zip(GRBL_AXES, map(float, fields["MPos"].split(",")), strict=False))
            elif "WPos" in fields and self._wco:
                wpos = map(float, fields["WPos"].split(","))
                mpos = {a: w + self._wco.get(a, 0.0) for a, w in zip(GRBL_AXES, wpos, strict=False)}
            else:
                raise ValueError("no MPos")
        except ValueError:
            raise DeviceError(self.name, f"status report {report!r} has no readable MPos "
                                         "(set $10=1 for machine positions)") from None
        return state, mpos

    def _logical(self, mpos: dict[str, float]) -> dict[str, float]:
        missing = [a.axis for a in self.config.axes.values() if a.axis not in mpos]
        if missing:
            raise DeviceError(self.name, f"status report {self.last_status!r} lacks axes {missing} "
                                         f"of the config ({len(mpos)}-axis controller)")
        return {name: mpos[a.axis] for name, a in self.config.axes.items()}

    def _wait_idle(self, line: str, targets: dict[str, float]) -> dict[str, float]:
        """Poll ``?`` until Idle; a Run with no motion for stall_s, an Alarm or the timeout raise."""
        start = time.monotonic()
        deadline = start + self.config.timeout_s
        last_pos: dict[str, float] = {}
        still_since, idle_polls, moved = start, 0, False
        while True:
            if self._stopping.is_set():
                raise DeviceError(self.name, f"move {line!r} interrupted by stop()")
            state, mpos = self._status(line)
            now = time.monotonic()
            if state == "Idle":
                idle_polls += 1
                at_target = all(abs(mpos.get(a, math.inf) - v) < 5e-3 for a, v in targets.items())
                if moved or at_target or idle_polls >= 3:  # Idle before Run: the move may not have begun
                    return self._logical(mpos)
            elif state == "Alarm":
                self.lost_position = self.lost_position or f"controller in Alarm during {line!r}"
                raise DeviceError(self.name, f"controller in Alarm during {line!r} ({self.last_status})")
            else:
                moved = True
                if state != "Run" or mpos != last_pos:
                    last_pos, still_since = mpos, now
                elif now - still_since > self._stall_s:
                    self.lost_position = f"move {line!r} stalled"
                    raise DeviceError(self.name, f"move {line!r} stalled: Run with no motion for "
                                                 f"{self._stall_s:g} s ({self.last_status})")
            if now > deadline:
                raise DeviceError(self.name, f"move {line!r} not Idle within {self.config.timeout_s:g} s "
                                             f"(last status {self.last_status})")
            with wire_time.waiting(self.name):
                time.sleep(self._poll_s)

    def _wait_hold(self) -> str:
        """After ``!``: poll until Hold:0, Idle or Alarm (hold_s at most); return the first state seen.

        Homing ignores a feed hold (GRBL 1.1 holds only a cycle or a jog): only the reset stops it.
        """
        deadline = time.monotonic() + self._hold_s
        first = ""
        while True:
            state, _ = self._status("!")
            first = first or state
            if state in ("Hold:0", "Idle", "Alarm", "Home") or time.monotonic() > deadline:
                return first
            with wire_time.waiting(self.name):
                time.sleep(self._poll_s)

    @staticmethod
    def _quietly(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - best effort inside stop()
            return None
