"""A pytest plugin that leaks one open file descriptor per session: a real leak for ``station soak`` to find.

Loaded into each soak run with ``-p tests.unit.soak_leak``; the descriptors are closed by ``release()``.
"""

from __future__ import annotations

import os

LEAKED: list[int] = []


def pytest_sessionfinish() -> None:
    LEAKED.append(os.open(os.devnull, os.O_RDONLY))


def release() -> None:
    while LEAKED:
        os.close(LEAKED.pop())
