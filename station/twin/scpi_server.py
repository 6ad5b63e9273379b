"""The twin's light and lux meter: threaded, stateful SCPI servers on TCP ports (DESIGN 3.1, 5).

Line protocol as a LAN instrument's raw socket (port 5025 on a bench): one command line in,
``\\n``-terminated (``\\r\\n`` accepted), answers to queries one line out. Several clients at
once; the instrument's state is the twin's ``World`` (under ``world.lock``), the error queue
is the instrument's own. Headers follow SCPI-99 (IEEE 488.2 common commands, short and long
forms, case-insensitive, ``;`` compound lines with the path rule); errors use SCPI-99's
standard codes in a bounded queue (on overflow the newest entry becomes -350).

Status follows IEEE 488.2 section 11: the standard event status register (``*ESR?``, read and
cleared; bits set by the error codes' classes, OPC by ``*OPC``, PON at power-on) and its enable
mask (``*ESE``), the status byte (``*STB?``: EAV bit 2 while the error queue holds an entry,
MAV bit 4 while an answer waits in the output queue, ESB bit 5, MSS bit 6 against ``*SRE``),
``*CLS`` clearing the queue and the event register. Commands are sequential, so ``*WAI`` has
nothing to wait for; ``*TST?`` answers 0, or 1 while the lamp is faulty (``light_scpi_error``).

Device faults are read from ``world.faults`` at every command, so a control interface may
switch them at run time; ``LIGHT_FAULTS`` documents them.
"""

from __future__ import annotations

import collections
import contextlib
import random
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from station import __version__
from station.twin.world import World

#: Injectable light faults: name -> what it does (``station twin faults --json`` lists these).
LIGHT_FAULTS: dict[str, str] = {
    "light_no_answer": "the light stops answering after N more commands (value N, default 0: at once); "
                       "it neither answers nor acts until the fault is cleared",
    "light_scpi_error": "the light refuses every setting (level, CCT, output) and queues "
                        "-300,\"Device-specific error; <value or 'lamp fault'>\"; queries still answer",
    "light_drift": "the light's level drifts after settling by VALUE % of its value per simulated "
                   "second (default 0.5)",
    "light_flaky": "a flaky link: the light drops one reply in K (value K >= 1; true: 1, every reply); "
                   "the command still acts",
    "meter_flaky": "a flaky link: the lux meter drops one reply in K (value K >= 1; true: 1, every reply)",
}
#: Standard event status register bits (IEEE 488.2 11.5.1).
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME, ESR_PON = 0x01, 0x04, 0x08, 0x10, 0x20, 0x80
#: Status byte bits (IEEE 488.2 11.2; SCPI-99 puts the error/event queue summary at bit 2).
STB_EAV, STB_MAV, STB_ESB, STB_MSS = 0x04, 0x10, 0x20, 0x40

LEVEL_RANGE_PCT = (0.0, 100.0)
CCT_RANGE_K = (2700.0, 6500.0)
DEFAULT_CCT_K = 5000.0
ERROR_QUEUE_LEN = 16
METER_NOISE_REL = 0.002  # 1-sigma relative noise of MEAS:ILL?
MAX_LINE_BYTES = 4096
_NO_ERROR = (0, "No error")


def flaky_period(value: Any) -> int | None:
    """A flaky link's K (one reply in K is dropped): None when off; ValueError if unreadable."""
    if value is None or value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 1:
        return value
    raise ValueError(f"expected true or a whole number K >= 1 (one reply in K dropped), got {value!r}")


class _ScpiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _words(text: str, limit: int = 40) -> str:
    """Client text as it may appear inside an error string (printable, no quotes, bounded)."""
    clean = "".join(c if " " <= c <= "~" and c != '"' else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


def _short_form(mnemonic: str) -> str:
    return "".join(c for c in mnemonic if c.isupper() or c.isdigit() or c == "*")


def _matches(tokens: list[str], pattern: str) -> bool:
    nodes = pattern.split(":")
    return len(tokens) == len(nodes) and all(
        t.upper() in (_short_form(n), n.upper()) for t, n in zip(tokens, nodes, strict=True))


@dataclass(frozen=True)
class _Command:
    patterns: tuple[str, ...]  # long forms, upper case marking the short form; optional nodes spelled out
    set: Callable[[str], None] | None = None
    query: Callable[[str], str] | None = None
    is_setting: bool = False  # a setting of the light's output (refused under light_scpi_error)


class ScpiServer:
    """One instrument (``role`` ``light`` or ``meter``) of the twin on a TCP port."""

    def __init__(self, world: World, role: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if role not in ("light", "meter"):
            raise ValueError(f"role must be 'light' or 'meter', got {role!r}")
        self.world = world
        self.role = role
        self.host = host
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._errors: collections.deque[tuple[int, str]] = collections.deque()
        self._silent_countdown: tuple[Any, int] | None = None  # (fault value, commands left)
        self._esr = ESR_PON  # power-on
        self._ese = 0
        self._sre = 0
        self._pending_answers = 0  # answers of the line being executed, not yet sent (MAV)
        self._replies = 0  # replies this instrument has produced (the flaky link counts them)
        self.dropped_replies = 0  # truth: replies the flaky link has lost
        self._rng = random.Random(world.seed * 7919 + (1 if role == "meter" else 0))
        self._commands = self._light_commands() if role == "light" else self._meter_commands()

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._listener is None:
            return self._requested_port
        return self._listener.getsockname()[1]

    def start(self) -> ScpiServer:
        """Bind and listen now (``port`` is the real one), serve on background threads."""
        self._listener = socket.create_server((self.host, self._requested_port))
        self._stopping.clear()
        self._sync_drift()
        thread = threading.Thread(target=self._accept_loop, name=f"scpi-{self.role}-accept", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every client, and join the threads."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop at once (Linux)
            with contextlib.suppress(OSError):
                listener.close()
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> ScpiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopping.is_set() and listener is not None:
            try:
                ready, _, _ = select.select([listener], [], [], 0.05)
                if not ready:
                    continue
                conn, _ = listener.accept()
            except (OSError, ValueError):
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():  # stop() has already shut the clients it knew
                    conn.close()
                    return
                self._clients.add(conn)
            thread = threading.Thread(target=self._serve_client, args=(conn,), daemon=True,
                                      name=f"scpi-{self.role}-client")
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve_client(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stopping.is_set():
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    if len(raw) > MAX_LINE_BYTES:
                        with self._lock:
                            self._push(-100, "Command error; line too long")
                        continue
                    answer = self.handle_line(raw.decode("latin-1").rstrip("\r"))
                    if answer is not None and not self._reply_dropped():
                        conn.sendall(answer.encode("latin-1") + b"\n")
                if len(buffer) > MAX_LINE_BYTES:  # keep only enough to know the line is too long
                    buffer = buffer[-(MAX_LINE_BYTES + 1):]
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    # --- faults -----------------------------------------------------------------------
    def _fault(self, name: str) -> tuple[bool, Any]:
        with self.world.lock:
            faults = self.world.faults
            if name not in faults or faults[name] is None or faults[name] is False:
                return False, None
            return True, faults[name]

    @staticmethod
    def _fault_number(value: Any, default: float) -> float:
        if value is True:
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            return default

    def _sync_drift(self) -> None:
        active, value = self._fault("light_drift")
        drift = self._fault_number(value, 0.5) if active else 0.0
        with self.world.lock:
            self.world.light.drift_pct_per_s = drift

    def _silenced(self) -> bool:
        """``light_no_answer``: count this command down; True once the light has gone quiet."""
        if self.role != "light":
            return False
        active, value = self._fault("light_no_answer")
        if not active:
            self._silent_countdown = None
            return False
        if self._silent_countdown is None or self._silent_countdown[0] != value:  # (re)armed
            self._silent_countdown = (value, max(int(self._fault_number(value, 0.0)), 0))
        armed_with, left = self._silent_countdown
        if left > 0:
            self._silent_countdown = (armed_with, left - 1)
            return False
        return True

    def _reply_dropped(self) -> bool:
        """``light_flaky`` / ``meter_flaky`` = K: every Kth reply is lost on the way."""
        active, value = self._fault(f"{self.role}_flaky")
        try:
            period = flaky_period(value) if active else None
        except ValueError:  # refused before the twin starts (faults.check_fault_value); never here
            period = None
        with self._lock:
            self._replies += 1
            dropped = period is not None and self._replies % period == 0
            self.dropped_replies += dropped
            return dropped

    # --- the line protocol ----------------------------------------------------------------
    def handle_line(self, line: str) -> str | None:
        """Execute one command line; return the answer line (queries joined by ``;``) or None."""
        with self._lock:
            self._sync_drift()
            if not line.strip() or self._silenced():
                return None
            answers: list[str] = []
            prefix: list[str] = []
            self._pending_answers = 0
            for part in line.split(";"):
                text = part.strip()
                if not text:
                    self._push(-100, "Command error; empty command")
                    continue
                try:
                    answer, prefix = self._execute(text, prefix)
                except _ScpiError as err:
                    self._push(err.code, err.message)
                    continue
                if answer is not None:
                    answers.append(answer)
                    self._pending_answers = len(answers)
            self._pending_answers = 0
            return ";".join(answers) if answers else None

    def _execute(self, text: str, prefix: list[str]) -> tuple[str | None, list[str]]:
        header, _, argument = text.partition(" ")
        argument = argument.strip()
        is_query = header.endswith("?")
        if is_query:
            header = header[:-1]
        if header.startswith("*"):
            tokens, next_prefix = [header], prefix
        else:
            absolute = header.startswith(":")
            tokens = [t for t in header.lstrip(":").split(":")]
            if any(not t for t in tokens):
                raise _ScpiError(-100, f"Command error; {_words(text)}")
            tokens = tokens if absolute else prefix + tokens
            next_prefix = tokens[:-1]
        command = next((c for c in self._commands if any(_matches(tokens, p) for p in c.patterns)), None)
        handler = None if command is None else (command.query if is_query else command.set)
        if command is None or handler is None:
            raise _ScpiError(-113, f"Undefined header; {_words(text)}")
        if is_query:
            if argument:
                raise _ScpiError(-108, f"Parameter not allowed; {_words(text)}")
            return handler(text), next_prefix
        if command.is_setting:
            active, value = self._fault("light_scpi_error")
            if active:
                detail = value if isinstance(value, str) and value.strip() else "lamp fault"
                raise _ScpiError(-300, f"Device-specific error; {_words(detail)}")
        handler(argument)
        return None, next_prefix

    def _push(self, code: int, message: str) -> None:
        """Queue an error and set its class's event bit (SCPI-99 21.8: -1xx command, -2xx execution,
        -3xx and device codes device-dependent, -4xx query error)."""
        if -199 <= code <= -100:
            self._esr |= ESR_CME
        elif -299 <= code <= -200:
            self._esr |= ESR_EXE
        elif -499 <= code <= -400:
            self._esr |= ESR_QYE
        else:
            self._esr |= ESR_DDE
        if len(self._errors) < ERROR_QUEUE_LEN:
            self._errors.append((code, message))
        elif self._errors[-1][0] != -350:
            self._errors[-1] = (-350, "Queue overflow")

    # --- parameters -------------------------------------------------------------------------
    @staticmethod
    def _number(argument: str, lo: float, hi: float, header: str) -> float:
        if not argument:
            raise _ScpiError(-109, f"Missing parameter; {header}")
        word = argument.upper()
        if word in ("MIN", "MINIMUM"):
            return lo
        if word in ("MAX", "MAXIMUM"):
            return hi
        try:
            value = float(argument)
        except ValueError:
            raise _ScpiError(-104, f"Data type error; {header} {_words(argument)}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise _ScpiError(-104, f"Data type error; {header} {_words(argument)}")
        if not lo <= value <= hi:
            raise _ScpiError(-222, f"Data out of range; {header} {_words(argument)} not in {lo:g}..{hi:g}")
        return value

    # --- common commands (IEEE 488.2) --------------------------------------------------------
    def _common(self, model: str) -> list[_Command]:
        serial = f"SN{self.world.seed:04d}"

        def cls(_: str) -> None:
            self._errors.clear()
            self._esr = 0

        def error_query(_: str) -> str:
            code, message = self._errors.popleft() if self._errors else _NO_ERROR
            return f'{code},"{message}"'

        def esr_query(_: str) -> str:
            value, self._esr = self._esr, 0
            return str(value)

        def opc(_: str) -> None:
            self._esr |= ESR_OPC  # every operation is complete when the next command is read

        def set_ese(argument: str) -> None:
            self._ese = round(self._number(argument, 0, 255, "*ESE"))

        def set_sre(argument: str) -> None:
            self._sre = round(self._number(argument, 0, 255, "*SRE")) & ~STB_MSS  # bit 6 is not enabled

        def self_test(_: str) -> str:
            return "1" if self.role == "light" and self._fault("light_scpi_error")[0] else "0"

        return [
            _Command(("*IDN",), query=lambda _: f"M-Station,{model},{serial},{__version__}"),
            _Command(("*RST",), set=self._reset),
            _Command(("*CLS",), set=cls),
            _Command(("*OPC",), set=opc, query=lambda _: "1"),
            _Command(("*WAI",), set=lambda _: None),
            _Command(("*ESR",), query=esr_query),
            _Command(("*ESE",), set=set_ese, query=lambda _: str(self._ese)),
            _Command(("*SRE",), set=set_sre, query=lambda _: str(self._sre)),
            _Command(("*STB",), query=lambda _: str(self.status_byte())),
            _Command(("*TST",), query=self_test),
            _Command(("SYSTem:ERRor", "SYSTem:ERRor:NEXT"), query=error_query),
        ]

    def status_byte(self) -> int:
        """IEEE 488.2 status byte: EAV, MAV, ESB, and MSS summarising the bits ``*SRE`` enables."""
        stb = (STB_EAV if self._errors else 0) | (STB_MAV if self._pending_answers else 0)
        if self._esr & self._ese:
            stb |= STB_ESB
        if stb & self._sre:
            stb |= STB_MSS
        return stb

    def _reset(self, _: str) -> None:
        if self.role == "light":
            self.world.set_light(output=False, level_pct=0.0, cct_k=DEFAULT_CCT_K)

    # --- the light ---------------------------------------------------------------------------
    def _light_commands(self) -> list[_Command]:
        world = self.world

        def set_level(argument: str) -> None:
            value = self._number(argument, *LEVEL_RANGE_PCT, "SOUR:LEV")
            world.set_light(level_pct=round(value, 3))

        def set_cct(argument: str) -> None:
            value = self._number(argument, *CCT_RANGE_K, "SOUR:CCT")
            world.set_light(cct_k=round(value, 1))

        def set_output(argument: str) -> None:
            word = argument.upper()
            if not word:
                raise _ScpiError(-109, "Missing parameter; OUTP")
            if word not in ("ON", "OFF", "1", "0"):
                raise _ScpiError(-224, f"Illegal parameter value; OUTP {_words(argument)}")
            world.set_light(output=word in ("ON", "1"))

        def light(attribute: str) -> Callable[[str], str]:
            def query(_: str) -> str:
                with world.lock:
                    value = getattr(world.light, attribute)
                return ("1" if value else "0") if isinstance(value, bool) else f"{value:.6g}"
            return query

        return self._common("TwinLight") + [
            _Command(("SOURce:LEVel",), set=set_level, query=light("level_pct"), is_setting=True),
            _Command(("SOURce:CCT",), set=set_cct, query=light("cct_k"), is_setting=True),
            _Command(("OUTPut", "OUTPut:STATe"), set=set_output, query=light("output"), is_setting=True),
            _Command(("SOURce:SETTled",), query=lambda _: "1" if world.light_settled() else "0"),
        ]

    # --- the meter ---------------------------------------------------------------------------
    def _meter_commands(self) -> list[_Command]:
        world = self.world

        def illuminance(_: str) -> str:
            lux = world.illuminance_lux() * (1.0 + METER_NOISE_REL * self._rng.gauss(0.0, 1.0))
            return f"{max(lux, 0.0):.4f}"

        def cct(_: str) -> str:
            with world.lock:
                dark = world.illuminance_lux() < 1.0
                value = world.light.cct_k
            return "0" if dark else f"{value:.6g}"

        return self._common("TwinLuxMeter") + [
            _Command(("MEASure:ILLuminance",), query=illuminance),
            _Command(("MEASure:CCT",), query=cct),
        ]
