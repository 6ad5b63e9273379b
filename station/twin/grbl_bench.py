"""The twin's GRBL bench: its axes, banners and timing constants (used by ``grbl_emulator``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AxisSpec:
    """One controller axis of the twin's bench: machine travel, home and max rate (per minute)."""

    letter: str
    travel_min: float
    travel_max: float
    home: float
    max_rate_per_min: float


#: X focus ring (deg), Y chart rail (mm), Z pan (deg), A tilt (deg).
AXES: tuple[AxisSpec, ...] = (
    AxisSpec("X", 0.0, 320.0, 0.0, 3600.0),
    AxisSpec("Y", 100.0, 3200.0, 150.0, 6000.0),
    AxisSpec("Z", -35.0, 35.0, 0.0, 1800.0),
    AxisSpec("A", -25.0, 25.0, 0.0, 1800.0),
)
LETTERS = tuple(a.letter for a in AXES)

BANNER = "GrblHAL 1.1f ['$' or '$HELP' for help]"
VERSION = "[VER:1.1f.20240101:M-Station twin]"
#: flavour -> (banner, $I lines before ok): grblHAL (the twin's bench) or a GRBL 1.1h board.
FLAVOURS: dict[str, tuple[str, tuple[str, ...]]] = {
    "grblHAL": (BANNER, (VERSION, "[OPT:VH,15,128]", "[FIRMWARE:grblHAL]")),
    "grbl": ("Grbl 1.1h ['$' for help]", ("[VER:1.1h.20190825:M-Station twin]", "[OPT:V,15,128]")),
}
HOMING_LOCATE_S = 1.0  # simulated seconds to locate the switches and pull off
CRITICAL_DELAY_S = 0.5  # GRBL 1.1h report_alarm_message(): delay_ms(500) after ALARM:N
SLICE_REAL_S = 0.01  # real seconds per motion slice: the resolution of MPos during a move
STALL_AT = 1 / 3  # fraction of a move done when a stall stops it
TRIP_AT = 0.5  # fraction of a move done when the faulty limit switch trips
SETTINGS = ("$0=10", "$10=1", "$20=1", "$21=1", "$22=1", "$27=1.000",
            *(f"${110 + i}={a.max_rate_per_min:.3f}" for i, a in enumerate(AXES)),
            *(f"${130 + i}={a.travel_max - a.travel_min:.3f}" for i, a in enumerate(AXES)))

