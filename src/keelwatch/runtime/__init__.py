"""Runtime sensors: one event source per file, one class each, listed here one line per source.

The registry is an explicit tuple (no import-time self-registration): a duplicate name fails at
import, and ``tests/runtime/test_registry.py`` fails if a source module is not listed. The name is
the module's, ``RuntimeEvent.sensor`` and ``keelwatch runtime ingest --sensor``.
"""

from __future__ import annotations

from keelwatch.runtime.agent import AgentSource
from keelwatch.runtime.base import EventSource, MalformedEvent, ReadStats, read_lines
from keelwatch.runtime.events import EventKind, RuntimeEvent
from keelwatch.runtime.falco import FalcoSource
from keelwatch.runtime.tetragon import TetragonSource

SOURCES: tuple[EventSource, ...] = (
    AgentSource(),
    FalcoSource(),
    TetragonSource(),
)


def _index(sources: tuple[EventSource, ...]) -> dict[str, EventSource]:
    by_name: dict[str, EventSource] = {}
    for source in sources:
        if source.name in by_name:
            raise RuntimeError(f"event source {source.name!r} registered twice")
        by_name[source.name] = source
    return by_name


SOURCES_BY_NAME = _index(SOURCES)


def get(name: str) -> EventSource:
    try:
        return SOURCES_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown sensor {name!r} (known: {', '.join(SOURCES_BY_NAME)})") from None


__all__ = ["SOURCES", "SOURCES_BY_NAME", "EventKind", "EventSource", "MalformedEvent", "ReadStats", "RuntimeEvent",
           "get", "read_lines"]
