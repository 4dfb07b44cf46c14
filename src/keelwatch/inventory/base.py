"""The inventory source protocol and the values every source produces.

A source turns one place where containers run (a Kubernetes cluster, a Docker engine, a CMDB
export) into ``ContainerRecord``s. It never touches the database and never resolves tags: the
sync engine (``keelwatch.inventory.sync``) does both, so every source gets the same identity
rules. A source answers ``snapshot()`` (everything it sees now, or an exception: then nothing is
written and the last good inventory stays). A source that can follow changes also implements
``WatchingSource.watch``.

``ContainerRecord`` belongs in ``keelwatch.model`` once posture needs it; it lives here until then.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from keelwatch.errors import KeelwatchError

CONTAINER_TYPES = ("container", "init", "ephemeral")


class InventoryError(KeelwatchError):
    """A source cannot be read (unreachable, refused, malformed as a whole); the last inventory stays."""


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """One container as a source reports it, before tag resolution.

    Identity within a source is (cluster, namespace, pod, instance, container): ``instance`` is
    the pod's UID or the Docker container ID, so a StatefulSet pod ``web-0`` recreated under the
    same name is a new record and the old one is kept, ended, for history.
    """

    cluster: str
    namespace: str
    workload_kind: str  # Deployment, StatefulSet, DaemonSet, CronJob, Job, Pod, compose-service, container
    workload: str
    pod: str
    container: str
    image: str  # as given (spec image, Config.Image, CMDB cell)
    container_type: str = "container"  # container, init, ephemeral
    instance: str = ""
    image_id: str = ""  # what the runtime says runs (imageID, RepoDigest), raw
    digest: str | None = None  # a digest the source itself states (imageID, RepoDigests, CMDB column)
    platform: str | None = None  # os/arch[/variant] of the node or host that runs it
    node: str = ""
    state: str = ""  # running, waiting, terminated, created, pending, …
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""
    team: str = ""
    environment: str = ""
    problem: str | None = None  # something the source could not read about this one container

    @property
    def scope(self) -> tuple[str, str, str]:
        """What a watch event replaces as a whole: one pod (namespace, pod, instance)."""
        return (self.namespace, self.pod, self.instance)

    def key(self, source: str) -> str:
        return record_key(source, self.cluster, self.namespace, self.pod, self.instance, self.container)


def record_key(source: str, cluster: str, namespace: str, pod: str, instance: str, container: str) -> str:
    """The stored key of a container record: a hash of its identity fields."""
    text = "\x00".join((source, cluster, namespace, pod, instance, container))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a source could not read: kept with the sync's result, never silently dropped.

    ``pod`` names the (namespace, pod) it concerns when known: that pod's stored containers are
    then left as they were (neither updated nor ended) rather than judged from data we could not read.
    """

    where: str
    message: str
    pod: tuple[str, str] | None = None


@dataclass(slots=True)
class Snapshot:
    """Everything a source sees now."""

    records: list[ContainerRecord]
    problems: list[Problem] = field(default_factory=list)
    #: The Kubernetes resourceVersion the snapshot is consistent at, for the watch that follows.
    resource_version: str | None = None
    #: The namespaces it covers, when not all of the source (one namespace listed again after a 410).
    namespaces: list[str] | None = None


@dataclass(frozen=True, slots=True)
class PodChange:
    """A watch event: the pod ``scope`` now has exactly ``records`` (empty after DELETED)."""

    scope: tuple[str, str, str]
    records: tuple[ContainerRecord, ...]
    deleted: bool = False
    resource_version: str | None = None


@dataclass(frozen=True, slots=True)
class Bookmark:
    resource_version: str


@dataclass(frozen=True, slots=True)
class Relisted:
    """The watch had to list again (410 Gone, or a new start): the snapshot replaces everything."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class WatchProblem:
    """The stream failed (cut, malformed event, refused); the watch goes on from the last good version."""

    problem: Problem


WatchEvent = PodChange | Bookmark | Relisted | WatchProblem


class InventorySource(Protocol):
    #: Registry name = module name = the ``kind`` of an ``[[inventory.sources]]`` table.
    kind: str
    name: str

    def snapshot(self) -> Snapshot: ...

    def close(self) -> None: ...


@runtime_checkable
class WatchingSource(Protocol):
    """A source that follows changes as they happen (Kubernetes)."""

    def watch(self, resource_version: str | None, stop: Callable[[], bool]) -> Iterator[WatchEvent]: ...


# --- owner / team / environment -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnershipRule:
    """``label:KEY``, ``annotation:KEY``, ``namespace-label:KEY`` or ``namespace:GLOB=VALUE``."""

    kind: str
    key: str
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> OwnershipRule:
        kind, sep, rest = text.partition(":")
        if not sep or not rest or kind not in ("label", "annotation", "namespace-label", "namespace"):
            raise ValueError(f"not an ownership rule: {text!r} (label:KEY, annotation:KEY, "
                             "namespace-label:KEY or namespace:GLOB=VALUE)")
        if kind == "namespace":
            glob, eq, value = rest.partition("=")
            if not eq or not glob or not value:
                raise ValueError(f"not an ownership rule: {text!r} "
                                 "(namespace:GLOB=VALUE, e.g. namespace:pay-*=payments)")
            return cls(kind, glob, value)
        return cls(kind, rest)

    def apply(self, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str],
              namespace_labels: Mapping[str, str]) -> str:
        if self.kind == "label":
            return labels.get(self.key, "")
        if self.kind == "annotation":
            return annotations.get(self.key, "")
        if self.kind == "namespace-label":
            return namespace_labels.get(self.key, "")
        return self.value if fnmatch.fnmatchcase(namespace, self.key) else ""


@dataclass(frozen=True, slots=True)
class Ownership:
    """Which labels, annotations or namespaces say who owns a container: the first rule that answers wins."""

    owner: tuple[OwnershipRule, ...] = ()
    team: tuple[OwnershipRule, ...] = ()
    environment: tuple[OwnershipRule, ...] = ()

    @classmethod
    def from_lists(cls, owner: Sequence[str], team: Sequence[str], environment: Sequence[str]) -> Ownership:
        return cls(tuple(map(OwnershipRule.parse, owner)), tuple(map(OwnershipRule.parse, team)),
                   tuple(map(OwnershipRule.parse, environment)))

    @property
    def uses_namespace_labels(self) -> bool:
        return any(r.kind == "namespace-label" for r in (*self.owner, *self.team, *self.environment))

    def apply(self, record: ContainerRecord, namespace_labels: Mapping[str, str] | None = None) -> ContainerRecord:
        ns_labels = namespace_labels or {}
        values: dict[str, Any] = {}
        for name, rules in (("owner", self.owner), ("team", self.team), ("environment", self.environment)):
            if getattr(record, name):
                continue  # the source said so itself (a CMDB column)
            for rule in rules:
                found = rule.apply(record.namespace, record.labels, record.annotations, ns_labels)
                if found:
                    values[name] = found
                    break
        return replace(record, **values) if values else record
