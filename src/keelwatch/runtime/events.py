"""The normalised runtime event: what every sensor's output is turned into. Pure data, no I/O.

Falco, Tetragon and keelwatch's own agent describe the same few facts in different shapes; the
baseline and the runtime SBOM check only ever see ``RuntimeEvent``. The JSON form (``to_json`` /
``from_json``) is what ``keelwatch agent`` writes and ``keelwatch runtime ingest`` prints, so it is
an interface: fields are added, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    EXEC = "exec"  # a process started (executable, parent, args)
    OPEN = "open"  # a file was opened or mapped for reading (libraries, jars, scripts)
    CONNECT = "connect"  # an outbound connection (peer address and port)
    LISTEN = "listen"  # a listening socket (address and port are the local, bound ones)
    WRITE = "write"  # a file was opened for writing, created, renamed or removed


KINDS = frozenset(k.value for k in EventKind)


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    time: datetime  # when the sensor saw it (timezone-aware, UTC)
    sensor: str  # the event source's registry name: falco, tetragon, agent
    kind: str  # an EventKind value
    container_id: str = ""  # as the runtime names it, without a scheme ("containerd://" is in ``runtime``)
    runtime: str = ""  # containerd, cri-o, docker, podman; "" when the sensor does not say
    namespace: str = ""  # Kubernetes namespace
    pod: str = ""
    container_name: str = ""
    workload: str = ""  # the owning workload when the sensor knows it (Tetragon does; Falco does not)
    image: str = ""  # image repository (or reference) as reported
    image_digest: str = ""  # manifest digest (sha256:…) when the sensor reports one; never guessed
    node: str = ""  # node or host name
    pid: int | None = None
    executable: str = ""  # absolute path of the process's executable
    parent: str = ""  # the parent process's executable
    args: str = ""  # the command line as the sensor reports it (one string)
    protocol: str = ""  # tcp, udp (connect/listen)
    address: str = ""  # peer address (connect) or bound address (listen)
    port: int | None = None  # peer port (connect) or listening port (listen)
    path: str = ""  # the file (open/write)
    priority: str = ""  # the sensor's own priority or action, kept raw
    rule: str = ""  # the sensor's rule or policy name, kept raw

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; empty fields are left out (None and "")."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            out[f.name] = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimeEvent:
        """The inverse of ``to_json``; raises ValueError on a missing or mistyped field."""
        if not isinstance(data, dict):
            raise ValueError("an event must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        for required in ("time", "sensor", "kind"):
            if not data.get(required):
                raise ValueError(f"missing {required!r}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "time":
                values[name] = parse_time(value)
            elif name in ("pid", "port"):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValueError(f"{name} must be an integer, not {value!r}")
                values[name] = value
            else:
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string, not {value!r}")
                values[name] = value
        if values["kind"] not in KINDS:
            raise ValueError(f"unknown kind {values['kind']!r}")
        return cls(**values)


def parse_time(value: Any) -> datetime:
    """RFC 3339 text (nanoseconds allowed, ``Z`` or an offset) or epoch nanoseconds → aware UTC datetime.

    Sensors write nanosecond fractions (Falco, Tetragon); Python keeps microseconds, so the rest
    is cut, not rounded (an event must never move past the next one).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1e9 if value > 1e14 else float(value)  # evt.time is epoch nanoseconds
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a time: {value!r}")
    if len(value) == 30 and value[19] == "." and value[29] == "Z" and value[26:29].isdigit():
        # The shape both Falco and Tetragon write (RFC 3339, nanoseconds, UTC): the fast path.
        try:
            return datetime.fromisoformat(value[:26] + "+00:00")
        except ValueError:
            raise ValueError(f"not a time: {value!r}") from None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits or (rest and rest[0] not in "+-"):
            raise ValueError(f"not a time: {value!r}")
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"time without a timezone: {value!r}")
    return parsed.astimezone(UTC)
