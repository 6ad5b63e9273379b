"""A person at the bench's terminal: each change asked in one line, confirmed with Enter.

Under pytest the capture manager is suspended while asking (``set_capture``); without a terminal the
request is a ``ConfigError`` (exit 2): a bench run that needs a person must run where one can answer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from station.errors import ConfigError
from station.operator.protocol import OperatorRequest


class PromptOperator:
    """Asks on the terminal and waits for Enter."""

    name = "prompt"

    def __init__(self, ask: Callable[[str], Any] | None = None) -> None:
        self._ask = ask
        self._capman: Any = None

    def set_capture(self, capman: Any) -> None:
        """pytest's capture manager, suspended while a question is on the terminal."""
        self._capman = capman

    def _prompt(self, request: OperatorRequest) -> None:
        text = request.text()
        if self._ask is not None:
            self._ask(text)
            return
        if self._capman is not None:
            self._capman.suspend_global_capture(in_=True)
        try:
            if not sys.stdin or not sys.stdin.isatty():
                raise ConfigError(f"operator step needed ({text}) but there is no terminal to ask on: run "
                                  "`station run` on the bench's terminal, or give --operator tcp://HOST:PORT")
            input(f"\n>>> OPERATOR {text}; the light is off: press Enter when done ")
        finally:
            if self._capman is not None:
                self._capman.resume_global_capture()

    #: Every change is asked the same way: the request's text says which.
    chart = lens = aperture = _prompt

    def close(self) -> None:
        """Nothing held."""
