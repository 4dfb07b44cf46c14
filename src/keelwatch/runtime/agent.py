"""``keelwatch agent``: what runs on a node that has no sensor, read from ``/proc``.

For each process: its container (from ``/proc/PID/cgroup``), ``exe``, ``cmdline``, parent, the
shared objects, jars and Python files it has mapped (``maps``) or open (``fd``), and its TCP/UDP
sockets (``net/tcp``, ``tcp6``, ``udp``, ``udp6`` of its network namespace, joined to its ``fd``
links ``socket:[INODE]``). ``Sampler`` turns successive readings into events and reports only
what changed. The root is configurable so a node agent can read a host's ``/proc`` mounted
elsewhere, and tests can read a fixture tree.

Processes come and go while they are read: whatever vanishes half-way (ENOENT, ESRCH, EACCES) is
skipped, never raised. A Python file that was imported and closed leaves no trace in ``/proc``;
the script named on a Python command line is reported (resolved against the process's ``cwd``),
other imports only while they are open.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import posixpath
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from keelwatch.runtime.base import MalformedEvent
from keelwatch.runtime.events import EventKind, RuntimeEvent

LOADABLE_SUFFIXES = (".so", ".jar", ".war", ".py", ".pyc", ".node")
NET_TABLES = (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp"))
TCP_ESTABLISHED, TCP_SYN_SENT, TCP_LISTEN, UDP_UNCONNECTED = "01", "02", "0A", "07"
_GONE = (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError)

# --- containers from cgroup paths -------------------------------------------------------------------
#
# What the runtimes write (one line per hierarchy in cgroup v1, one ``0::`` line in v2):
#   Docker, cgroupfs driver (v1/v2)       12:memory:/docker/<id>           0::/docker/<id>
#   Docker, systemd driver                0::/system.slice/docker-<id>.scope
#   containerd under the kubelet, systemd 0::/kubepods.slice/kubepods-besteffort.slice/
#                                            kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
#   containerd/Docker, kubelet cgroupfs   4:cpu,cpuacct:/kubepods/burstable/pod<uid>/<id>
#   CRI-O, systemd / cgroupfs             .../crio-<id>.scope     /kubepods/pod<uid>/crio-<id>
#   CRI-O's conmon (not in the container) .../crio-conmon-<id>.scope
#   Podman                                0::/machine.slice/libpod-<id>.scope

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCOPE = re.compile(r"(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope")
_CRIO_PLAIN = re.compile(r"crio-([0-9a-f]{64})")
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_SCOPE_RUNTIMES = {"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o", "libpod": "podman"}


@dataclass(frozen=True, slots=True)
class ContainerRef:
    id: str
    runtime: str = ""  # docker, containerd, cri-o, podman; "" when the path does not say
    pod_uid: str = ""  # the Kubernetes pod UID, dashed, when the path holds it


def container_from_cgroup_path(path: str) -> ContainerRef | None:
    """The container a cgroup path belongs to (the innermost one when containers nest)."""
    parts = [p for p in path.split("/") if p]
    uid_match = _POD_UID.search(path)
    pod_uid = uid_match.group(1).replace("_", "-") if uid_match else ""
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if part.startswith("crio-conmon-"):
            return None  # CRI-O's monitor process sits beside the container, not in it
        if m := _SCOPE.fullmatch(part):
            return ContainerRef(m.group(2), _SCOPE_RUNTIMES[m.group(1)], pod_uid)
        if m := _CRIO_PLAIN.fullmatch(part):
            return ContainerRef(m.group(1), "cri-o", pod_uid)
        if _HEX64.fullmatch(part):
            parent = parts[index - 1] if index else ""
            return ContainerRef(part, "docker" if parent == "docker" else "", pod_uid)
    return None


def container_from_cgroup(content: str) -> ContainerRef | None:
    """``/proc/PID/cgroup`` → the container, from whichever hierarchy names one (v1 or v2)."""
    for line in content.splitlines():
        _, _, rest = line.partition(":")
        _, sep, path = rest.partition(":")
        if sep and (found := container_from_cgroup_path(path)):
            return found
    return None


# --- sockets -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Socket:
    protocol: str  # tcp or udp
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str  # the kernel's hex state (01 established, 0A listen, …)
    inode: int


def decode_address(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` → (``127.0.0.1``, 8080): the kernel prints each 32-bit word in host order."""
    hex_ip, _, hex_port = text.partition(":")
    raw = bytes.fromhex(hex_ip)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(raw)
    elif len(raw) == 16:
        v6 = ipaddress.IPv6Address(raw)
        address = v6.ipv4_mapped or v6
    else:
        raise ValueError(f"not an address: {text!r}")
    return str(address), int(hex_port, 16)


def parse_net_table(content: str, protocol: str) -> dict[int, Socket]:
    """One ``/proc/net/{tcp,tcp6,udp,udp6}`` table → sockets by inode (bad lines are skipped)."""
    sockets: dict[int, Socket] = {}
    for line in content.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            local = decode_address(fields[1])
            remote = decode_address(fields[2])
            inode = int(fields[9])
        except ValueError:
            continue
        if inode:
            sockets[inode] = Socket(protocol, local[0], local[1], remote[0], remote[1], fields[3].upper(), inode)
    return sockets


# --- processes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int
    start: int  # start time in clock ticks since boot: (pid, start) survives pid reuse
    exe: str
    cmdline: tuple[str, ...]
    container: ContainerRef | None
    files: frozenset[str]  # libraries, jars and Python files mapped or open
    sockets: tuple[Socket, ...]


@dataclass(slots=True)
class ReaderStats:
    processes: int = 0
    vanished: int = 0  # processes gone (or unreadable) before their core files could be read
    partial: int = 0  # processes whose maps, fds or sockets could not all be read


def is_loadable(path: str) -> bool:
    base = posixpath.basename(path)
    return base.endswith(LOADABLE_SUFFIXES) or ".so." in base


def python_script(exe: str, argv: tuple[str, ...], cwd: str) -> str:
    """The script a Python command line runs (``python3 -u app.py``), absolute; "" when none."""
    names = (posixpath.basename(exe), posixpath.basename(argv[0]) if argv else "")
    if not any(n.startswith("python") for n in names):
        return ""
    for arg in argv[1:]:
        if arg in ("-c", "-m", "-"):
            return ""
        if arg.startswith("-"):
            continue
        if not arg.endswith(".py"):
            return ""
        return posixpath.normpath(posixpath.join(cwd, arg)) if cwd else arg
    return ""


class ProcReader:
    """Reads a ``/proc``-shaped tree; every method tolerates processes vanishing mid-read."""

    def __init__(self, root: str = "/proc"):
        self.root = root
        self.stats = ReaderStats()
        self._net_cache: dict[str, dict[int, Socket]] = {}

    def pids(self) -> list[int]:
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def processes(self) -> Iterator[ProcessInfo]:
        """Every readable process, one pass; network tables are read once per network namespace."""
        self._net_cache = {}
        for pid in self.pids():
            info = self.process(pid)
            if info is not None:
                yield info

    def process(self, pid: int) -> ProcessInfo | None:
        base = f"{self.root}/{pid}"
        try:
            stat = _read_text(f"{base}/stat")
            cmdline_raw = _read_bytes(f"{base}/cmdline")
        except _GONE:
            self.stats.vanished += 1
            return None
        try:
            _, _, after = stat.rpartition(")")
            fields = after.split()
            ppid, start = int(fields[1]), int(fields[19])
        except (IndexError, ValueError):
            self.stats.vanished += 1  # a truncated stat is a process caught while exiting
            return None
        exe = _readlink(f"{base}/exe").removesuffix(" (deleted)")
        cmdline = tuple(os.fsdecode(a) for a in cmdline_raw.split(b"\0") if a) if cmdline_raw else ()
        if not exe and not cmdline:
            return None  # a kernel thread: no executable, nothing to baseline
        partial = False
        try:
            container = container_from_cgroup(_read_text(f"{base}/cgroup"))
        except _GONE:
            container, partial = None, True
        files: set[str] = set()
        try:
            for line in _read_text(f"{base}/maps").splitlines():
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].removesuffix(" (deleted)")
                    if is_loadable(path):
                        files.add(path)
        except _GONE:
            partial = True
        socket_inodes: list[int] = []
        try:
            fd_names = os.listdir(f"{base}/fd")
        except _GONE:
            fd_names, partial = [], True
        for name in fd_names:
            target = _readlink(f"{base}/fd/{name}")
            if target.startswith("socket:["):
                with contextlib.suppress(ValueError):
                    socket_inodes.append(int(target[8:-1]))
            elif target.startswith("/") and is_loadable(target.removesuffix(" (deleted)")):
                files.add(target.removesuffix(" (deleted)"))
        script = python_script(exe, cmdline, _readlink(f"{base}/cwd"))
        if script:
            files.add(script)
        sockets: tuple[Socket, ...] = ()
        if socket_inodes:
            table = self._net_table(base)
            if table is None:
                partial = True
            else:
                sockets = tuple(sorted((table[i] for i in set(socket_inodes) if i in table), key=lambda s: s.inode))
        self.stats.processes += 1
        if partial:
            self.stats.partial += 1
        return ProcessInfo(pid, ppid, start, exe, cmdline, container, frozenset(files), sockets)

    def _net_table(self, base: str) -> dict[int, Socket] | None:
        netns = _readlink(f"{base}/ns/net") or base  # without ns/net, each process is its own namespace
        cached = self._net_cache.get(netns)
        if cached is not None:
            return cached
        table: dict[int, Socket] = {}
        read_any = False
        for name, protocol in NET_TABLES:
            try:
                table.update(parse_net_table(_read_text(f"{base}/net/{name}"), protocol))
                read_any = True
            except _GONE:
                continue
        if not read_any:
            return None
        self._net_cache[netns] = table
        return table


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _read_text(path: str) -> str:
    return _read_bytes(path).decode("utf-8", "surrogateescape")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


# --- sampling: keep only changes -------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    files: set[str] = field(default_factory=set)
    peers: set[tuple[str, str, int]] = field(default_factory=set)
    listeners: set[tuple[str, str, int]] = field(default_factory=set)


class Sampler:
    """Successive readings → events for what is new: a process, a file, a peer, a listener.

    State is per live process and dropped when it exits, so memory follows the node's process
    count, not its history.
    """

    def __init__(self, reader: ProcReader, *, node: str = "", clock: Callable[[], datetime] | None = None,
                 pids: Iterable[int] | None = None):
        self.reader = reader
        self.node = node
        self.clock = clock or (lambda: datetime.now(UTC))
        self.only_pids = frozenset(pids) if pids is not None else None
        self._seen: dict[tuple[int, int], _Seen] = {}

    def sample(self) -> list[RuntimeEvent]:
        now = self.clock()
        if self.only_pids is not None:
            infos = [i for p in sorted(self.only_pids) if (i := self.reader.process(p)) is not None]
        else:
            infos = list(self.reader.processes())
        exe_by_pid = {i.pid: i.exe for i in infos}
        events: list[RuntimeEvent] = []
        alive: dict[tuple[int, int], _Seen] = {}
        for info in infos:
            key = (info.pid, info.start)
            seen = self._seen.get(key)
            parent = exe_by_pid.get(info.ppid) or _readlink(f"{self.reader.root}/{info.ppid}/exe")
            common = self._common(info, now, parent)
            if seen is None:
                seen = _Seen()
                events.append(RuntimeEvent(kind=EventKind.EXEC.value, **common))
            alive[key] = seen
            for path in sorted(info.files - seen.files):
                events.append(RuntimeEvent(kind=EventKind.OPEN.value, path=path, **common))
            seen.files |= info.files
            listening = {(s.protocol, s.local_port) for s in info.sockets if _is_listener(s)}
            for s in info.sockets:
                if _is_listener(s):
                    item = (s.protocol, s.local_address, s.local_port)
                    if item not in seen.listeners:
                        seen.listeners.add(item)
                        events.append(RuntimeEvent(kind=EventKind.LISTEN.value, protocol=s.protocol,
                                                   address=s.local_address, port=s.local_port, **common))
                elif _is_outbound(s, listening):
                    item = (s.protocol, s.remote_address, s.remote_port)
                    if item not in seen.peers:
                        seen.peers.add(item)
                        events.append(RuntimeEvent(kind=EventKind.CONNECT.value, protocol=s.protocol,
                                                   address=s.remote_address, port=s.remote_port, **common))
        self._seen = alive
        return events

    def _common(self, info: ProcessInfo, now: datetime, parent: str) -> dict[str, Any]:
        container = info.container
        return {
            "time": now, "sensor": AgentSource.name, "node": self.node, "pid": info.pid,
            "container_id": container.id if container else "", "runtime": container.runtime if container else "",
            "executable": info.exe, "parent": parent, "args": " ".join(info.cmdline),
        }


def _is_listener(s: Socket) -> bool:
    if s.protocol == "tcp":
        return s.state == TCP_LISTEN
    return s.state == UDP_UNCONNECTED and s.remote_port == 0 and s.local_port != 0


def _is_outbound(s: Socket, listening: set[tuple[str, int]]) -> bool:
    if s.remote_port == 0:
        return False
    if s.protocol == "tcp" and s.state not in (TCP_ESTABLISHED, TCP_SYN_SENT):
        return False
    # An established socket on a port this process listens on was accepted: the peer is a client.
    return (s.protocol, s.local_port) not in listening


def write_events(events: Iterable[RuntimeEvent], out: IO[str]) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")
        count += 1
    out.flush()
    return count


class AgentSource:
    """The agent's own JSON lines (``RuntimeEvent.to_json``), as ``serve`` will receive them."""

    name = "agent"
    version = 1

    def parse_record(self, record: dict[str, Any]) -> list[RuntimeEvent]:
        try:
            event = RuntimeEvent.from_json(record)
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from None
        if event.sensor != self.name:
            raise MalformedEvent(f"sensor is {event.sensor!r}, not {self.name!r}")
        return [event]
