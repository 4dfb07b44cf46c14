"""``kubernetes``: pods of a cluster through the official ``kubernetes`` client, listed and watched.

One source is one kubeconfig context (or the in-cluster service account). A snapshot lists pods
page by page (``limit`` + ``continue``), every namespace or the configured ones, at one
resourceVersion per list; a watch resumes from there (``?watch=1``, bookmarks on) and lists again
when the server answers ``410 Gone``. Responses are read as JSON (``_preload_content=False``):
the client's model classes cost ~1 ms a pod, too slow for 100,000.

Per container (containers, init containers, ephemeral containers):

- ``status.*ContainerStatuses[].imageID`` is what runs and beats the spec's tag;
- the workload is the top of the owner chain: ReplicaSet → Deployment, Job → CronJob,
  StatefulSet, DaemonSet; a pod nobody owns is its own workload (``Pod``);
- the platform is the node's ``kubernetes.io/os`` / ``kubernetes.io/arch`` labels.

What cannot be read (a malformed pod, a forbidden ReplicaSet lookup) is a ``Problem``; the rest
of the snapshot goes on.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keelwatch.config import InventorySourceSettings
from keelwatch.inventory.base import (
    Bookmark,
    ContainerRecord,
    InventoryError,
    Ownership,
    PodChange,
    Problem,
    Relisted,
    Snapshot,
    WatchEvent,
    WatchProblem,
)
from keelwatch.inventory.resolve import parse_image_id

log = logging.getLogger(__name__)

CONTAINER_KINDS = (("container", "containers", "containerStatuses"),
                   ("init", "initContainers", "initContainerStatuses"),
                   ("ephemeral", "ephemeralContainers", "ephemeralContainerStatuses"))
ARCH_LABEL = "kubernetes.io/arch"
OS_LABEL = "kubernetes.io/os"
ALL = ""  # the namespace key of a cluster-wide list or watch
RETRY_BACKOFF = (0.2, 0.5, 1, 2, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class _Owner:
    kind: str
    name: str


class KubernetesSource:
    kind = "kubernetes"

    def __init__(self, settings: InventorySourceSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.ownership = Ownership.from_lists(settings.owner, settings.team, settings.environment)
        self.namespaces = list(settings.namespaces) or [ALL]
        self.timeout = settings.timeout.total_seconds()
        self._api_client, context_cluster = _api_client(settings)
        self.cluster = settings.cluster or context_cluster or settings.name
        from kubernetes import client

        self.core = client.CoreV1Api(self._api_client)
        self.apps = client.AppsV1Api(self._api_client)
        self.batch = client.BatchV1Api(self._api_client)
        self._nodes: dict[str, str | None] = {}
        self._owners: dict[tuple[str, str, str], _Owner | None] = {}  # (kind, namespace, name) → its controller
        self._namespace_labels: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api_client.close()

    # --- requests -------------------------------------------------------------------------------

    def _get(self, func: Callable[..., Any], what: str, **kwargs: Any) -> dict[str, Any]:
        """One API call, read as JSON; failures become an ``InventoryError`` naming what and why."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            response = func(_preload_content=False, _request_timeout=self.timeout, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise _api_error(self.name, what, exc) from exc
        except HTTPError as exc:
            raise InventoryError(f"inventory {self.name}: {what}: cannot reach the API server "
                                 f"({_reason(exc)})", retryable=True) from exc
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise InventoryError(f"inventory {self.name}: {what}: the API server sent no JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise InventoryError(f"inventory {self.name}: {what}: expected an object, got {type(doc).__name__}")
        return doc

    def _list(self, what: str, func: Callable[..., Any], **kwargs: Any) -> tuple[list[Any], str | None]:
        """Every item of a list, page by page; the resourceVersion of the list. A 410 (expired
        ``continue`` token) starts the list again, once."""
        for attempt in range(2):
            items: list[Any] = []
            token: str | None = None
            try:
                while True:
                    page_args = dict(kwargs, limit=self.settings.page_size)
                    if token:
                        page_args["_continue"] = token
                    doc = self._get(func, what, **page_args)
                    page = doc.get("items")
                    if not isinstance(page, list):
                        raise InventoryError(f"inventory {self.name}: {what}: the list has no items")
                    items.extend(page)
                    metadata: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
                    token = metadata.get("continue") or None
                    if not token:
                        return items, metadata.get("resourceVersion")
            except _Gone:
                if attempt:
                    raise InventoryError(f"inventory {self.name}: {what}: "
                                         "the list expired twice while paging") from None
        raise AssertionError("unreachable")

    # --- snapshot -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        problems: list[Problem] = []
        self._load_nodes(problems)
        self._load_owners(problems)
        self._load_namespaces(problems)
        records: list[ContainerRecord] = []
        versions: dict[str, str | None] = {}
        for namespace in self.namespaces:
            pods, version = self._list_pods(namespace)
            versions[namespace] = version
            for pod in pods:
                found, problem = self.pod_records(pod)
                records.extend(found)
                if problem is not None:
                    problems.append(problem)
        return Snapshot(records, problems, resource_version=json.dumps(versions, sort_keys=True))

    def _list_pods(self, namespace: str) -> tuple[list[Any], str | None]:
        if namespace == ALL:
            return self._list("list pods", self.core.list_pod_for_all_namespaces)
        return self._list(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace=namespace)

    def _load_nodes(self, problems: list[Problem]) -> None:
        try:
            nodes, _ = self._list("list nodes", self.core.list_node)
        except InventoryError as exc:
            # Namespace-scoped credentials often may not list nodes: platforms are then unknown.
            problems.append(Problem("nodes", f"{exc.message}; node platforms unknown"))
            return
        with self._lock:
            for node in nodes:
                name = _dig(node, "metadata", "name")
                if isinstance(name, str):
                    self._nodes[name] = _node_platform(node)

    def _load_owners(self, problems: list[Problem]) -> None:
        for kind, what, all_func, ns_func in (
            ("ReplicaSet", "replicasets", self.apps.list_replica_set_for_all_namespaces,
             self.apps.list_namespaced_replica_set),
            ("Job", "jobs", self.batch.list_job_for_all_namespaces, self.batch.list_namespaced_job),
        ):
            for namespace in self.namespaces:
                try:
                    if namespace == ALL:
                        items, _ = self._list(f"list {what}", all_func)
                    else:
                        items, _ = self._list(f"list {what} in {namespace}", ns_func, namespace=namespace)
                except InventoryError as exc:
                    problems.append(Problem(what, f"{exc.message}; {kind} owners are guessed from pod labels"))
                    continue
                with self._lock:
                    for item in items:
                        ns, name = _dig(item, "metadata", "namespace"), _dig(item, "metadata", "name")
                        if isinstance(ns, str) and isinstance(name, str):
                            self._owners[(kind, ns, name)] = _controller(item)

    def _load_namespaces(self, problems: list[Problem]) -> None:
        if not self.ownership.uses_namespace_labels:
            return
        try:
            if self.namespaces == [ALL]:
                items, _ = self._list("list namespaces", self.core.list_namespace)
            else:
                items = [self._get(self.core.read_namespace, f"read namespace {ns}", name=ns) for ns in self.namespaces]
        except InventoryError as exc:
            problems.append(Problem("namespaces", f"{exc.message}; namespace-label rules cannot apply"))
            return
        with self._lock:
            for item in items:
                name = _dig(item, "metadata", "name")
                labels = _dig(item, "metadata", "labels")
                if isinstance(name, str):
                    self._namespace_labels[name] = dict(labels) if isinstance(labels, dict) else {}

    # --- one pod --------------------------------------------------------------------------------

    def pod_records(self, pod: Any) -> tuple[list[ContainerRecord], Problem | None]:
        """The container records of one pod object, or the problem that makes it unreadable."""
        metadata = pod.get("metadata") if isinstance(pod, dict) else None
        if not isinstance(metadata, dict):
            return [], Problem("pod", "a pod without metadata")
        name, namespace, uid = metadata.get("name"), metadata.get("namespace"), metadata.get("uid")
        if not (isinstance(name, str) and name and isinstance(namespace, str) and namespace):
            return [], Problem("pod", f"a pod without name or namespace (uid {uid!r})")
        where = f"pod {namespace}/{name}"
        scope = (namespace, name)
        spec = pod.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
            return [], Problem(where, "no spec.containers", scope)
        status: dict[str, Any] = pod["status"] if isinstance(pod.get("status"), dict) else {}
        labels = _string_map(metadata.get("labels"))
        annotations = _string_map(metadata.get("annotations"))
        workload_kind, workload = self._workload(namespace, name, metadata, labels)
        node: str = spec["nodeName"] if isinstance(spec.get("nodeName"), str) else ""
        platform = self._node_platform(node) if node else None
        phase = str(status.get("phase") or "").lower()
        ns_labels = self._namespace_labels.get(namespace, {})
        records: list[ContainerRecord] = []
        problem: Problem | None = None
        for container_type, spec_key, status_key in CONTAINER_KINDS:
            containers = spec.get(spec_key) or []
            statuses = {s.get("name"): s for s in (status.get(status_key) or []) if isinstance(s, dict)}
            if not isinstance(containers, list):
                problem = Problem(where, f"spec.{spec_key} is not a list", scope)
                continue
            for c in containers:
                if not isinstance(c, dict) or not isinstance(c.get("name"), str) \
                        or not isinstance(c.get("image"), str) or not c.get("image"):
                    problem = Problem(where, f"a container in spec.{spec_key} without name or image", scope)
                    continue
                st = statuses.get(c["name"]) or {}
                image_id: str = st["imageID"] if isinstance(st.get("imageID"), str) else ""
                _, digest = parse_image_id(image_id)
                state_doc: dict[str, Any] = st["state"] if isinstance(st.get("state"), dict) else {}
                state = next((k for k in ("running", "waiting", "terminated") if k in state_doc), "") or \
                    ("pending" if phase in ("", "pending") else phase)
                record = ContainerRecord(
                    cluster=self.cluster, namespace=namespace, workload_kind=workload_kind, workload=workload,
                    pod=name, container=c["name"], image=c["image"], container_type=container_type,
                    instance=uid if isinstance(uid, str) else "", image_id=image_id, digest=digest,
                    platform=platform, node=node, state=state, labels=labels, annotations=annotations,
                )
                records.append(self.ownership.apply(record, ns_labels))
        return records, problem

    def _workload(self, namespace: str, name: str, metadata: dict[str, Any],
                  labels: dict[str, str]) -> tuple[str, str]:
        owner = _controller({"metadata": metadata})
        if owner is None:
            return "Pod", name
        if owner.kind == "ReplicaSet":
            top = self._owner_of("ReplicaSet", namespace, owner.name)
            if top is not None:
                return top.kind, top.name
            hash_label = labels.get("pod-template-hash")
            if (("ReplicaSet", namespace, owner.name) not in self._owners and hash_label
                    and owner.name.endswith(f"-{hash_label}")):
                # The lookup failed: a Deployment names its ReplicaSets <deployment>-<pod-template-hash>.
                return "Deployment", owner.name[: -len(hash_label) - 1]
        if owner.kind == "Job":
            top = self._owner_of("Job", namespace, owner.name)
            if top is not None:
                return top.kind, top.name
        return owner.kind, owner.name

    def _owner_of(self, kind: str, namespace: str, name: str) -> _Owner | None:
        key = (kind, namespace, name)
        with self._lock:
            if key in self._owners:
                return self._owners[key]
        # Not in the last list (a watch saw a new ReplicaSet or Job): ask for that one object.
        func = self.apps.read_namespaced_replica_set if kind == "ReplicaSet" else self.batch.read_namespaced_job
        try:
            owner = _controller(self._get(func, f"read {kind} {namespace}/{name}", name=name, namespace=namespace))
        except InventoryError as exc:
            log.info("%s", exc)
            return None
        with self._lock:
            self._owners[key] = owner
        return owner

    def _node_platform(self, node: str) -> str | None:
        with self._lock:
            if node in self._nodes:
                return self._nodes[node]
        try:
            platform = _node_platform(self._get(self.core.read_node, f"read node {node}", name=node))
        except InventoryError as exc:
            log.info("%s", exc)
            platform = None
        with self._lock:
            self._nodes[node] = platform
        return platform

    # --- watch ----------------------------------------------------------------------------------

    def watch(self, resource_version: str | None, stop: Callable[[], bool]) -> Iterator[WatchEvent]:
        """Pod changes from ``resource_version`` (a snapshot's), listing first when there is none or it expired.

        One stream per namespace (one for all), merged; each resumes from its own last
        resourceVersion after a cut, a timeout or a malformed event, with backoff on errors.
        """
        versions = _versions(resource_version)
        if set(versions) != set(self.namespaces) or any(v is None for v in versions.values()):
            snapshot = self.snapshot()
            yield Relisted(snapshot)
            versions = _versions(snapshot.resource_version)
        events: queue.Queue[tuple[str, WatchEvent | None]] = queue.Queue(maxsize=10_000)
        current = dict(versions)
        done = threading.Event()

        def quit_() -> bool:
            return done.is_set() or stop()

        threads = [threading.Thread(target=self._stream, args=(ns, current[ns], events, quit_), daemon=True,
                                    name=f"watch-{self.name}-{ns or 'all'}") for ns in self.namespaces]
        for t in threads:
            t.start()
        try:
            while not stop():
                try:
                    namespace, event = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if event is None:
                    continue
                if isinstance(event, PodChange | Bookmark) and event.resource_version:
                    current[namespace] = event.resource_version
                    event = _with_version(event, json.dumps(current, sort_keys=True))
                elif isinstance(event, Relisted):
                    # One namespace's stream listed again: carry every stream's version.
                    current[namespace] = _versions(event.snapshot.resource_version).get(namespace)
                    event = Relisted(Snapshot(event.snapshot.records, event.snapshot.problems,
                                              json.dumps(current, sort_keys=True), event.snapshot.namespaces))
                yield event
        finally:
            done.set()

    def _stream(self, namespace: str, version: str | None, out: queue.Queue[tuple[str, WatchEvent | None]],
                stop: Callable[[], bool]) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        class RawWatch(watch.Watch):
            # No return type: events stay dicts (no model classes), and ERROR events still reach the
            # client's 410 handling; ``deserialize=False`` skips that handling (KeyError 'raw_object'
            # in kubernetes 37.0.3).
            def get_return_type(self, func: Any) -> None:
                return None

        failures = 0
        timeout = max(int(self.settings.watch_timeout.total_seconds()), 1)
        while not stop():
            w = RawWatch()
            args: dict[str, Any] = {"allow_watch_bookmarks": True, "timeout_seconds": timeout,
                                    "_request_timeout": (self.timeout, timeout + self.timeout)}
            if version:
                args["resource_version"] = version
            func: Callable[..., Any] = self.core.list_pod_for_all_namespaces
            if namespace != ALL:
                func = self.core.list_namespaced_pod
                args["namespace"] = namespace
            try:
                for raw in w.stream(func, **args):
                    if stop():
                        w.stop()
                        break
                    if raw is None:  # the client read a line that is not JSON
                        w.stop()
                        raise ValueError("a line that is not JSON")
                    event = self._event(raw)
                    if isinstance(event, PodChange | Bookmark) and event.resource_version:
                        version = event.resource_version
                    out.put((namespace, event))
                    failures = 0
                continue  # the server ended the watch (timeout): resume from the last version
            except ApiException as exc:
                if exc.status == 410:
                    try:
                        snapshot = self._namespace_snapshot(namespace)
                        out.put((namespace, Relisted(snapshot)))
                        version = _versions(snapshot.resource_version).get(namespace)
                        failures = 0
                        continue
                    except InventoryError as error:
                        message = str(error)
                else:
                    message = str(_api_error(self.name, "watch pods", exc))
            except (HTTPError, OSError) as exc:
                message = f"inventory {self.name}: watch pods: the stream broke ({_reason(exc)}); resuming"
            except ValueError as exc:  # a line that is not JSON: the stream is cut there
                message = f"inventory {self.name}: watch pods: a malformed event ({exc}); resuming"
            out.put((namespace, WatchProblem(Problem(f"watch {namespace or 'all namespaces'}", message))))
            delay = RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)]
            failures += 1
            deadline = time.monotonic() + delay
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.05)

    def _namespace_snapshot(self, namespace: str) -> Snapshot:
        problems: list[Problem] = []
        self._load_nodes(problems)
        pods, version = self._list_pods(namespace)
        records: list[ContainerRecord] = []
        for pod in pods:
            found, problem = self.pod_records(pod)
            records.extend(found)
            if problem is not None:
                problems.append(problem)
        # Only this namespace was listed again: the others' pods stay as they are.
        return Snapshot(records, problems, resource_version=json.dumps({namespace: version}),
                        namespaces=None if namespace == ALL else [namespace])

    def _event(self, raw: Any) -> WatchEvent:
        kind = raw.get("type") if isinstance(raw, dict) else None
        obj = raw.get("object") if isinstance(raw, dict) else None
        version = _dig(obj, "metadata", "resourceVersion")
        version = version if isinstance(version, str) else None
        if kind == "BOOKMARK" and version:
            return Bookmark(version)
        if kind in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
            records, problem = self.pod_records(obj)
            metadata = obj.get("metadata") or {}
            scope = (str(metadata.get("namespace", "")), str(metadata.get("name", "")), str(metadata.get("uid", "")))
            if kind == "DELETED":
                if not all(scope[:2]):
                    return WatchProblem(Problem("watch", "a DELETED event for a pod without name or namespace"))
                return PodChange(scope, (), deleted=True, resource_version=version)
            if problem is not None and not records:
                return WatchProblem(problem)
            return PodChange(scope, tuple(records), resource_version=version)
        return WatchProblem(Problem("watch", f"an event that is not a pod change: type {kind!r}"))


class _Gone(Exception):
    pass


def _api_client(settings: InventorySourceSettings) -> tuple[Any, str | None]:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if settings.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
            context_cluster = None
        else:
            config.load_kube_config(config_file=settings.kubeconfig, context=settings.context,
                                    client_configuration=configuration, persist_config=False)
            contexts, active = config.list_kube_config_contexts(config_file=settings.kubeconfig)
            chosen = next((c for c in contexts if c.get("name") == settings.context), active) if settings.context \
                else active
            context_cluster = (chosen or {}).get("context", {}).get("cluster")
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        where = "the in-cluster service account" if settings.in_cluster else (settings.kubeconfig or "the kubeconfig")
        raise InventoryError(f"inventory {settings.name}: cannot load {where}: {exc}",
                             hint="check kubeconfig and context in [[inventory.sources]]") from exc
    # The client retries a refused connection three times without backoff; one answer is enough.
    configuration.retries = 1
    return client.ApiClient(configuration), context_cluster


def _api_error(source: str, what: str, exc: Any) -> InventoryError:
    status = getattr(exc, "status", 0) or 0
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            doc = json.loads(body)
            message = doc.get("message", "") if isinstance(doc, dict) else ""
        except (ValueError, TypeError):
            message = ""
    reason = message or getattr(exc, "reason", "") or "no reason given"
    if status == 410:
        raise _Gone()
    if status == 401:
        return InventoryError(f"inventory {source}: {what}: 401 Unauthorized ({reason})",
                              hint="the kubeconfig's credentials were refused")
    if status == 403:
        return InventoryError(f"inventory {source}: {what}: 403 Forbidden ({reason})",
                              hint="grant get/list/watch on pods (and list on nodes, replicasets, jobs)")
    if status == 0:
        return InventoryError(f"inventory {source}: {what}: {reason}", retryable=True)
    return InventoryError(f"inventory {source}: {what}: {status} ({reason})", retryable=status >= 500 or status == 429)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc).strip() or type(exc).__name__
    return " ".join(text.split())[:200]


def _dig(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _controller(obj: Any) -> _Owner | None:
    refs = _dig(obj, "metadata", "ownerReferences")
    if not isinstance(refs, list):
        return None
    refs = [r for r in refs
            if isinstance(r, dict) and isinstance(r.get("kind"), str) and isinstance(r.get("name"), str)]
    chosen = next((r for r in refs if r.get("controller") is True), refs[0] if refs else None)
    return _Owner(chosen["kind"], chosen["name"]) if chosen else None


def _node_platform(node: Any) -> str | None:
    labels = _dig(node, "metadata", "labels")
    labels = labels if isinstance(labels, dict) else {}
    arch = labels.get(ARCH_LABEL) or _dig(node, "status", "nodeInfo", "architecture")
    os_name = labels.get(OS_LABEL) or _dig(node, "status", "nodeInfo", "operatingSystem") or "linux"
    return f"{os_name}/{arch}" if isinstance(arch, str) and arch else None


def _versions(text: str | None) -> dict[str, str | None]:
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return {str(k): (v if isinstance(v, str) else None) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _with_version(event: PodChange | Bookmark, version: str) -> PodChange | Bookmark:
    if isinstance(event, Bookmark):
        return Bookmark(version)
    return PodChange(event.scope, event.records, event.deleted, version)
