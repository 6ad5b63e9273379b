"""One interface for every procedure's result (issue 11, item 2): what the plans' runners and the recorder read.

A result gives, the same way whatever it measured:

- ``measurements()``: its values by name, a ``@measures`` method (``station.measurements``) declaring them;
- ``attachments()``: the captures a person would rather look at, name -> PNG;
- ``figures()``: the plots drawn from it (MTF curves, photon transfer, distortion field...), name -> PNG;
- ``PROFILE_SECTION``: the lens profile section it fills (one of ``calibration.profile.SECTIONS``) or None,
  and ``profile_section()`` its content (None when it fills none);
- ``phone_entries()``: what goes into the phone's calibration blob at its case, key -> value
  (``station.procedures.calibration_path``).

``ResultParts`` gives the optional parts' defaults (nothing to attach, draw, keep or write); a result class
derives from it and overrides what it has. ``store_result`` puts a result's section and phone entries into its
case's results, and an unknown section is an error naming it, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class ProcedureResult(Protocol):
    """What every procedure result meets (``isinstance`` checks it at run time)."""

    PROFILE_SECTION: ClassVar[str | None]

    def measurements(self) -> Mapping[str, float]: ...

    def attachments(self) -> dict[str, bytes]: ...

    def figures(self) -> dict[str, bytes]: ...

    def profile_section(self) -> dict[str, Any] | None: ...

    def phone_entries(self) -> dict[str, Any]: ...


class ResultParts:
    """Defaults of a result's optional parts: no pictures, no figures, no profile section, no phone entries."""

    #: The lens profile section ``profile_section`` fills (``calibration.profile.SECTIONS``), or None.
    PROFILE_SECTION: ClassVar[str | None] = None

    def attachments(self) -> dict[str, bytes]:
        """The captures to attach to the report (name -> PNG): a result's ``pictures``, when it keeps some."""
        return dict(getattr(self, "pictures", None) or {})

    def figures(self) -> dict[str, bytes]:
        """The plots drawn from the result (name -> PNG)."""
        return {}

    def profile_section(self) -> dict[str, Any] | None:
        """The content of the profile section ``PROFILE_SECTION``."""
        return None

    def phone_entries(self) -> dict[str, Any]:
        """Key -> value in the phone's calibration blob at the result's case."""
        return {}


def check_section_name(name: str) -> str:
    """``name`` if the lens profile schema knows it; ``ValueError`` naming it and the known ones otherwise."""
    from calibration.profile import SECTIONS

    if name not in SECTIONS:
        raise ValueError(f"profile section {name!r} is unknown to the profile schema "
                         f"(calibration.profile.SECTIONS: {', '.join(SECTIONS)})")
    return name


def _merge(into: MutableMapping[str, Any], content: Mapping[str, Any]) -> None:
    """``content`` into ``into``: nested dicts merged key by key (an SFR's apertures add up), the rest replaced."""
    for key, value in content.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), MutableMapping):
            _merge(into[key], value)
        else:
            into[key] = value


def store_result(sections: MutableMapping[str, Any], phone: MutableMapping[str, Any], result: ProcedureResult
                 ) -> None:
    """A result's profile section (merged into ``sections[PROFILE_SECTION]``) and phone entries (into ``phone``).
    ``TypeError`` for an object that is no ``ProcedureResult``; ``ValueError`` naming a section the profile
    schema does not know, or a result that gives a section without naming it."""
    if not isinstance(result, ProcedureResult):
        raise TypeError(f"{type(result).__name__} is not a procedure result (station.procedures.result)")
    content = result.profile_section()
    name = result.PROFILE_SECTION
    if content is not None:
        if name is None:
            raise ValueError(f"{type(result).__name__} gives a profile section but names none (PROFILE_SECTION)")
        _merge(sections.setdefault(check_section_name(name), {}), content)
    phone.update(result.phone_entries())
