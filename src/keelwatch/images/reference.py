"""Image references, parsed and normalised the way Docker does.

``nginx`` → ``docker.io/library/nginx:latest``; ``localhost:5000/app@sha256:…`` keeps its registry;
the first path component is a registry only if it has a ``.`` or ``:`` or is ``localhost``
(distribution/reference's rule). Source schemes follow Syft: ``docker-archive:``, ``oci-archive:``,
``oci-dir:``, ``dir:``, ``registry:``; a bare reference means ``registry:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keelwatch.errors import InvalidReference
from keelwatch.model import ImageRef

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
SCHEMES = ("docker-archive", "oci-archive", "oci-dir", "dir", "registry")

# From distribution/reference's grammar.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


def parse_reference(text: str) -> ImageRef:
    """Parse and normalise a registry reference; raise InvalidReference with the reason."""
    original = text
    text = text.strip()
    if not text:
        raise InvalidReference("empty image reference")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in reference {original!r}: {digest!r}")
    registry, rest = _split_registry(text)
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in reference {original!r}: {tag!r}")
    if registry == DEFAULT_REGISTRY and "/" not in rest:
        rest = f"library/{rest}"
    if not _PATH.match(rest):
        hint = "repository names are lowercase" if rest.lower() != rest else None
        raise InvalidReference(f"invalid repository name in reference {original!r}: {rest!r}", hint=hint)
    if len(registry) + 1 + len(rest) > 255:
        raise InvalidReference(f"reference too long: {original!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(registry=registry, repository=rest, tag=tag, digest=digest)


def _split_registry(text: str) -> tuple[str, str]:
    first, sep, remainder = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if first != first.lower() and "." not in first and ":" not in first:
            # Uppercase first component is not a registry in Docker's rules either; let the
            # repository check reject it with a clear message.
            return DEFAULT_REGISTRY, text
        if not _DOMAIN.match(first):
            raise InvalidReference(f"invalid registry host in reference {text!r}: {first!r}")
        registry = "docker.io" if first in ("index.docker.io", "registry-1.docker.io") else first
        return registry, remainder
    return DEFAULT_REGISTRY, text


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where an image comes from: a scheme and its location (a path or a registry reference)."""

    scheme: str
    location: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.location}"


def parse_source(text: str) -> SourceSpec:
    """Split ``scheme:location``; a reference without a known scheme is a registry reference."""
    scheme, sep, location = text.partition(":")
    if sep and scheme in SCHEMES:
        if not location:
            raise InvalidReference(f"{scheme}: needs a location, e.g. {scheme}:/path/to/image")
        return SourceSpec(scheme, location)
    return SourceSpec("registry", text)
