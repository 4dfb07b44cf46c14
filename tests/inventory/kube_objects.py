"""Pod, node and controller objects as a cluster returns them, written from the Kubernetes API reference.

Field names and shapes follow the v1 Pod (metadata.ownerReferences, spec.containers /
initContainers / ephemeralContainers, status.phase, status.containerStatuses[].state /
imageID / image), v1 Node (labels kubernetes.io/arch and kubernetes.io/os, status.nodeInfo),
apps/v1 ReplicaSet and batch/v1 Job; names follow the controllers' naming (ReplicaSet
``<deployment>-<pod-template-hash>``, pod ``<replicaset>-<5 chars>``, CronJob's Job
``<cronjob>-<scheduled minutes>``, StatefulSet ``<name>-<ordinal>``).
"""

from __future__ import annotations

import uuid
from typing import Any

NGINX_DIGEST = "sha256:" + "1" * 64
POSTGRES_DIGEST = "sha256:" + "2" * 64
EXPORTER_DIGEST = "sha256:" + "3" * 64
REPORT_DIGEST = "sha256:" + "4" * 64
ENVOY_DIGEST = "sha256:" + "5" * 64
MIGRATE_DIGEST = "sha256:" + "6" * 64
BUSYBOX_DIGEST = "sha256:" + "7" * 64
CREATED = "2026-12-01T09:00:00Z"


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def owner(kind: str, name: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid(f"{kind}/{name}"),
            "controller": True, "blockOwnerDeletion": True}


def node(name: str, arch: str = "amd64") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": uid(f"node/{name}"), "creationTimestamp": CREATED, "labels": {
            "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "m7g.large" if arch == "arm64" else "m6i.large"}},
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": f"aws:///eu-west-1a/i-{name}"},
        "status": {"nodeInfo": {"architecture": arch, "operatingSystem": "linux", "containerRuntimeVersion":
                                "containerd://1.7.22", "kubeletVersion": "v1.31.2", "osImage": "Bottlerocket OS 1.26.1",
                                "kernelVersion": "6.1.112", "machineID": "", "systemUUID": "", "bootID": "",
                                "kubeProxyVersion": "v1.31.2"}},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid(f"ns/{name}"), "labels": {"kubernetes.io/metadata.name": name,
                                                                              **labels}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def replicaset(ns: str, name: str, deployment: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": uid(f"rs/{ns}/{name}"),
                         "ownerReferences": [owner("Deployment", deployment)],
                         "labels": {"app": deployment, "pod-template-hash": name.rsplit("-", 1)[1]}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": deployment}}},
            "status": {"replicas": 2, "readyReplicas": 2}}


def job(ns: str, name: str, cronjob: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": uid(f"job/{ns}/{name}")}
    if cronjob:
        meta["ownerReferences"] = [owner("CronJob", cronjob, "batch/v1")]
    return {"metadata": meta, "spec": {"completions": 1, "backoffLimit": 6}, "status": {"active": 1}}


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", **extra}


def running(name: str, image: str, image_id: str, *, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": image_id, "ready": True, "started": True,
            "restartCount": restarts, "containerID": f"containerd://{uid(name).replace('-', '')}",
            "state": {"running": {"startedAt": "2026-12-01T09:01:00Z"}}, "lastState": {}}


def terminated(name: str, image: str, image_id: str) -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": image_id, "ready": False, "started": False, "restartCount": 0,
            "containerID": f"containerd://{uid(name).replace('-', '')}",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-12-01T09:01:00Z",
                                     "finishedAt": "2026-12-01T09:01:30Z"}}, "lastState": {}}


def waiting(name: str, image: str, reason: str = "ContainerCreating") -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": "", "ready": False, "started": False, "restartCount": 0,
            "state": {"waiting": {"reason": reason}}, "lastState": {}}


def pod(ns: str, name: str, *, containers: list[dict[str, Any]], statuses: list[dict[str, Any]] | None = None,
        init: list[dict[str, Any]] | None = None, init_statuses: list[dict[str, Any]] | None = None,
        ephemeral: list[dict[str, Any]] | None = None, ephemeral_statuses: list[dict[str, Any]] | None = None,
        owners: list[dict[str, Any]] | None = None, node_name: str | None = "node-amd64-1", phase: str = "Running",
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        status: bool = True) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "uid": uid(f"pod/{ns}/{name}"),
                                "creationTimestamp": CREATED, "labels": labels or {}}
    if annotations:
        metadata["annotations"] = annotations
    if owners:
        metadata["ownerReferences"] = owners
    spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                            "serviceAccountName": "default", "schedulerName": "default-scheduler",
                            "terminationGracePeriodSeconds": 30, "tolerations": []}
    if node_name:
        spec["nodeName"] = node_name
    if init:
        spec["initContainers"] = init
    if ephemeral:
        spec["ephemeralContainers"] = ephemeral
    obj: dict[str, Any] = {"metadata": metadata, "spec": spec}
    if status:
        st: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort", "conditions": [
            {"type": "PodScheduled", "status": "True" if node_name else "False", "lastTransitionTime": CREATED}]}
        if node_name:
            st.update(hostIP="10.0.1.17", podIP="10.244.1.23", startTime=CREATED)
        if statuses is not None:
            st["containerStatuses"] = statuses
        if init_statuses is not None:
            st["initContainerStatuses"] = init_statuses
        if ephemeral_statuses is not None:
            st["ephemeralContainerStatuses"] = ephemeral_statuses
        obj["status"] = st
    return obj


def deployment_pod(suffix: str = "x2x9k", node_name: str = "node-amd64-1") -> dict[str, Any]:
    """A Deployment's pod with an init container and a sidecar, on containerd (imageID = repo digest)."""
    rs = "web-7d4b9c6f5"
    return pod("shop", f"{rs}-{suffix}", owners=[owner("ReplicaSet", rs)], node_name=node_name,
               labels={"app": "web", "pod-template-hash": "7d4b9c6f5", "team": "storefront"},
               annotations={"keelwatch.io/owner": "alice@example.com"},
               containers=[container("nginx", "nginx:1.27"), container("envoy", "envoyproxy/envoy:v1.31.2")],
               statuses=[running("nginx", "docker.io/library/nginx:1.27", f"docker.io/library/nginx@{NGINX_DIGEST}"),
                         running("envoy", "docker.io/envoyproxy/envoy:v1.31.2",
                                 f"docker.io/envoyproxy/envoy@{ENVOY_DIGEST}")],
               init=[container("migrate", "ghcr.io/acme/web-migrate:3.2.0")],
               init_statuses=[terminated("migrate", "ghcr.io/acme/web-migrate:3.2.0",
                                         f"ghcr.io/acme/web-migrate@{MIGRATE_DIGEST}")])


def statefulset_pod() -> dict[str, Any]:
    """A StatefulSet's pod on an arm64 node, from dockershim days' imageID spelling."""
    return pod("data", "db-0", owners=[owner("StatefulSet", "db")], node_name="node-arm64-1",
               labels={"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"},
               containers=[container("postgres", "postgres:16.4")],
               statuses=[running("postgres", "postgres:16.4", f"docker-pullable://postgres@{POSTGRES_DIGEST}",
                                 restarts=2)])


def daemonset_pod(node_name: str = "node-arm64-1") -> dict[str, Any]:
    return pod("monitoring", f"node-exporter-{node_name[-5:]}", owners=[owner("DaemonSet", "node-exporter")],
               node_name=node_name, labels={"app.kubernetes.io/name": "node-exporter"},
               containers=[container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2")],
               statuses=[running("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2",
                                 f"quay.io/prometheus/node-exporter@{EXPORTER_DIGEST}")])


def cronjob_pod() -> dict[str, Any]:
    return pod("shop", "report-28901230-q7x2m", owners=[owner("Job", "report-28901230", "batch/v1")],
               phase="Succeeded", labels={"batch.kubernetes.io/job-name": "report-28901230"},
               containers=[container("report", "ghcr.io/acme/report:2026.11")],
               statuses=[terminated("report", "ghcr.io/acme/report:2026.11", f"ghcr.io/acme/report@{REPORT_DIGEST}")])


def pending_pod() -> dict[str, Any]:
    """Scheduled nowhere yet: no node, the container waiting, no imageID."""
    return pod("shop", "web-7d4b9c6f5-pend1", owners=[owner("ReplicaSet", "web-7d4b9c6f5")], node_name=None,
               phase="Pending", labels={"app": "web", "pod-template-hash": "7d4b9c6f5"},
               containers=[container("nginx", "nginx:1.27"), container("envoy", "envoyproxy/envoy:v1.31.2")],
               statuses=[waiting("nginx", "nginx:1.27"), waiting("envoy", "envoyproxy/envoy:v1.31.2")])


def debug_pod(with_ephemeral: bool = True) -> dict[str, Any]:
    """A bare pod (no controller) that someone attached `kubectl debug` to: an ephemeral container."""
    ephemeral = [container("debugger-7xk2p", "busybox:1.36", targetContainerName="shell", stdin=True, tty=True)]
    return pod("ops", "shell", node_name="node-amd64-1",
               containers=[container("shell", "alpine:3.20")],
               statuses=[running("shell", "docker.io/library/alpine:3.20",
                                 "docker.io/library/alpine@sha256:" + "8" * 64)],
               ephemeral=ephemeral if with_ephemeral else None,
               ephemeral_statuses=[running("debugger-7xk2p", "docker.io/library/busybox:1.36",
                                           f"docker.io/library/busybox@{BUSYBOX_DIGEST}")] if with_ephemeral else None)


def cluster_objects() -> dict[str, list[dict[str, Any]]]:
    return {
        "nodes": [node("node-amd64-1"), node("node-arm64-1", "arm64")],
        "namespaces": [namespace("shop", environment="production", team="storefront"), namespace("data"),
                       namespace("monitoring"), namespace("ops", environment="staging")],
        "replicasets": [replicaset("shop", "web-7d4b9c6f5", "web")],
        "jobs": [job("shop", "report-28901230", "report")],
        "pods": [deployment_pod(), statefulset_pod(), daemonset_pod(), cronjob_pod(), pending_pod(), debug_pod()],
    }
