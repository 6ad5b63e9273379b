"""A stand-in for the plans' ``measure`` fixture that logs what a step takes: ``(name, value, case)`` per
measurement and ``("checked", 0.0, "")`` when the step's verdicts are checked."""

from __future__ import annotations


class MeasureLog:
    """Call it as the plans call ``measure``; ``taken`` is the log."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float, str]] = []

    def __call__(self, name: str, value: float, *, case: str = "", check: bool = True) -> tuple:
        self.taken.append((name, value, case))
        return (name, value)

    def check(self) -> None:
        self.taken.append(("checked", 0.0, ""))
