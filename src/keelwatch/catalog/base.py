"""The cataloger protocol: a cataloger says which files it wants and parses them; nothing more.

Catalogers never open layers or walk trees. The walker (``catalog/walker.py``) streams each layer
once and hands every cataloger only the files it asked for:

- ``PRIMARY`` files are parsed into packages (``var/lib/dpkg/status``, ``*.dist-info/METADATA``,
  a jar, a Go binary). A package belongs to the primary file it came from: when a later layer
  deletes or replaces that file, its packages go with it.
- ``COMPANION`` files are kept (small text only) so that a primary's parser can look them up in
  the ``FileView``: dpkg's ``info/*.list`` (files owned), a dist-info's ``RECORD``.

Catalogers that use companions are parsed at the end of each layer (the tar order of a layer is
arbitrary); the others are parsed as soon as their file has been read, and the content dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease, Package


class Want(enum.Enum):
    NO = 0
    PRIMARY = 1
    COMPANION = 2


@dataclass(frozen=True, slots=True)
class CatalogFile:
    path: str  # root-relative, no leading slash
    content: bytes
    mode: int = 0o644
    layer_digest: str = ""


class FileView(Protocol):
    """The companion files as of the layer being parsed (later layers' changes not yet seen)."""

    def read(self, path: str) -> bytes | None: ...

    def under(self, directory: str) -> list[str]:
        """Companion paths below ``directory`` (no trailing slash), sorted."""


class Cataloger(Protocol):
    #: Registry name = module name = ``found_by`` (e.g. ``dpkg``, ``python``).
    name: str
    #: Bumped when the cataloger's output for the same input changes: stored catalogs made by an
    #: older version are re-cataloged.
    version: int
    #: True if ``parse`` reads companion files from the view (then parsing waits for layer end).
    uses_companions: bool

    def wants(self, entry: TarEntry) -> Want:
        """Decide from the path (and type, mode, size) alone. Called for every file: keep it cheap."""

    def parse(self, file: CatalogFile, view: FileView) -> Iterable[Package]:
        """Packages found in ``file``. Raise ValueError (or any error) on content it cannot read:
        the walker turns it into a visible warning and goes on with the next file."""


class CompletesWithOS(Protocol):
    """Optional ability of OS-package catalogers: finish a package once the OS release is known
    (ecosystem ``Debian:12``, purl ``distro`` qualifier), since os-release may come in any layer."""

    def complete(self, package: Package, os: OSRelease | None) -> Package: ...
