"""Mission profiles and their registry.

Each module in this package describes one mission. ``detect(header)`` picks the
profile from TELESCOP/INSTRUME; unknown missions get :data:`GENERIC` with a
warning. Adding a mission means adding one module and listing it in
``_MODULES``.
"""
from __future__ import annotations

import importlib
import logging
import warnings

from .base import MissionProfile, linear_energy

__all__ = ["MissionProfile", "linear_energy", "register", "get_profile", "profile_of", "detect", "profiles",
           "event_extensions", "GENERIC", "mission_name", "telescop_of", "screening_of"]

log = logging.getLogger("xcube.missions")

_REGISTRY: dict[str, MissionProfile] = {}
_MODULES = ["xmm", "chandra", "nustar", "nicer", "swift", "rxte", "hxmt", "erosita"]

GENERIC = MissionProfile(
    name="generic",
    mission="UNKNOWN",
    instrument="UNKNOWN",
    telescop=(),
    instrume=("*",),
    pi_to_kev=None,
    energy_note="unknown mission, no PI-to-energy conversion",
    pi_range=(0, 2**31 - 1),
    energy_range=(0.0, float("inf")),
    gti_extensions=("GTI", "STDGTI*", "GTI*"),
)


def register(profile: MissionProfile) -> MissionProfile:
    """Add a profile to the registry (keyed by ``profile.name``) and return it.
    Eager."""
    _REGISTRY[profile.name] = profile
    return profile


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:  # a profile module not written yet
            if exc.name != f"{__name__}.{mod}":
                raise


def profiles() -> dict[str, MissionProfile]:
    """All registered profiles, by name. Eager (loads the profiles on first
    use)."""
    _load_all()
    return dict(_REGISTRY)


def event_extensions() -> tuple[str, ...]:
    """Event-table extension names of all registered profiles, EVENTS first.
    Eager."""
    names = ["EVENTS"]
    for prof in profiles().values():
        names += [n for n in prof.events_extensions if n not in names]
    return tuple(names)


def get_profile(name: str) -> MissionProfile:
    """Profile by registry name (e.g. ``"xmm-pn"``, ``"nustar-fpma"``). Eager
    (a look-up; loads the profiles on first use)."""
    _load_all()
    if name == "generic":
        return GENERIC
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise KeyError(f"unknown mission profile {name!r}; known: {sorted(_REGISTRY)}") from None


def profile_of(events) -> MissionProfile:
    """The mission profile of an EventList or product (its ``attrs["profile"]``).

    The one policy for every caller: an object without the attribute (a
    hand-made Dataset) is :data:`GENERIC`, which has no PI-to-energy
    conversion, no screening and no CCD quadrants; an unknown name raises
    ``KeyError`` naming the object's source file. Eager, cheap.
    """
    attrs = getattr(events, "attrs", None) or {}
    name = attrs.get("profile")
    if not name:
        return GENERIC
    try:
        return get_profile(str(name))
    except KeyError as exc:
        src = attrs.get("source") or "events"
        raise KeyError(f"{src}: {exc.args[0]}") from None


def screening_of(events) -> str | None:
    """The mission's default screening expression of an EventList (its
    profile's :meth:`~MissionProfile.screening_for` its attrs: the data mode
    picks it where the profile says so, e.g. Swift XRT WT ``GRADE <= 2``,
    PC ``GRADE <= 12``), or None. Every screening caller asks here. Eager
    (attrs only; no event is read)."""
    return profile_of(events).screening_for(getattr(events, "attrs", None) or {})


def mission_name(telescop: str) -> str:
    """The mission as event lists name it (``"XMM-Newton"`` for TELESCOP
    ``XMM``, and for ``XMM-NEWTON``, the mission's own name in any case), so
    that products of one mission group together; ``telescop`` itself for a
    mission without a profile. Eager (a look-up)."""
    _load_all()
    t = str(telescop or "").strip()
    for prof in _REGISTRY.values():
        if t.upper() in prof.telescop or t.upper() == prof.mission.upper():
            return prof.mission
    return t


def telescop_of(mission: str) -> str:
    """The TELESCOP keyword a mission's own files carry (``"XMM"`` for
    ``"XMM-Newton"``): the profile's first TELESCOP, else ``mission`` in
    upper case (``"UNKNOWN"`` for none). Eager (a look-up)."""
    _load_all()
    m = str(mission or "").strip()
    for prof in _REGISTRY.values():
        if prof.telescop and m.upper() in (prof.mission.upper(), *prof.telescop):
            return prof.telescop[0]
    return m.upper() or "UNKNOWN"


def detect(header, path: str = "<header>", instrument: str | None = None) -> MissionProfile:
    """Pick the profile for a FITS header from TELESCOP and INSTRUME.

    ``instrument`` (a registry name) overrides detection. Unknown missions give
    the generic profile and a warning naming the file. An event table the
    profile knows to be raw, undecoded data (RXTE ``XTE_SE`` with a packed
    ``Event`` column and no PHA) raises ``ValueError`` naming the file
    (:meth:`MissionProfile.check_table`).
    Eager (header keywords only).
    """
    if instrument is not None:
        prof = get_profile(instrument)
        prof.check_table(header, path)
        return prof
    _load_all()
    telescop = str(header.get("TELESCOP", "") or "")
    instrume = str(header.get("INSTRUME", "") or "")
    for prof in _REGISTRY.values():
        if prof.matches(telescop, instrume):
            prof.check_table(header, path)
            return prof
    warnings.warn(
        f"{path}: unknown mission TELESCOP={telescop!r} INSTRUME={instrume!r}; using the generic profile "
        "(no PI-to-energy conversion). Pass instrument=<profile name> to choose one.",
        stacklevel=3,
    )
    return GENERIC
