"""Shared pydantic pieces: finite numbers, and validation errors as ONE line (every problem with its key path,
the value and what is allowed).

``one_line("station.toml", exc, Model)`` gives ``station.toml: 3 problems: [meter] missing;
light.resourse: unknown key (allowed: dialect, interlock, resource, timeout_s); mount.timeout_s: 'x' is
not a number``. Shared by the station's file models and the lens profile's (``calibration`` stays free
of ``station``).
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, StrictFloat, ValidationError

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_\-]+")


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
        guess = f", did you mean {error['did_you_mean']}?" if error.get("did_you_mean") else ""
        return f"{key}: unknown key{guess}{allowed}"
    if kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{key}: {_short(value)} not allowed (allowed: {expected})"
    if kind in _TYPE_WORDS:
        return f"{key}: {_short(value)} is not {_TYPE_WORDS[kind]}"
    message = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if isinstance(value, (dict, list, tuple)) or _fields_of(type(value)) is not None:
        return f"{key}: {message}"  # a table: its own keys say the rest
    return f"{key}: {_short(value)}: {message}"


def _misspellings(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A misspelt required key is one mistake, not two: an unknown key close to a missing key of the same
    table becomes ``unknown key, did you mean ...?`` and the missing key is not reported again."""
    missing = {tuple(e["loc"]): e for e in errors if e.get("type") == "missing" and e.get("loc")}
    dropped: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") not in ("extra_forbidden", "unexpected_keyword_argument") or not loc:
            continue
        names = [str(m[-1]) for m in missing if m[:-1] == loc[:-1] and m not in dropped]
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.75)
        if close:
            error["did_you_mean"] = close[0]
            dropped.add((*loc[:-1], close[0]))
    return [e for e in errors if not (e.get("type") == "missing" and tuple(e["loc"]) in dropped)]


def one_line(source: str, exc: ValidationError, root: Any) -> str:
    """Every problem of a validation error in one line that starts with ``source``."""
    problems = [describe_error(e, root) for e in _misspellings([dict(e) for e in exc.errors()])]
    problems = list(dict.fromkeys(problems))
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return f"{source}: {count}: " + "; ".join(problems)




def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


#: A finite number (a JSON/TOML integer is accepted as a float; bool, NaN and infinities refused).
FiniteFloat = Annotated[StrictFloat, AfterValidator(_finite)]
