"""The twin's mount: a GRBL 1.1 / grblHAL controller emulated behind a pseudo-terminal (DESIGN 3.2, 5).

Any serial client (the ``GrblMount`` driver, pyserial, a terminal) opens ``port``, the pty's
slave, and speaks the GRBL 1.1 wire (github.com/gnea/grbl/wiki, "Grbl v1.1 Interface"):
real-time bytes ``?`` ``!`` ``~`` Ctrl-X act at once, mid-line and mid-move; lines are
``$H`` ``$X`` ``$I`` ``$$`` ``$G`` ``$#`` and G-code ``G0 G1 G90 G91 G21 F``, ``G53`` (machine
coordinates), ``G54``..``G59`` and ``G10 L2``/``L20`` (work offsets), ``M8 M9`` on axes X Y Z A.
Replies end in CR LF: ``ok``, ``error:N``, ``ALARM:N``, ``[MSG:...]`` and status reports
``<Idle|MPos:x,y,z,a|FS:f,s>`` (3 decimals; ``WCO``, the active work offset, every 10th report,
``Pn`` on a tripped switch). ``flavour="grbl"`` with ``n_axes=3`` is a GRBL 1.1h board instead
(its banner, 3-field MPos, no status report while a critical alarm waits for Ctrl-X, as
grbl/protocol.c's empty wait loop). Behaviour follows tests/unit/data/grbl/ (GRBL 1.1h: recorded
from the release firmware in simavr, and derived from its source).

What the twin does, where GRBL leaves a choice:

- Homing is enabled: the controller boots in Alarm until ``$H`` (or ``$X``). ``$H`` runs
  at each axis' max rate from where it is to the switch, plus ``HOMING_LOCATE_S`` to locate
  and pull off; MPos then reads each axis' home position. (GRBL 1.1h answers a ``?`` meanwhile
  once, as ``<Home|..>``, just before the ``ok``; ``!`` is ignored: recorded.)
- Motion is linear in time (acceleration ignored): a move lasts the max over axes of
  distance / max rate (``G0``), or at least path length / F (``G1``), and is spent through
  ``world.spend("move", ...)`` in slices, so ``?`` mid-move reports Run and the interpolated
  MPos, and ``world.axes`` (the renderer's pose) follows. The ``ok`` of a move comes when it
  is accepted (before motion, as GRBL's planner does); the next line waits for the move.
- A target beyond machine travel (``AXES``, wider than the station's soft limits; ``$20=1``)
  raises ``ALARM:2`` and ``[MSG:Reset to continue]`` before moving, as GRBL 1.1's
  ``limits_soft_check`` does: lines are ignored until Ctrl-X, which answers the pending
  ``ok``, the banner and Alarm. With ``flavour="grbl"`` the message comes
  ``critical_delay_s`` after the alarm (GRBL 1.1h's ``report_alarm_message`` waits 500 ms,
  scaled here by the world's time scale unless given), and a Ctrl-X in between is lost, as
  recorded from the real firmware (tests/unit/data/grbl/recorded_soft_limit.json).
  A hard-limit switch trips only mid-move, under
  the ``mount_alarm`` fault: ``ALARM:1``, ``[MSG:Reset to continue]``, every line ignored
  until Ctrl-X, then Alarm until ``$H``/``$X``.
- ``!`` holds: ``Hold:1`` until the motion slice under way ends (the deceleration), then
  ``Hold:0`` (at once from Idle, as GRBL 1.1 does); ``~`` resumes a completed hold. Ctrl-X
  while a move runs or is held gives ``ALARM:3`` (``ALARM:6`` while homing) and Alarm after
  the banner; the twin keeps the position where motion stopped.
- At start each axis is clamped into its travel (a carriage cannot sit beyond its stops).

Faults are read from ``world.faults`` when a command arrives (see ``MOUNT_FAULTS``).
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import random
import re
import select
import threading
import time
import tty
from typing import Any

from station.twin.grbl_bench import (
    AXES,
    CRITICAL_DELAY_S,
    FLAVOURS,
    HOMING_LOCATE_S,
    SETTINGS,
    SLICE_REAL_S,
    STALL_AT,
    TRIP_AT,
)
from station.twin.grbl_gcode import ERROR, ReplyError, parse_block, set_offset, target_of
from station.twin.world import World

#: Faults this emulator reads from ``world.faults`` (name -> what it does on the wire).
MOUNT_FAULTS: dict[str, str] = {
    "mount_stall": "moves and homing never complete: the state stays Run (Home) and the position "
                   "stops advancing a third of the way; only Ctrl-X ends it (ALARM:3)",
    "mount_alarm": "every move while set trips a hard-limit switch half way: ALARM:1, "
                   "[MSG:Reset to continue], lines ignored until Ctrl-X, then Alarm until $H",
    "mount_garbage": "every reply (ok, status, banner, messages) is replaced by one line of random "
                     "bytes, not UTF-8: line noise; commands still act",
}


class GrblEmulator:
    """A grblHAL (or GRBL 1.1h) controller on a pty; ``start()`` returns self, ``port`` is the slave path.

    ``n_axes``: the controller's axes (the first of X Y Z A); ``flavour``: ``grblHAL`` or ``grbl``.
    """

    def __init__(self, world: World, name: str = "twin-mount", *, n_axes: int = 4,
                 flavour: str = "grblHAL", double_boot_s: float = 0.0,
                 critical_delay_s: float | None = None) -> None:
        if not 1 <= n_axes <= len(AXES) or flavour not in FLAVOURS:
            raise ValueError(f"{name}: n_axes 1..{len(AXES)} and flavour in {sorted(FLAVOURS)}")
        self.world = world
        self.name = name
        self.axes = AXES[:n_axes]
        self.letters = tuple(a.letter for a in self.axes)
        self.flavour = flavour
        self.double_boot_s = double_boot_s
        if critical_delay_s is None:
            critical_delay_s = CRITICAL_DELAY_S * world.time_scale if flavour == "grbl" else 0.0
        self.critical_delay_s = critical_delay_s
        self.dropped_resets = 0  # Ctrl-X bytes lost in the critical alarm's delay
        self._deaf = False  # in that delay: a Ctrl-X is lost
        self._report_due = False  # a ? came while GRBL 1.1h homed
        self._offsets = [[0.0] * n_axes for _ in range(6)]  # G54..G59 work offsets (kept over resets)
        self._coord = 0  # active work coordinate system: 0 = G54
        self._pending_ok: int | None = None  # the line a soft-limit alarm cut short: ok after Ctrl-X
        self.port = ""
        self.lines: list[str] = []  # every command line received, in order
        self.bytes_in = 0  # every byte received, real-time ones included
        self._lock = threading.RLock()  # controller state and every write to the wire
        self._state = "Alarm"
        self._pos = [0.0] * n_axes
        self._absolute = True
        self._motion_mode = 0
        self._feed: float | None = None
        self._rate = 0.0  # present feed rate for FS, units/min
        self._moving = False  # a move or homing is under way (running or held)
        self._critical = False  # hard-limit alarm: ignore lines until Ctrl-X
        self._pins = ""
        self._aux = False  # flood coolant output (M8/M9): the light's power relay on the twin bench
        self._gen = 0  # bumped by Ctrl-X: work from before a reset is dropped
        self._reports = 0
        self._rng = random.Random(world.seed)
        self._queue: queue.Queue[tuple[int, str]] = queue.Queue()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._master = self._slave = -1
        self._wake_r, self._wake_w = -1, -1  # a self-pipe: stop() wakes the reader at once

    @property
    def state(self) -> str:
        """The controller state as ``?`` reports it (Idle, Run, Hold:0, Home, Alarm)."""
        with self._lock:
            return self._state

    # --- life cycle -----------------------------------------------------------------
    def start(self) -> GrblEmulator:
        """Open the pty, power the controller up (banner, Alarm) and serve it on threads."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        with self.world.lock:
            start = [self.world.axes.get(a.letter, a.home) for a in self.axes]
        self._set_pos([min(max(p, a.travel_min), a.travel_max) for p, a in zip(start, self.axes, strict=True)])
        self._set_aux(False)  # power-up: outputs off, so the light's power relay is open
        self._boot()
        for target in (self._read_loop, self._exec_loop):
            thread = threading.Thread(target=target, name=f"{self.name}-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, join the threads and close the pty (idempotent)."""
        self._closing.set()
        self._queue.put((-1, ""))
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                if fd >= 0:
                    os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1

    def __enter__(self) -> GrblEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- wire -----------------------------------------------------------------------
    def _faults(self) -> dict[str, Any]:
        with self.world.lock:
            return dict(self.world.faults)

    def _send(self, text: str, gen: int | None = None) -> None:
        """Write one reply line (dropped if a reset came since ``gen``, or nobody reads)."""
        with self._lock:
            if gen is not None and gen != self._gen or self._master < 0:
                return
            if self._faults().get("mount_garbage"):
                noise = [self._rng.randrange(0x80, 0x100)]
                noise += [self._rng.choice([b for b in range(1, 256) if b not in (10, 13)])
                          for _ in range(self._rng.randrange(5, 24))]
                data = bytes(noise) + b"\r\n"
            else:
                data = text.encode("ascii") + b"\r\n"
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._master, data)

    def _read_loop(self) -> None:
        line = bytearray()
        while not self._closing.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 1024)
            except BlockingIOError:
                continue
            except OSError:
                return
            self.bytes_in += len(data)
            for byte in data:
                if byte == 0x3F and self.flavour == "grbl" and self._state == "Home":
                    self._report_due = True  # GRBL 1.1h reports once, as homing ends (recorded)
                elif byte == 0x3F:  # ?
                    if not (self._critical and self.flavour == "grbl"):  # GRBL's critical loop is mute
                        self._send(self._status())
                elif byte == 0x21:  # !
                    self._hold()
                elif byte == 0x7E:  # ~
                    self._resume()
                elif byte == 0x18 and self._deaf:  # cleared with the flag once the message is out
                    self.dropped_resets += 1
                elif byte == 0x18:  # Ctrl-X
                    line.clear()
                    self._reset()
                elif byte in (0x0A, 0x0D):
                    text = line.decode("latin-1")
                    line.clear()
                    self.lines.append(text)
                    self._queue.put((self._gen, text))
                elif byte < 0x80:  # 0x80.. are GRBL's extended real-time commands: ignored
                    line.append(byte)

    # --- real-time commands -----------------------------------------------------------
    def _status(self) -> str:
        with self._lock:
            self._reports += 1
            fields = [self._state, "MPos:" + ",".join(f"{p:.3f}" for p in self._pos),
                      f"FS:{self._rate if self._state in ('Run', 'Home') else 0:.0f},0"]
            if self._pins:
                fields.append(f"Pn:{self._pins}")
            if self._aux:
                fields.append("A:F")
            if self._reports % 10 == 1:
                fields.append("WCO:" + ",".join(f"{o:.3f}" for o in self._offsets[self._coord]))
            return "<" + "|".join(fields) + ">"

    def _hold(self) -> None:
        with self._lock:
            if self._state == "Run":
                self._state = "Hold:1"  # decelerating: the slice under way completes, then Hold:0
            elif self._state == "Idle":
                self._state = "Hold:0"

    def _resume(self) -> None:
        with self._lock:
            if self._state == "Hold:0":  # GRBL resumes only a completed hold
                self._state = "Run" if self._moving else "Idle"

    def _reset(self, reboot: bool = True) -> None:
        with self._lock:
            self._gen += 1
            while not self._queue.empty():
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
            held = self._state == "Hold:0"  # the hold completed: the axes are at rest, nothing lost
            alarm = 6 if self._state == "Home" else 3 if self._moving and not held else 0
            if self._pending_ok is not None:
                self._send("ok")  # the line that raised ALARM:2 is answered after the reset
                self._pending_ok = None
            self._moving = self._critical = self._report_due = False
            self._coord = 0
            self._pins = ""
            self._set_aux(False)  # a reset switches the coolant outputs off (GRBL)
            self._absolute, self._motion_mode, self._feed, self._rate = True, 0, None, 0.0
            if alarm:
                self._send(f"ALARM:{alarm}")
                self._state = "Alarm"
            elif self._state != "Alarm":
                self._state = "Idle"
            self._boot()
            if reboot and self.double_boot_s > 0:
                timer = threading.Timer(self.double_boot_s, self._reboot, args=(self._gen,))
                timer.daemon = True
                timer.start()

    def _reboot(self, gen: int) -> None:
        """The second boot of a board that resets again (banner twice)."""
        with self._lock:
            if gen == self._gen and not self._closing.is_set():
                self._reset(reboot=False)

    def reset_pin(self) -> None:
        """The board's reset/abort input (a pendant's button): the same as a Ctrl-X on the wire."""
        self._reset()

    def _set_aux(self, on: bool) -> None:
        """Flood output (M8 on, M9 off); on the twin's bench it switches the light's power."""
        with self._lock:
            self._aux = on
        with self.world.lock:
            if self.world.light_interlock:
                self.world.light_power = on

    def _boot(self) -> None:
        with self._lock:
            self._send("")
            self._send(FLAVOURS[self.flavour][0])
            if self._state == "Alarm":
                self._send("[MSG:'$H'|'$X' to unlock]")

    # --- lines ----------------------------------------------------------------------
    def _exec_loop(self) -> None:
        while not self._closing.is_set():
            try:
                gen, text = self._queue.get(timeout=0.5)  # stop() also posts a wake-up item
            except queue.Empty:
                continue
            if gen != self._gen or self._critical:
                continue  # flushed by a reset, or ignored until one
            line = re.sub(r"\([^)]*\)", "", text.split(";")[0]).replace(" ", "").upper()
            faults = self._faults()
            try:
                if not line:
                    self._send("ok", gen)
                elif line.startswith("$"):
                    self._system(gen, line, faults)
                else:
                    self._gcode(gen, line, faults)
            except ReplyError as reply:
                self._send(f"error:{reply.code}", gen)

    def _system(self, gen: int, line: str, faults: dict[str, Any]) -> None:
        if line == "$I":
            for text in (*FLAVOURS[self.flavour][1], "ok"):
                self._send(text, gen)
            return
        if line == "$#":
            for i, offset in enumerate(self._offsets):
                self._send(f"[G{54 + i}:" + ",".join(f"{o:.3f}" for o in offset) + "]", gen)
            for text in ("[G92:" + ",".join("0.000" for _ in self.axes) + "]", "[TLO:0.000]", "ok"):
                self._send(text, gen)
            return
        if line == "$$":
            for text in (*SETTINGS, "ok"):
                self._send(text, gen)
            return
        if line == "$G":
            mode = f"G{self._motion_mode} G{54 + self._coord} G17 G21 G{90 if self._absolute else 91} G94"
            self._send(f"[GC:{mode} M5 M9 T0 F{self._feed or 0:g} S0]", gen)
            self._send("ok", gen)
            return
        if line == "$":
            self._send("[HLP:$$ $G $I $X $H ~ ! ? ctrl-x]", gen)
            self._send("ok", gen)
            return
        if line not in ("$H", "$X"):
            raise ReplyError(ERROR["system"])
        if self._state not in ("Idle", "Alarm"):
            raise ReplyError(ERROR["not_idle"])
        if line == "$X":
            if self._state == "Alarm":
                self._state = "Idle"
                self._send("[MSG:Caution: Unlocked]", gen)
            self._send("ok", gen)
            return
        home = [a.home for a in self.axes]
        duration_s = HOMING_LOCATE_S + max(abs(h - p) / a.max_rate_per_min * 60.0
                                           for h, p, a in zip(home, self._pos, self.axes, strict=True))
        with self._lock:
            if gen != self._gen:
                return
            self._state, self._rate = "Home", AXES[0].max_rate_per_min
        if self._motion(gen, home, duration_s, faults, trip=False):
            with self._lock:
                if self._report_due:
                    self._report_due = False
                    self._send(self._status().replace("<Idle|", "<Home|", 1), gen)
                self._send("ok", gen)

    def _gcode(self, gen: int, line: str, faults: dict[str, Any]) -> None:
        if self._state == "Alarm":
            raise ReplyError(ERROR["locked"])
        block = parse_block(line, self.letters, self._absolute, self._motion_mode, self._feed, self._coord)
        if block["non_modal"] == 10:
            set_offset(block, self._offsets, self._pos, self.letters)
            self._send("ok", gen)
            return
        words = block["words"]
        if words and block["mode"] == 1 and block["feed"] is None:
            raise ReplyError(ERROR["feed"])
        target = target_of(block, self._offsets, self._pos, self.letters)
        self._absolute, self._motion_mode, self._feed = block["absolute"], block["mode"], block["feed"]
        self._coord = block["coord"]
        if block["aux"] is not None:
            self._set_aux(block["aux"])
        if not words:
            self._send("ok", gen)
            return
        if any(not a.travel_min <= t <= a.travel_max for a, t in zip(self.axes, target, strict=True)):
            self._soft_limit(gen)
            return
        deltas = [abs(t - p) for t, p in zip(target, self._pos, strict=True)]
        duration_s = max(d / a.max_rate_per_min * 60.0 for d, a in zip(deltas, self.axes, strict=True))
        path = math.hypot(*deltas)
        if block["mode"] == 1 and block["feed"] is not None:
            duration_s = max(duration_s, path / block["feed"] * 60.0)
        with self._lock:
            if gen != self._gen:
                return
            self._moving = True
            self._rate = path / duration_s * 60.0 if duration_s > 0 else 0.0
            if not self._state.startswith("Hold"):
                self._state = "Run"
        self._send("ok", gen)  # accepted into the planner: ok now, motion follows
        self._motion(gen, target, duration_s, faults, trip=bool(faults.get("mount_alarm")))

    def _soft_limit(self, gen: int) -> None:
        """GRBL 1.1 limits_soft_check from Idle: ALARM:2, critical until Ctrl-X; nothing moved."""
        with self._lock:
            if gen != self._gen:
                return
            self._pending_ok = gen
            self._critical_alarm(2)

    def _critical_alarm(self, code: int) -> None:
        """ALARM:1/2: Alarm, mute until Ctrl-X; ``[MSG:Reset to continue]`` after ``critical_delay_s``."""
        with self._lock:
            self._state, self._critical = "Alarm", True
            self._send(f"ALARM:{code}")
            if self.critical_delay_s <= 0:
                self._send("[MSG:Reset to continue]")
                return
            self._deaf = True
            timer = threading.Timer(self.critical_delay_s, self._reset_to_continue, args=(self._gen,))
            timer.daemon = True
            timer.start()

    def _reset_to_continue(self, gen: int) -> None:
        with self._lock:
            self._deaf = False
            self._send("[MSG:Reset to continue]", gen)

    # --- motion ---------------------------------------------------------------------
    def _motion(self, gen: int, target: list[float], duration_s: float, faults: dict[str, Any],
                trip: bool) -> bool:
        """Run a move in simulated time; False if a reset, an alarm or stop() cut it short."""
        with self._lock:
            if gen != self._gen:
                return False
            start = list(self._pos)
            self._moving = True
        ts = self.world.time_scale
        slice_s = SLICE_REAL_S / ts if ts > 0 else math.inf
        limit_s = duration_s
        if faults.get("mount_stall"):
            limit_s = duration_s * STALL_AT
        if trip:
            limit_s = duration_s * TRIP_AT
        done_s = 0.0
        while True:
            with self._lock:
                if gen != self._gen or self._closing.is_set():
                    return False
                if self._state == "Hold:1":
                    self._state = "Hold:0"
                held = self._state == "Hold:0"
            if done_s >= limit_s and (trip or limit_s >= duration_s):
                break
            if held or done_s >= limit_s:  # held, or stalled: time passes, nothing moves
                time.sleep(SLICE_REAL_S)
                continue
            step_s = min(slice_s, limit_s - done_s)
            self.world.spend("move", step_s)
            done_s += step_s
            fraction = done_s / duration_s if duration_s > 0 else 1.0
            with self._lock:
                if gen != self._gen:
                    return False
                self._set_pos([s + (t - s) * fraction for s, t in zip(start, target, strict=True)])
        with self._lock:
            if gen != self._gen:
                return False
            self._moving, self._rate = False, 0.0
            if trip:
                moving = [a.letter for a, s, t in zip(self.axes, start, target, strict=True) if s != t]
                self._pins = "".join(moving[:1])
                self._critical_alarm(1)
                return False
            self._set_pos(target)
            self._state = "Hold:0" if self._state.startswith("Hold") else "Idle"
        return True

    def _set_pos(self, pos: list[float]) -> None:
        with self._lock:
            self._pos = list(pos)
            with self.world.lock:
                self.world.axes.update(zip(self.letters, self._pos, strict=True))
