"""Identity: from what a source reports to the manifest digest that runs, through the registry.

Rules, in order:

1. A digest the runtime states (``imageID``, a RepoDigest, a CMDB column) beats the reference's
   tag: it is what runs. If that digest is a multi-arch index (containerd reports the digest it
   pulled, which for a multi-arch tag is the index), the manifest for the node's platform is
   picked from it: the container's ``digest`` is that manifest, ``index_digest`` the index.
2. A tag-only reference is resolved to a digest (again down to the platform's manifest). The
   answer is cached for a TTL; digests are immutable and cached for the resolver's life.
3. A failure is recorded as ``resolution_error`` ("unresolved: …" when no digest is known,
   "unverified: …" when the stated digest could not be checked), never dropped.
4. Tag drift: when a digest is known and the reference has a tag, the tag's current digest is
   kept as ``tag_digest``; drift is "tag_digest is neither the digest nor its index".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from keelwatch.errors import ImageError, InvalidReference, KeelwatchError
from keelwatch.images.manifest import INDEX_TYPES, choose_manifest, media_type_of
from keelwatch.images.reference import parse_reference
from keelwatch.images.registry import RegistryClient
from keelwatch.images.source import OpenOptions
from keelwatch.model import ImageRef, Platform


@dataclass(frozen=True, slots=True)
class Resolution:
    reference: str | None  # normalised; None when the image is not a valid reference
    digest: str | None
    index_digest: str | None = None
    tag_digest: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Manifest:
    digest: str
    index: tuple[dict[str, Any], ...] | None  # the index's manifest descriptors, None for a manifest


def normalise(image: str) -> ImageRef:
    """The Docker-normalised reference of an image as a runtime spells it (``docker.io/nginx``, ``nginx``)."""
    return parse_reference(image)


class Resolver:
    """Tag → digest and index → platform manifest, cached; one per sync engine, thread-safe."""

    def __init__(self, *, ttl: float = 600.0, insecure_registries: Collection[str] = (),
                 docker_config: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.insecure = set(insecure_registries)
        self.docker_config = docker_config
        self.clock = clock
        self._tags: dict[tuple[str, str], tuple[float, str | KeelwatchError]] = {}
        self._manifests: dict[tuple[str, str], _Manifest | tuple[float, KeelwatchError]] = {}
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()
        self.requests = 0  # registry round trips made: the cache's effect is visible in tests

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the rules ------------------------------------------------------------------------------

    def resolve(self, image: str, *, stated_digest: str | None, platform: str | None,
                enabled: bool = True) -> Resolution:
        try:
            ref = normalise(image)
        except InvalidReference as exc:
            return Resolution(None, stated_digest, error=f"invalid reference: {exc}")
        known = stated_digest or ref.digest
        if not enabled:
            return Resolution(str(ref), known, error=None if known else "unresolved: resolution is off for this source")
        want = _platform(platform)
        if known:
            tag_digest = None
            if ref.tag:
                tag = self._tag(ref)
                tag_digest = tag if isinstance(tag, str) else None
            try:
                manifest = self._manifest(ref, known)
            except KeelwatchError as exc:
                return Resolution(str(ref), known, None, tag_digest, f"unverified: {exc}")
            digest, index, error = self._pick(ref, manifest, want)
            return Resolution(str(ref), digest, index, tag_digest, error)
        tag = self._tag(ref)
        if not isinstance(tag, str):
            return Resolution(str(ref), None, error=f"unresolved: {tag}")
        try:
            manifest = self._manifest(ref, tag)
        except KeelwatchError as exc:
            return Resolution(str(ref), None, None, tag, f"unresolved: {exc}")
        digest, index, error = self._pick(ref, manifest, want)
        return Resolution(str(ref), digest, index, tag, error)

    def _pick(self, ref: ImageRef, manifest: _Manifest,
              want: Platform | None) -> tuple[str | None, str | None, str | None]:
        if manifest.index is None:
            return manifest.digest, None, None
        if want is None:
            return None, manifest.digest, "unresolved: a multi-arch index, and the platform that runs it is not known"
        try:
            chosen = choose_manifest({"manifests": list(manifest.index)}, want, f"{ref.name}@{manifest.digest}")
        except ImageError as exc:
            return None, manifest.digest, f"unresolved: {exc}"
        return str(chosen.get("digest")), manifest.digest, None

    # --- cached registry questions ----------------------------------------------------------------

    def _tag(self, ref: ImageRef) -> str | KeelwatchError:
        key = (ref.name, ref.tag or "latest")
        now = self.clock()
        with self._lock:
            cached = self._tags.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer: str | KeelwatchError
        try:
            digest, _media_type = self._client(ref).head_manifest(ref.tag or "latest")
            answer = digest
        except KeelwatchError as exc:
            answer = exc
        finally:
            self.requests += 1
        # A failure is cached too, for a tenth of the TTL: a refusing registry is not asked per container.
        expires = now + (self.ttl if isinstance(answer, str) else self.ttl / 10)
        with self._lock:
            self._tags[key] = (expires, answer)
        return answer

    def _manifest(self, ref: ImageRef, digest: str) -> _Manifest:
        key = (ref.name, digest)
        with self._lock:
            cached = self._manifests.get(key)
        if isinstance(cached, _Manifest):
            return cached
        if cached is not None and cached[0] > self.clock():
            raise cached[1]
        try:
            fetched = self._client(ref).get_manifest(digest)
        except KeelwatchError as exc:
            with self._lock:
                self._manifests[key] = (self.clock() + self.ttl / 10, exc)
            raise
        finally:
            self.requests += 1
        index = None
        if media_type_of(fetched.doc) in INDEX_TYPES:
            index = tuple(m for m in fetched.doc.get("manifests", []) if isinstance(m, dict))
        manifest = _Manifest(fetched.digest, index)
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def _client(self, ref: ImageRef) -> RegistryClient:
        with self._lock:
            client = self._clients.get(ref.name)
            if client is None:
                options = OpenOptions(insecure=ref.registry in self.insecure, docker_config=self.docker_config)
                client = self._clients[ref.name] = RegistryClient(ref, options)
            return client


def _platform(text: str | None) -> Platform | None:
    if not text:
        return None
    try:
        return Platform.parse(text)
    except ValueError:
        return None


def parse_image_id(image_id: str) -> tuple[str | None, str | None]:
    """(repository, digest) from a runtime's image ID, when it names a manifest digest.

    ``docker-pullable://nginx@sha256:…`` (dockershim), ``docker.io/library/nginx@sha256:…``
    (containerd, CRI-O) name what was pulled. A bare ``sha256:…`` (``docker://sha256:…``) is the
    image's *config* digest, not a manifest digest: it identifies nothing in a registry, so None.
    """
    text = image_id.strip()
    for scheme in ("docker-pullable://", "docker://", "containerd://", "cri-o://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    if "@" not in text:
        return None, None
    repository, _, digest = text.rpartition("@")
    if not digest.startswith(("sha256:", "sha512:")) or len(digest) < 71:
        return None, None
    return repository or None, digest
