"""Shared pieces of input validation: bounded file reading, safe string types, one-line errors.

Files from outside are read only if they are regular files and below a size limit (a FIFO or
``/dev/zero`` is refused at once, never read). Pydantic's errors are turned into ONE line that
lists every problem with its key path, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StrictFloat, StrictInt, StrictStr, ValidationError

#: Largest config/limits/baseline/record text file read (bytes).
MAX_TEXT_BYTES = 4_000_000
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_\-]+")
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


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


#: A string from outside: no control characters, bounded length.
SafeStr = Annotated[StrictStr, Field(max_length=512), AfterValidator(_no_control)]
#: A finite number (TOML/JSON int accepted as float; bool refused).
FiniteFloat = Annotated[StrictFloat, AfterValidator(_finite)]
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


# --- one-line error text --------------------------------------------------------------

def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not _BARE_KEY_RE.fullmatch(str(item)):
            parts.append(("." if parts else "") + '"' + str(item).encode("unicode_escape").decode() + '"')
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "top level"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_of(model: Any) -> dict[str, Any] | None:
    fields = getattr(model, "model_fields", None) or getattr(model, "__pydantic_fields__", None)
    return dict(fields) if fields else None


def _model_at(root: Any, loc: tuple[Any, ...]) -> Any:
    """The model class that holds the key at ``loc`` (for 'allowed' lists), or None."""
    model = root
    for item in loc:
        fields = _fields_of(model)
        if fields is None or item not in fields:
            return None
        model = _inner_model(fields[item].annotation)
    return model


def _inner_model(annotation: Any) -> Any:
    if _fields_of(annotation) is not None:
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


_TYPE_WORDS = {"float_type": "a number", "float_parsing": "a number", "int_type": "an integer",
               "int_from_float": "an integer", "int_parsing": "an integer", "string_type": "a string",
               "bool_type": "true or false", "dict_type": "a table", "model_type": "a table",
               "dataclass_type": "a table", "list_type": "a list", "tuple_type": "a list",
               "finite_number": "a finite number"}


def describe_error(error: dict[str, Any], root: Any) -> str:
    """One problem: ``key.path: what is wrong (what is allowed)``."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    if loc and loc[-1] == "[key]":  # a table key that is not one of the allowed names
        loc = loc[:-1]
    key = _key_path(loc)
    value = error.get("input")
    if kind == "missing":
        holder = _model_at(root, loc)
        return f"[{key}] missing" if holder is not None else f"{key}: missing"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        fields = _fields_of(_model_at(root, loc[:-1]))
        allowed = f" (allowed: {', '.join(sorted(fields))})" if fields else ""
        return f"{key}: unknown key{allowed}"
    if kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{key}: {_short(value)} not allowed (allowed: {expected})"
    if kind in _TYPE_WORDS:
        return f"{key}: {_short(value)} is not {_TYPE_WORDS[kind]}"
    message = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if isinstance(value, (dict, list, tuple)) or _fields_of(type(value)) is not None:
        return f"{key}: {message}"  # a table: its own keys say the rest
    return f"{key}: {_short(value)}: {message}"


def one_line(source: str, exc: ValidationError, root: Any) -> str:
    """Every problem of a validation error in one line that starts with ``source``."""
    problems = [describe_error(dict(e), root) for e in exc.errors()]
    problems = list(dict.fromkeys(problems))
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return f"{source}: {count}: " + "; ".join(problems)


def validate(model: type[BaseModel], data: Any, source: str, error: type[Exception]) -> Any:
    """``model.model_validate(data)``, or ``error`` with every problem in one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(one_line(source, exc, model)) from None
