"""Tetragon's JSON export (``export-stdout``, ``/var/run/cilium/tetragon/tetragon.log``), one event per line.

Each line holds one event under its type (``process_exec``, ``process_exit``, ``process_kprobe``,
``process_loader`` …) beside ``node_name`` and ``time``. The process block carries ``binary``,
``arguments``, ``pid`` and, for pods, ``pod.namespace``, ``pod.name``, ``pod.workload`` and
``pod.container`` (``id`` as ``containerd://…``, ``name``, ``image.id`` as ``repo@sha256:…``,
``image.name``); the event's ``parent`` block is the parent process.

Kprobe events are read by the argument they carry, as the tracing policies in Tetragon's docs
produce them: a ``sock_arg`` (``tcp_connect``, ``udp_sendmsg``, ``inet_csk_listen_start``), a
``sockaddr_arg`` (``security_socket_connect``/``bind``), a ``file_arg``/``path_arg``
(``security_file_permission`` with the MAY_WRITE mask, ``security_mmap_file``, path hooks) or the
``string_arg`` path of an ``openat`` syscall with its flags. ``process_exit`` and hooks that fit
none of these give no event.
"""

from __future__ import annotations

from typing import Any

from keelwatch.runtime.base import MalformedEvent, digest_of, port, split_container_id, text
from keelwatch.runtime.events import EventKind, RuntimeEvent, parse_time

IGNORED_TYPES = frozenset({"process_exit", "process_tracepoint", "process_uprobe", "process_lsm", "process_usdt",
                           "process_throttle", "rate_limit_info", "test"})
MAY_WRITE, MAY_READ, MAY_APPEND = 2, 4, 8
O_ACCMODE, O_CREAT, O_TRUNC, O_APPEND = 0o3, 0o100, 0o1000, 0o2000
WRITE_HOOK_WORDS = ("write", "unlink", "rename", "truncate", "mkdir", "create", "link", "chmod", "chown")
PROTOCOLS = {"IPPROTO_TCP": "tcp", "IPPROTO_UDP": "udp", "IPPROTO_SCTP": "sctp"}


class TetragonSource:
    name = "tetragon"
    version = 1

    def parse_record(self, record: dict[str, Any]) -> list[RuntimeEvent]:
        if "time" not in record:
            raise MalformedEvent("no time")
        types = [key for key in record if key.startswith("process_") or key in IGNORED_TYPES]
        if len(types) != 1:
            raise MalformedEvent(f"expected one event type, found {types or 'none'}")
        event_type = types[0]
        body = record[event_type]
        if not isinstance(body, dict):
            raise MalformedEvent(f"{event_type} must be an object")
        if event_type in IGNORED_TYPES:
            return []
        process = body.get("process")
        if not isinstance(process, dict):
            raise MalformedEvent(f"{event_type} has no process object")
        try:
            when = parse_time(record["time"])
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from None
        base = self._base(record, body, process, when)
        if event_type == "process_exec":
            return [_with(base, kind=EventKind.EXEC)]
        if event_type == "process_loader":
            path = text(body, "path")
            return [_with(base, kind=EventKind.OPEN, path=path)] if path else []
        if event_type == "process_kprobe":
            return self._kprobe(base, body)
        return []

    def _base(self, record: dict[str, Any], body: dict[str, Any], process: dict[str, Any], when: Any) -> dict[str, Any]:
        pod = _object(process, "pod")
        container = _object(pod, "container")
        image = _object(container, "image")
        runtime, container_id = split_container_id(text(container, "id"))
        parent = body.get("parent")
        pid = process.get("pid")
        return {
            "time": when, "sensor": self.name,
            "container_id": container_id, "runtime": runtime,
            "namespace": text(pod, "namespace"), "pod": text(pod, "name"),
            "container_name": text(container, "name"), "workload": text(pod, "workload"),
            "image": text(image, "name"), "image_digest": digest_of(text(image, "id")),
            "node": text(record, "node_name"),
            "pid": pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            "executable": text(process, "binary"), "args": text(process, "arguments"),
            "parent": text(parent, "binary") if isinstance(parent, dict) else "",
            "priority": text(body, "action"), "rule": text(body, "policy_name"),
        }

    def _kprobe(self, base: dict[str, Any], body: dict[str, Any]) -> list[RuntimeEvent]:
        function = text(body, "function_name")
        if not function:
            raise MalformedEvent("process_kprobe has no function_name")
        args = body.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, dict) for a in args):
            raise MalformedEvent("process_kprobe args must be a list of objects")
        lowered = function.lower()
        for arg in args:
            if "sock_arg" in arg:
                sock = _object(arg, "sock_arg")
                protocol = PROTOCOLS.get(text(sock, "protocol"), text(sock, "protocol").lower())
                if "close" in lowered:
                    return []
                if "listen" in lowered or "accept" in lowered:
                    return [_with(base, kind=EventKind.LISTEN, protocol=protocol, address=text(sock, "saddr"),
                                  port=port(sock.get("sport"), "sport"))]
                return [_with(base, kind=EventKind.CONNECT, protocol=protocol, address=text(sock, "daddr"),
                              port=port(sock.get("dport"), "dport"))]
            if "sockaddr_arg" in arg:
                sockaddr = _object(arg, "sockaddr_arg")
                kind = EventKind.LISTEN if "bind" in lowered or "listen" in lowered else EventKind.CONNECT
                return [_with(base, kind=kind, address=text(sockaddr, "addr"),
                              port=port(sockaddr.get("port"), "port"))]
        for arg in args:
            for key in ("file_arg", "path_arg"):
                if key in arg:
                    path = text(_object(arg, key), "path")
                    if not path:
                        return []
                    return [_with(base, kind=_file_kind(lowered, args), path=path)]
        if "open" in lowered:
            paths = [a["string_arg"] for a in args if isinstance(a.get("string_arg"), str)]
            if paths:
                flags = [a["int_arg"] for a in args if isinstance(a.get("int_arg"), int)]
                writing = len(flags) >= 2 and (flags[-1] & O_ACCMODE or flags[-1] & (O_CREAT | O_TRUNC | O_APPEND))
                return [_with(base, kind=EventKind.WRITE if writing else EventKind.OPEN, path=paths[0])]
        return []


def _file_kind(function: str, args: list[dict[str, Any]]) -> EventKind:
    if function == "security_file_permission":
        masks = [a["int_arg"] for a in args if isinstance(a.get("int_arg"), int)]
        return EventKind.WRITE if masks and masks[0] & (MAY_WRITE | MAY_APPEND) else EventKind.OPEN
    if any(word in function for word in WRITE_HOOK_WORDS):
        return EventKind.WRITE
    return EventKind.OPEN


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} must be an object")
    return value


def _with(base: dict[str, Any], *, kind: EventKind, **extra: Any) -> RuntimeEvent:
    return RuntimeEvent(kind=kind.value, **base, **extra)
