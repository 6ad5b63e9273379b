"""Shared pieces of input validation: bounded file reading, safe string types, one-line errors.

Files from outside are read only if they are regular files and below a size limit (a FIFO or
``/dev/zero`` is refused at once, never read). Pydantic's errors are turned into ONE line that
lists every problem with its key path, the value and what is allowed.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StrictInt, StrictStr, ValidationError

from calibration.models import FiniteFloat, describe_error, one_line

#: Largest config/limits/baseline/record text file read (bytes).
MAX_TEXT_BYTES = 4_000_000
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def read_bytes_limited(path: str | Path, what: str, error: type[Exception],
                       max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``error`` (one line) otherwise.

    Opened non-blocking so that a FIFO without a writer cannot hang the open; a device
    (``/dev/zero``), a folder or a FIFO is refused before anything is read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot open {what} ({exc.strerror or exc.__class__.__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: not a regular file; a {what} must be a file")
        if info.st_size > max_bytes:
            raise error(f"{path}: {info.st_size} bytes; a {what} is at most {max_bytes} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.__class__.__name__})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise error(f"{path}: a {what} is at most {max_bytes} bytes")
    return data


def read_text_limited(path: str | Path, what: str, error: type[Exception],
                      max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; ``error`` (one line) otherwise."""
    data = read_bytes_limited(path, what, error, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text; a {what} is a text file") from None


def _no_control(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError("control characters (newline, tab, NUL...) are not allowed")
    return value


#: A string from outside: no control characters, bounded length.
SafeStr = Annotated[StrictStr, Field(max_length=512), AfterValidator(_no_control)]
StrictInteger = StrictInt


def pattern(regex: str, allowed: str) -> AfterValidator:
    """An after-validator: the whole string matches ``regex`` (ASCII), else ``allowed`` is named."""
    compiled = re.compile(regex, re.ASCII)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"allowed: {allowed}")
        return value

    return AfterValidator(check)


def normal_device_path(path: str) -> bool:
    """True for an absolute, normalised ``/dev/...`` path without ``..`` (no escape from /dev)."""
    return (path.startswith("/dev/") and posixpath.normpath(path) == path
            and ".." not in path.split("/") and "//" not in path)


def validate(model: type[BaseModel], data: Any, source: str, error: type[Exception]) -> Any:
    """``model.model_validate(data)``, or ``error`` with every problem in one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(one_line(source, exc, model)) from None


__all__ = ["MAX_TEXT_BYTES", "read_bytes_limited", "read_text_limited", "SafeStr", "FiniteFloat", "StrictInteger",
           "pattern", "normal_device_path", "describe_error", "one_line", "validate"]
