"""The event-source protocol: a sensor's output, one record at a time, becomes ``RuntimeEvent``s.

A source only parses; it never opens files, sockets or HTTP bodies (``read_lines`` and the
service do). One record may give no event (a Falco alert about something keelwatch does not
baseline, Tetragon's ``process_exit``) or several; a record that cannot be read raises
``MalformedEvent`` and ``read_lines`` reports and skips it, so one bad line never sinks a stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from keelwatch.runtime.events import RuntimeEvent

# A sensor line longer than this is not an event but a runaway writer (or an attack on memory).
MAX_LINE_BYTES = 1 << 20
MAX_REPORTED_PROBLEMS = 100


class MalformedEvent(ValueError):
    """A record that is not valid JSON, or lacks what its format promises."""


class EventSource(Protocol):
    #: Registry name = module name = ``RuntimeEvent.sensor`` = ``--sensor`` value.
    name: str
    #: Bumped when the events made from the same input change.
    version: int

    def parse_record(self, record: dict[str, Any]) -> list[RuntimeEvent]:
        """The events in one decoded record. Raise MalformedEvent when it is not this format."""


@dataclass(slots=True)
class Problem:
    line: int  # 1-based line number in the stream
    reason: str


@dataclass(slots=True)
class ReadStats:
    records: int = 0
    events: int = 0
    ignored: int = 0  # well-formed records that give no event
    skipped: int = 0  # malformed records
    problems: list[Problem] = field(default_factory=list)  # the first MAX_REPORTED_PROBLEMS

    def skip(self, line: int, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(Problem(line, reason))


def decode_record(line: str | bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE_BYTES:
        raise MalformedEvent(f"record longer than {MAX_LINE_BYTES} bytes")
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise MalformedEvent(f"a record must be a JSON object, not {type(record).__name__}")
    return record


def read_lines(source: EventSource, lines: Iterable[str | bytes], stats: ReadStats | None = None,
               ) -> Iterator[RuntimeEvent]:
    """Events from JSON lines (blank lines are ignored); malformed lines are counted in ``stats``."""
    stats = stats if stats is not None else ReadStats()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        stats.records += 1
        try:
            events = source.parse_record(decode_record(line))
        except MalformedEvent as exc:
            stats.skip(number, str(exc))
            continue
        if not events:
            stats.ignored += 1
        stats.events += len(events)
        yield from events


# --- helpers the sources share ------------------------------------------------------------------


def text(record: dict[str, Any], key: str) -> str:
    """A string field, "" when absent or null; anything else is malformed."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedEvent(f"{key} must be a string, not {type(value).__name__}")


def port(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedEvent(f"{what} is not a port: {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MalformedEvent(f"{what} is not a port: {value!r}") from None
    if not 0 <= number <= 65535:
        raise MalformedEvent(f"{what} is not a port: {value!r}")
    return number


def digest_of(image_ref: str) -> str:
    """The manifest digest in ``repo@sha256:…``; "" when there is none (a bare image id is a config digest)."""
    _, at, digest = image_ref.rpartition("@")
    return digest if at and digest.startswith("sha256:") else ""


def split_container_id(value: str) -> tuple[str, str]:
    """``containerd://abc`` → (``containerd``, ``abc``); ``cri-o://`` → ``cri-o``; a bare id has no runtime."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return "", value
    return {"crio": "cri-o", "cri-o": "cri-o"}.get(scheme, scheme), rest
