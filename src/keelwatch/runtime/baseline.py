"""Behavioural baselines and deviations: pure logic, in memory, serialisable to JSON.

A baseline belongs to one (cluster, namespace, workload, container name, image digest): the
executables run, parent→child exec pairs, outbound peers (grouped to CIDR and port by
``PeerGrouping``), listening ports, and the directories written outside the writable paths. It
learns for a period or a number of events, then freezes; after that each event outside it is a
``Deviation`` with a kind and a severity. Repeats of the same deviation raise its count (one
deviation per workload, kind and detail, not one per event). A user can accept a deviation: its
item joins the baseline. A new image digest starts a new baseline, or, when
``inherit_previous_digest`` is set, one seeded with the previous digest's content.

Settings come in as ``BaselinePolicy`` (``keelwatch.runtime.ingest.policy_of`` fills it from
``[runtime]``); ``keelwatch.runtime.ingest`` persists the state in the store, one baseline at a
time, through ``Baseline.to_json`` / ``from_json``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from keelwatch.runtime.events import EventKind, RuntimeEvent, parse_time

LEARNING, FROZEN = "learning", "frozen"

NEW_EXEC = "new_exec"
NEW_EXEC_PAIR = "new_exec_pair"  # a known executable started by a parent it never had
EXEC_FROM_WRITABLE_PATH = "exec_from_writable_path"
NEW_PEER = "new_peer"
NEW_LISTENER = "new_listener"
UNEXPECTED_WRITE = "unexpected_write"
DRIFT = "drift"  # code run or loaded that is not in the image (found by the runtime SBOM check, not here)
DEVIATION_KINDS = (NEW_EXEC, NEW_EXEC_PAIR, EXEC_FROM_WRITABLE_PATH, NEW_PEER, NEW_LISTENER, UNEXPECTED_WRITE, DRIFT)
SEVERITIES = ("low", "medium", "high", "critical")

# Programs whose first appearance in a container is the classic sign of hands on the keyboard.
INTERACTIVE = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox",
                         "nc", "ncat", "netcat", "socat", "telnet", "curl", "wget", "ssh", "scp", "nmap"})
SYSTEM_DIRS = ("/etc", "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/boot", "/root")


@dataclass(frozen=True, slots=True, order=True)
class BaselineKey:
    cluster: str
    namespace: str
    workload: str
    container: str
    image_digest: str

    @property
    def lineage(self) -> tuple[str, str, str, str]:
        """The key without the digest: what successive images of one container share."""
        return (self.cluster, self.namespace, self.workload, self.container)


# Kubernetes' random name suffixes use this alphabet (no vowels, no 0/1/3): a Deployment's pod is
# <name>-<pod-template-hash>-<5>, a DaemonSet's or Job's <name>-<5>, a StatefulSet's <name>-<ordinal>.
_K8S_ALNUM = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOYMENT_POD = re.compile(rf"^(.+)-{_K8S_ALNUM}{{6,10}}-{_K8S_ALNUM}{{5}}$")
_SUFFIXED_POD = re.compile(rf"^(.+)-{_K8S_ALNUM}{{5}}$")
_STATEFUL_POD = re.compile(r"^(.+)-\d+$")


def workload_of_pod(pod: str) -> str:
    """The workload a pod name implies when the sensor does not say (``web-7d4b9c8f6-x2kqz`` → ``web``).

    A guess from naming conventions, used until the inventory attributes the pod to its owner.
    """
    for pattern in (_DEPLOYMENT_POD, _SUFFIXED_POD, _STATEFUL_POD):
        if m := pattern.match(pod):
            return m.group(1)
    return pod


def key_of(event: RuntimeEvent, cluster: str = "") -> BaselineKey:
    """The baseline an event belongs to. Without a pod, the container id stands for the workload."""
    return _key(cluster, event.namespace, event.workload, event.pod, event.container_name, event.image_digest,
                event.container_id, event.node)


@lru_cache(maxsize=1 << 16)
def _key(cluster: str, namespace: str, workload: str, pod: str, container: str, digest: str, container_id: str,
         node: str) -> BaselineKey:
    workload = workload or (workload_of_pod(pod) if pod else "")
    if not workload:
        workload = f"container:{container_id}" if container_id else f"host:{node}"
    return BaselineKey(cluster, namespace, workload, container, digest)


@dataclass(frozen=True, slots=True)
class PeerGrouping:
    """How outbound peers are grouped: named networks first, else the address's /prefix.

    Services behind load balancers and cloud endpoints rotate addresses within a block, so the
    default groups to /24 and /64; set 32/128 for exact addresses.
    """

    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    networks: tuple[str, ...] = ()  # e.g. the cluster's pod and service CIDRs: one group each
    keep_port: bool = True

    def __post_init__(self) -> None:
        for network in self.networks:
            ipaddress.ip_network(network, strict=False)  # a bad CIDR fails when the policy is made
        if not (0 <= self.ipv4_prefix <= 32 and 0 <= self.ipv6_prefix <= 128):
            raise ValueError("prefix lengths must be 0-32 (IPv4) and 0-128 (IPv6)")

    def group(self, address: str) -> str:
        return _group(address, self.ipv4_prefix, self.ipv6_prefix, self.networks)


@lru_cache(maxsize=1 << 16)
def _group(address: str, v4: int, v6: int, networks: tuple[str, ...]) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a name or something unparsable: grouped as itself
    for network in networks:
        net = ipaddress.ip_network(network, strict=False)
        if ip.version == net.version and ip in net:
            return str(net)
    prefix = v4 if ip.version == 4 else v6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class BaselinePolicy:
    learning_period: timedelta | None = timedelta(hours=24)
    learning_events: int | None = None  # when both are set, whichever comes first ends learning
    writable_paths: tuple[str, ...] = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/dev", "/proc")
    peers: PeerGrouping = field(default_factory=PeerGrouping)
    inherit_previous_digest: bool = False
    # Running a binary from a writable place is flagged even while learning (and never learned):
    # a baseline must not swallow an intrusion that happens in its first day.
    flag_writable_exec_while_learning: bool = True
    max_items: int = 10_000  # per set of a baseline: a workload that never repeats itself stops growing it
    max_deviations: int = 1_000  # open deviations per baseline; beyond, counted as dropped

    def __post_init__(self) -> None:
        if self.learning_period is None and self.learning_events is None:
            raise ValueError("a baseline needs a learning period, a number of events, or both")


@dataclass(slots=True)
class Baseline:
    key: BaselineKey
    started: datetime
    state: str = LEARNING
    frozen_at: datetime | None = None
    events_seen: int = 0
    inherited_from: str = ""  # the image digest whose baseline this one started from
    execs: set[str] = field(default_factory=set)
    exec_pairs: set[tuple[str, str]] = field(default_factory=set)
    peers: set[tuple[str, str, int]] = field(default_factory=set)  # (protocol, group, port)
    listeners: set[tuple[str, int]] = field(default_factory=set)  # (protocol, port)
    write_dirs: set[str] = field(default_factory=set)
    accepted_paths: set[str] = field(default_factory=set)  # drift a user accepted (a plugin from a volume)
    dropped_items: int = 0
    dropped_deviations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.key.cluster, "namespace": self.key.namespace, "workload": self.key.workload,
            "container": self.key.container, "image_digest": self.key.image_digest,
            "state": self.state, "started": _iso(self.started), "frozen_at": _iso(self.frozen_at),
            "events_seen": self.events_seen, "inherited_from": self.inherited_from,
            "execs": sorted(self.execs), "exec_pairs": sorted(list(p) for p in self.exec_pairs),
            "peers": sorted(list(p) for p in self.peers), "listeners": sorted(list(p) for p in self.listeners),
            "write_dirs": sorted(self.write_dirs), "accepted_paths": sorted(self.accepted_paths),
            "dropped_items": self.dropped_items, "dropped_deviations": self.dropped_deviations,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        key = BaselineKey(data["cluster"], data["namespace"], data["workload"], data["container"],
                          data["image_digest"])
        return cls(
            key=key, started=parse_time(data["started"]), state=data["state"],
            frozen_at=parse_time(data["frozen_at"]) if data.get("frozen_at") else None,
            events_seen=data["events_seen"], inherited_from=data.get("inherited_from", ""),
            execs=set(data["execs"]), exec_pairs={(a, b) for a, b in data["exec_pairs"]},
            peers={(p, g, int(n)) for p, g, n in data["peers"]}, listeners={(p, int(n)) for p, n in data["listeners"]},
            write_dirs=set(data["write_dirs"]), accepted_paths=set(data.get("accepted_paths", ())),
            dropped_items=data.get("dropped_items", 0), dropped_deviations=data.get("dropped_deviations", 0),
        )


@dataclass(slots=True)
class Deviation:
    kind: str
    severity: str
    key: BaselineKey
    detail: str  # what deviated, in words; with kind and key, the deviation's identity
    item: tuple[Any, ...]  # what ``accept`` adds to the baseline
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    evidence: dict[str, Any] = field(default_factory=dict)  # the first event's JSON form

    @property
    def id(self) -> str:
        text = "\x00".join((*self.key.lineage, self.key.image_digest, self.kind, self.detail))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "severity": self.severity,
            "cluster": self.key.cluster, "namespace": self.key.namespace, "workload": self.key.workload,
            "container": self.key.container, "image_digest": self.key.image_digest,
            "detail": self.detail, "item": list(self.item),
            "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen), "count": self.count,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deviation:
        key = BaselineKey(data["cluster"], data["namespace"], data["workload"], data["container"],
                          data["image_digest"])
        return cls(kind=data["kind"], severity=data["severity"], key=key, detail=data["detail"],
                   item=tuple(data["item"]), first_seen=parse_time(data["first_seen"]),
                   last_seen=parse_time(data["last_seen"]), count=data["count"], evidence=data.get("evidence", {}))


class BaselineEngine:
    """All baselines of one keelwatch, and their open deviations."""

    def __init__(self, policy: BaselinePolicy | None = None, *, cluster: str = ""):
        self.policy = policy or BaselinePolicy()
        self.cluster = cluster
        self.baselines: dict[BaselineKey, Baseline] = {}
        self.open: dict[str, Deviation] = {}
        self._open_per_baseline: dict[BaselineKey, int] = {}
        self._writable_roots = frozenset(self.policy.writable_paths)
        self._writable_prefixes = tuple(root.rstrip("/") + "/" for root in self.policy.writable_paths)

    # --- events ---------------------------------------------------------------------------------

    def observe(self, event: RuntimeEvent, key: BaselineKey | None = None) -> list[Deviation]:
        """Learn from or check one event; the deviations it opened (repeats only raise counts)."""
        kind = event.kind
        if kind == EventKind.OPEN:
            return []  # libraries in use are the runtime SBOM's business (verify.py), not behaviour
        key = key or key_of(event, self.cluster)
        baseline = self.baselines.get(key)
        if baseline is None:
            baseline = self._start(key, event.time)
        policy = self.policy
        if baseline.state == LEARNING and self._learning_over(baseline, event.time):
            baseline.state, baseline.frozen_at = FROZEN, event.time
        learning = baseline.state == LEARNING
        baseline.events_seen += 1
        found: list[tuple[str, str, str, tuple[Any, ...]]] = []  # (kind, severity, detail, item)
        if kind == EventKind.EXEC:
            exe = event.executable
            if not exe:
                return []
            pair = (event.parent, exe)
            writable = self._writable(exe) and exe not in baseline.execs
            if writable and (not learning or policy.flag_writable_exec_while_learning):
                found.append((EXEC_FROM_WRITABLE_PATH, "critical", f"{exe} (parent {event.parent or '?'})",
                              ("exec", event.parent, exe)))
            elif learning:
                self._add(baseline, baseline.execs, exe)
                if event.parent:
                    self._add(baseline, baseline.exec_pairs, pair)
            elif exe not in baseline.execs:
                severity = "high" if _program(exe) in INTERACTIVE else "medium"
                found.append((NEW_EXEC, severity, f"{exe} (parent {event.parent or '?'})", ("exec", event.parent, exe)))
            elif event.parent and pair not in baseline.exec_pairs:
                found.append((NEW_EXEC_PAIR, "low", f"{event.parent} → {exe}", ("exec_pair", event.parent, exe)))
        elif kind == EventKind.CONNECT:
            if not event.address:
                return []
            group = policy.peers.group(event.address)
            peer = (event.protocol or "tcp", group, (event.port or 0) if policy.peers.keep_port else 0)
            if learning:
                self._add(baseline, baseline.peers, peer)
            elif peer not in baseline.peers:
                found.append((NEW_PEER, "medium", f"{peer[0]} {group} port {peer[2]}", ("peer", *peer)))
        elif kind == EventKind.LISTEN:
            if event.port is None:
                return []
            listener = (event.protocol or "tcp", event.port)
            if learning:
                self._add(baseline, baseline.listeners, listener)
            elif listener not in baseline.listeners:
                found.append((NEW_LISTENER, "high", f"{listener[0]} port {listener[1]}", ("listener", *listener)))
        elif kind == EventKind.WRITE:
            path = event.path
            if not path.startswith("/") or self._writable(path):
                return []
            directory = posixpath.dirname(path)
            if learning:
                self._add(baseline, baseline.write_dirs, directory)
            elif directory not in baseline.write_dirs:
                severity = "high" if _under_any(path, SYSTEM_DIRS) else "medium"
                found.append((UNEXPECTED_WRITE, severity, f"write to {path}", ("write_dir", directory)))
        return [d for spec in found if (d := self._record(baseline, event, *spec)) is not None]

    def observe_all(self, events: Iterable[RuntimeEvent]) -> list[Deviation]:
        out: list[Deviation] = []
        for event in events:
            out.extend(self.observe(event))
        return out

    # --- users ------------------------------------------------------------------------------------

    def accept(self, deviation_id: str) -> Deviation:
        """Add a deviation's item to its baseline and close it; KeyError when no such open deviation."""
        deviation = self.open.pop(deviation_id)
        self._open_per_baseline[deviation.key] -= 1
        baseline = self.baselines[deviation.key]
        what, *rest = deviation.item
        if what == "exec":
            parent, exe = rest
            baseline.execs.add(exe)
            if parent:
                baseline.exec_pairs.add((parent, exe))
        elif what == "exec_pair":
            baseline.exec_pairs.add((rest[0], rest[1]))
        elif what == "peer":
            baseline.peers.add((rest[0], rest[1], int(rest[2])))
        elif what == "listener":
            baseline.listeners.add((rest[0], int(rest[1])))
        elif what == "write_dir":
            baseline.write_dirs.add(rest[0])
        elif what == "path":
            baseline.accepted_paths.add(rest[0])
        return deviation

    def flag(self, event: RuntimeEvent, key: BaselineKey, kind: str, severity: str, detail: str,
             item: tuple[Any, ...]) -> Deviation | None:
        """Record a deviation found outside the engine (drift); None when it repeats or was accepted.

        ``item`` ``("path", PATH)`` is skipped when the baseline accepted that path.
        """
        baseline = self.baselines.get(key)
        if baseline is None:
            baseline = self._start(key, event.time)
        if item[0] == "path" and item[1] in baseline.accepted_paths:
            return None
        return self._record(baseline, event, kind, severity, detail, item)

    def freeze(self, key: BaselineKey, at: datetime) -> None:
        baseline = self.baselines[key]
        if baseline.state == LEARNING:
            baseline.state, baseline.frozen_at = FROZEN, at

    def deviations(self) -> list[Deviation]:
        return sorted(self.open.values(), key=lambda d: (d.first_seen, d.key, d.kind, d.detail))

    # --- state ------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"baselines": [b.to_json() for _, b in sorted(self.baselines.items())],
                "deviations": [d.to_json() for d in self.deviations()]}

    @classmethod
    def from_json(cls, data: dict[str, Any], policy: BaselinePolicy | None = None, *,
                  cluster: str = "") -> BaselineEngine:
        engine = cls(policy, cluster=cluster)
        for item in data.get("baselines", []):
            baseline = Baseline.from_json(item)
            engine.baselines[baseline.key] = baseline
        for item in data.get("deviations", []):
            deviation = Deviation.from_json(item)
            engine.open[deviation.id] = deviation
            engine._open_per_baseline[deviation.key] = engine._open_per_baseline.get(deviation.key, 0) + 1
        return engine

    # --- inside -------------------------------------------------------------------------------------

    def _start(self, key: BaselineKey, when: datetime) -> Baseline:
        baseline = Baseline(key=key, started=when)
        if self.policy.inherit_previous_digest:
            previous = [b for b in self.baselines.values() if b.key.lineage == key.lineage]
            if previous:
                source = max(previous, key=lambda b: b.started)
                baseline = replace(source, key=key, started=when, state=LEARNING, frozen_at=None, events_seen=0,
                                   inherited_from=source.key.image_digest, execs=set(source.execs),
                                   exec_pairs=set(source.exec_pairs), peers=set(source.peers),
                                   listeners=set(source.listeners), write_dirs=set(source.write_dirs),
                                   accepted_paths=set(source.accepted_paths),
                                   dropped_items=0, dropped_deviations=0)
        self.baselines[key] = baseline
        return baseline

    def _learning_over(self, baseline: Baseline, when: datetime) -> bool:
        policy = self.policy
        if policy.learning_events is not None and baseline.events_seen >= policy.learning_events:
            return True
        return policy.learning_period is not None and when - baseline.started >= policy.learning_period

    def _add(self, baseline: Baseline, items: set[Any], item: Any) -> None:
        if item in items:
            return
        if len(items) >= self.policy.max_items:
            baseline.dropped_items += 1
            return
        items.add(item)

    def _writable(self, path: str) -> bool:
        return path in self._writable_roots or path.startswith(self._writable_prefixes)

    def _record(self, baseline: Baseline, event: RuntimeEvent, kind: str, severity: str, detail: str,
                item: tuple[Any, ...]) -> Deviation | None:
        deviation = Deviation(kind, severity, baseline.key, detail, item, event.time, event.time)
        existing = self.open.get(deviation.id)
        if existing is not None:
            existing.count += 1
            existing.first_seen = min(existing.first_seen, event.time)  # sensors' clocks disagree
            existing.last_seen = max(existing.last_seen, event.time)
            return None
        if self._open_per_baseline.get(baseline.key, 0) >= self.policy.max_deviations:
            baseline.dropped_deviations += 1
            return None
        deviation.evidence = event.to_json()
        self.open[deviation.id] = deviation
        self._open_per_baseline[baseline.key] = self._open_per_baseline.get(baseline.key, 0) + 1
        return deviation


def _program(path: str) -> str:
    return posixpath.basename(path)


def _under_any(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None
