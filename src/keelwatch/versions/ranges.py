"""OSV range evaluation: is a version inside an ``ECOSYSTEM`` or ``SEMVER`` range's ``events``?

This is the algorithm of the OSV schema's "Evaluation" section: a version is outside unless it is
before some ``limit`` (no limit means ``limit: "*"``, infinity); then the events are sorted by
version and walked, and the last event the version has reached decides — ``introduced`` (v ≥ it)
opens, ``fixed`` (v ≥ it) closes, ``last_affected`` (v > it) closes. ``introduced: "0"`` sorts
before every version. At equal versions ``introduced`` is walked first, so ``introduced: X,
fixed: X`` is empty and ``introduced: X, last_affected: X`` holds exactly X.

Data that cannot be evaluated (an event that is not exactly one known kind, a range with no
``introduced``, a version that does not parse) raises ``VersionError``: the caller records an
unknown, never a silent "not affected".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from keelwatch.errors import VersionError

_WALK_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2}


def _position(entry: tuple[Any, int, str]) -> tuple[Any, ...]:
    bound, order, _ = entry
    # introduced "0" (bound None) sorts before every version and is never compared with a key.
    return (0, order) if bound is None else (1, bound, order)


def evaluate(key: Callable[[str], Any], version: str, events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``version`` is affected by one OSV range, ordering with ``key`` (a cached sort key)."""
    target = key(version)
    walk: list[tuple[Any, int, str]] = []
    limits: list[Any] = []
    unbounded = False
    for event in events:
        if not isinstance(event, Mapping) or len(event) != 1:
            raise VersionError(f"not an OSV event: {event!r}",
                               hint="each event has exactly one of introduced, fixed, last_affected, limit")
        ((kind, value),) = event.items()
        if not isinstance(value, str):
            raise VersionError(f"OSV event {kind} is not a string: {value!r}")
        if kind == "limit":
            if "*" in value:  # the schema's spelling of infinity
                unbounded = True
            else:
                limits.append(key(value))
            continue
        if kind not in _WALK_ORDER:
            raise VersionError(f"unknown OSV event kind {kind!r}",
                               hint="expected introduced, fixed, last_affected or limit")
        bound = None if kind == "introduced" and value == "0" else key(value)
        walk.append((bound, _WALK_ORDER[kind], kind))
    if not any(kind == "introduced" for _, _, kind in walk):
        raise VersionError("OSV range has no 'introduced' event", hint="the schema requires at least one")
    if limits and not unbounded and not any(target < limit for limit in limits):
        return False
    affected = False
    for bound, _, kind in sorted(walk, key=_position):
        if kind == "introduced":
            if bound is None or target >= bound:
                affected = True
        elif kind == "fixed":
            if target >= bound:
                affected = False
        elif target > bound:  # last_affected
            affected = False
    return affected
