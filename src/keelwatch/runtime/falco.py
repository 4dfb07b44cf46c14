"""Falco's JSON alerts (``json_output: true``), one per line, and falcosidekick's webhook body.

An alert carries ``time``, ``rule``, ``priority``, ``source`` and the fields its rule's output
names under ``output_fields`` (a field the rule does not print is simply absent, and Falco writes
``null`` or ``<NA>`` for a field it could not fill). falcosidekick's webhook output POSTs the same
object (its ``FalcoPayload``: ``uuid``, ``output``, ``priority``, ``rule``, ``time``,
``output_fields``, ``source``, ``tags``, ``hostname``), one alert per request.

The event kind comes from ``evt.type``; an alert without it is not guessed at (the rule's name is
not a reliable witness of the syscall) and gives no event. Alerts of other sources
(``k8s_audit``, cloud plug-ins) give none either.
"""

from __future__ import annotations

from typing import Any

from keelwatch.runtime.base import MalformedEvent, decode_record, port, text
from keelwatch.runtime.events import EventKind, RuntimeEvent, parse_time

EXEC_TYPES = frozenset({"execve", "execveat"})
CONNECT_TYPES = frozenset({"connect", "sendto", "sendmsg"})
LISTEN_TYPES = frozenset({"listen", "bind", "accept", "accept4"})
OPEN_TYPES = frozenset({"open", "openat", "openat2", "open_by_handle_at"})
WRITE_TYPES = frozenset({"creat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat",
                         "rmdir", "link", "linkat", "symlink", "symlinkat", "truncate", "ftruncate", "chmod",
                         "fchmod", "fchmodat", "write", "pwrite", "writev", "pwritev"})
# Flags Falco renders for open's ``evt.arg.flags`` (``O_WRONLY|O_CREAT|O_CLOEXEC``).
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
NOT_AVAILABLE = "<NA>"


class FalcoSource:
    name = "falco"
    version = 1

    def parse_record(self, record: dict[str, Any]) -> list[RuntimeEvent]:
        fields = record.get("output_fields")
        if not isinstance(fields, dict):
            raise MalformedEvent("no output_fields object (is json_output on?)")
        if "time" not in record:
            raise MalformedEvent("no time")
        if not isinstance(record.get("rule"), str):
            raise MalformedEvent("no rule")
        source = record.get("source") or "syscall"
        if source != "syscall":
            return []
        try:
            when = parse_time(record["time"])
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from None
        evt_type = _field(fields, "evt.type")
        kind = _kind(evt_type, fields)
        if kind is None:
            return []
        container_id = _field(fields, "container.id")
        if container_id == "host":  # Falco's name for "not in a container"
            container_id = ""
        address, peer_port = "", None
        if kind in (EventKind.CONNECT, EventKind.LISTEN):
            # fd.sip/fd.sport are the server side: the peer for connect, ourselves for listen/accept.
            address = _field(fields, "fd.sip") or (_field(fields, "fd.rip") if kind is EventKind.CONNECT else "")
            peer_port = port(_value(fields, "fd.sport"), "fd.sport")
            if peer_port is None and kind is EventKind.CONNECT:
                peer_port = port(_value(fields, "fd.rport"), "fd.rport")
        path = ""
        if kind in (EventKind.OPEN, EventKind.WRITE):
            path = (_field(fields, "fd.name") or _field(fields, "evt.arg.name") or _field(fields, "evt.arg.path")
                    or _field(fields, "fs.path.name"))
        pid = _value(fields, "proc.pid")
        return [RuntimeEvent(
            time=when, sensor=self.name, kind=kind.value,
            container_id=container_id,
            namespace=_field(fields, "k8s.ns.name"),
            pod=_field(fields, "k8s.pod.name"),
            container_name=_field(fields, "k8s.container.name") or _field(fields, "container.name"),
            image=_field(fields, "container.image.repository"),
            image_digest=_digest(_field(fields, "container.image.digest")),
            node=text(record, "hostname"),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            executable=_field(fields, "proc.exepath") or _field(fields, "proc.exe"),
            parent=_field(fields, "proc.pexepath") or _field(fields, "proc.pname"),
            args=_field(fields, "proc.cmdline"),
            protocol=_field(fields, "fd.l4proto") if kind in (EventKind.CONNECT, EventKind.LISTEN) else "",
            address=address, port=peer_port, path=path,
            priority=text(record, "priority"), rule=record["rule"],
        )]

    def parse_webhook(self, body: bytes | str) -> list[RuntimeEvent]:
        """What falcosidekick's webhook output POSTs: one alert object per request."""
        return self.parse_record(decode_record(body))


def _value(fields: dict[str, Any], key: str) -> Any:
    value = fields.get(key)
    return None if value == NOT_AVAILABLE else value


def _field(fields: dict[str, Any], key: str) -> str:
    value = _value(fields, key)
    if value is None:
        return ""
    if isinstance(value, bool):
        raise MalformedEvent(f"output_fields[{key!r}] must be a string, not a boolean")
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedEvent(f"output_fields[{key!r}] must be a string, not {type(value).__name__}")


def _kind(evt_type: str, fields: dict[str, Any]) -> EventKind | None:
    if evt_type in EXEC_TYPES:
        return EventKind.EXEC
    if evt_type in CONNECT_TYPES:
        return EventKind.CONNECT
    if evt_type in LISTEN_TYPES:
        return EventKind.LISTEN
    if evt_type in WRITE_TYPES:
        return EventKind.WRITE
    if evt_type in OPEN_TYPES:
        is_write = _value(fields, "evt.is_open_write")
        flags = _field(fields, "evt.arg.flags")
        if is_write is True or str(is_write).lower() == "true" or any(f in flags for f in WRITE_FLAGS):
            return EventKind.WRITE
        return EventKind.OPEN
    return None


def _digest(value: str) -> str:
    return value if value.startswith("sha256:") else ""
