"""``docker``: containers of one Docker Engine (or Podman's Docker-compatible API), through the ``docker`` SDK.

``GET /containers/json?all=1``, then per container ``/containers/{id}/json`` and, once per image,
``/images/{id}/json``. Identity:

- the image as given is the container's ``Config.Image``; ``Image`` (the config digest) is kept as
  ``image_id``; the digest stated is the image's ``RepoDigests`` entry for that repository (what
  was pulled: an index digest for a multi-arch tag, resolved to the platform's manifest later);
- the platform is the image's ``Os``/``Architecture``/``Variant``;
- a compose project is the namespace and its service the workload (``compose-service``); a plain
  container is its own workload (``container``). The pod is the container's name, the instance
  its ID, so a container re-created under the same name is a new record.
"""

from __future__ import annotations

from typing import Any

from keelwatch.config import InventorySourceSettings
from keelwatch.errors import InvalidReference
from keelwatch.images.reference import parse_reference
from keelwatch.inventory.base import ContainerRecord, InventoryError, Ownership, Problem, Snapshot

DEFAULT_URL = "unix:///var/run/docker.sock"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


class DockerSource:
    kind = "docker"

    def __init__(self, settings: InventorySourceSettings) -> None:
        import docker

        self.name = settings.name
        self.settings = settings
        self.url = settings.url or DEFAULT_URL
        self.ownership = Ownership.from_lists(settings.owner, settings.team, settings.environment)
        try:
            self.api = docker.APIClient(base_url=self.url, timeout=int(settings.timeout.total_seconds()),
                                        version="auto")
        except docker.errors.DockerException as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        self.api.close()

    def _error(self, exc: Exception) -> InventoryError:
        text = " ".join(str(exc).split())[:300]
        return InventoryError(f"inventory {self.name}: Docker API at {self.url}: {text}", retryable=True,
                              hint="is the engine running and the socket readable?")

    def snapshot(self) -> Snapshot:
        import docker

        try:
            listed = self.api.containers(all=True)
        except (docker.errors.DockerException, OSError) as exc:
            raise self._error(exc) from exc
        images: dict[str, dict[str, Any] | None] = {}
        records: list[ContainerRecord] = []
        problems: list[Problem] = []
        for item in listed:
            cid = item.get("Id") if isinstance(item, dict) else None
            if not isinstance(cid, str):
                problems.append(Problem("containers", "a listed container without an Id"))
                continue
            try:
                inspect = self.api.inspect_container(cid)
            except docker.errors.NotFound:
                continue  # removed between the list and the inspect
            except (docker.errors.DockerException, OSError) as exc:
                problems.append(Problem(f"container {cid[:12]}", f"cannot inspect: {exc}"))
                continue
            image_id = inspect.get("Image") or ""
            if image_id not in images:
                try:
                    images[image_id] = self.api.inspect_image(image_id) if image_id else None
                except (docker.errors.DockerException, OSError):
                    images[image_id] = None  # an image removed under a created container
            record = self._record(cid, inspect, images[image_id])
            if record is not None:
                records.append(self.ownership.apply(record))
            else:
                problems.append(Problem(f"container {cid[:12]}", "no image in its configuration"))
        return Snapshot(records, problems)

    def _record(self, cid: str, inspect: dict[str, Any], image: dict[str, Any] | None) -> ContainerRecord | None:
        config = inspect.get("Config") or {}
        given = config.get("Image") or ""
        if not given:
            return None
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        name = str(inspect.get("Name") or cid[:12]).lstrip("/")
        project, service = labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)
        state = (inspect.get("State") or {}).get("Status") or ""
        platform = None
        digest = None
        problem = None
        if image is not None:
            arch, os_name, variant = image.get("Architecture"), image.get("Os") or "linux", image.get("Variant")
            platform = "/".join(p for p in (os_name, arch, variant) if p) if arch else None
            digest = _repo_digest(given, image.get("RepoDigests") or [])
        else:
            problem = "its image is no longer on the host"
        return ContainerRecord(
            cluster=self.settings.cluster or self.name, namespace=project or "",
            workload_kind="compose-service" if project and service else "container",
            workload=service if project and service else name, pod=name, container=service or name,
            image=given, instance=cid, image_id=str(inspect.get("Image") or ""), digest=digest,
            platform=platform or self.settings.platform, node=self.settings.cluster or self.name,
            state=str(state), labels=labels, problem=problem,
        )


def _repo_digest(given: str, repo_digests: list[str]) -> str | None:
    """The RepoDigest of the repository the container names; the only one when there is one."""
    try:
        wanted = parse_reference(given).name
    except InvalidReference:
        wanted = None
    digests = []
    for entry in repo_digests:
        repository, _, digest = str(entry).rpartition("@")
        if not digest.startswith("sha256:"):
            continue
        try:
            name = parse_reference(repository).name
        except InvalidReference:
            name = repository
        if wanted is not None and name == wanted:
            return digest
        digests.append(digest)
    return digests[0] if len(set(digests)) == 1 else None
