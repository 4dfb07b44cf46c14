"""Walk an opened image once, layer by layer, and run every cataloger on the files it wants.

The state carried from layer to layer is small: the packages found per (cataloger, primary file),
the companion files' contents, and the few files that say which OS this is. Whiteouts and
overwrites in a later layer remove what they delete. A package keeps the layer that first
introduced it (same name and version at the same place), which is what "the layer that added it"
means to a user reading a Dockerfile.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
from collections.abc import Callable, Iterable, Sequence

from keelwatch.catalog.base import Cataloger, CatalogFile, Want
from keelwatch.catalog.osrelease import OS_RELEASE_PATHS, detect_os
from keelwatch.errors import ImageError
from keelwatch.images.layers import HARDLINK, REGULAR, SYMLINK
from keelwatch.images.source import OpenedImage
from keelwatch.model import CatalogResult, CatalogWarning, Package

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_COMPANION_BYTES = 16 << 20  # companions are small text files (lists, RECORDs)
MAX_HARDLINK_CACHE_BYTES = 1 << 20

Progress = Callable[[int, int], None]  # (layers done, layers total)


class _View:
    def __init__(self, files: dict[str, bytes]):
        self._files = files

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def under(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(p for p in self._files if p.startswith(prefix))


def _under(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


class _State:
    """What the image looks like to the catalogers after the layers seen so far."""

    def __init__(self) -> None:
        self.packages: dict[tuple[str, str], list[Package]] = {}  # (cataloger, primary path)
        self.companions: dict[str, bytes] = {}
        self.os_files: dict[str, bytes] = {}
        self.os_links: dict[str, str] = {}

    def delete(self, path: str, *, below_only: bool = False) -> None:
        """Remove ``path`` (and what lies below it) as a whiteout or an overwrite does."""
        def hit(p: str) -> bool:
            return p.startswith(path + "/") if below_only else _under(p, path)

        for key in [k for k in self.packages if hit(k[1])]:
            del self.packages[key]
        for mapping in (self.companions, self.os_files, self.os_links):
            for p in [p for p in mapping if hit(p)]:
                del mapping[p]  # type: ignore[attr-defined]


def catalog_image(
    opened: OpenedImage,
    catalogers: Sequence[Cataloger],
    *,
    progress: Progress | None = None,
) -> CatalogResult:
    image = opened.image
    state = _State()
    warnings: list[CatalogWarning] = []
    total = len(image.layers)
    if progress:
        progress(0, total)
    for done, layer_cm in enumerate(opened.layer_contents(), start=1):
        with layer_cm as contents:
            _walk_layer(contents, catalogers, state, warnings)
            contents.finish()  # verifies the digest: a lying manifest fails the whole image
            for name, reason in contents.skipped:
                warnings.append(CatalogWarning(reason, path=name, layer_digest=contents.layer.digest))
        if progress:
            progress(done, total)

    os_release = detect_os(state.os_files, state.os_links)
    image.os = os_release
    packages: list[Package] = []
    by_name = {c.name: c for c in catalogers}
    for (cataloger_name, _path), found in sorted(state.packages.items()):
        cataloger = by_name[cataloger_name]
        complete = getattr(cataloger, "complete", None)
        for package in found:
            packages.append(complete(package, os_release) if complete else package)
    return CatalogResult(image=image, packages=packages, warnings=warnings,
                         catalogers={c.name: c.version for c in catalogers})


def _walk_layer(contents, catalogers: Sequence[Cataloger], state: _State,  # type: ignore[no-untyped-def]
                warnings: list[CatalogWarning]) -> None:
    layer_digest = contents.layer.digest
    deletions: list[tuple[str, bool]] = []  # (path, below_only): applied to lower layers only
    overwritten: list[str] = []
    new_companions: dict[str, bytes] = {}
    new_os_files: dict[str, bytes] = {}
    new_os_links: dict[str, str] = {}
    read_this_layer: dict[str, bytes] = {}  # wanted contents, for hard links within the layer
    deferred: list[tuple[Cataloger, CatalogFile]] = []
    found: dict[tuple[str, str], list[Package]] = {}

    def warn(message: str, path: str, cataloger: str = "") -> None:
        warnings.append(CatalogWarning(message, path=path, layer_digest=layer_digest, cataloger=cataloger))

    for entry in contents.entries():
        path = entry.path
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            parent = posixpath.dirname(path)
            if base == OPAQUE_MARKER:
                deletions.append((parent, True))
            else:
                deletions.append((posixpath.join(parent, base[len(WHITEOUT_PREFIX):]), False))
            continue
        overwritten.append(path)
        if path in OS_RELEASE_PATHS:
            if entry.type == SYMLINK:
                new_os_links[path] = entry.linkname
            elif entry.type == REGULAR and entry.size <= 1 << 20:
                new_os_files[path] = contents.read(entry)
            continue
        if entry.type not in (REGULAR, HARDLINK):
            continue
        wanting = [(c, w) for c in catalogers if (w := c.wants(entry)) is not Want.NO]
        if not wanting:
            continue
        if entry.type == HARDLINK:
            data = read_this_layer.get(entry.linkname)
            if data is None:
                warn(f"hard link to {entry.linkname}, which this layer does not hold as a readable file", path)
                continue
        else:
            try:
                data = contents.read(entry)
            except ImageError as exc:
                warn(str(exc), path)
                continue
        read_this_layer[path] = data
        for cataloger, want in wanting:
            if want is Want.COMPANION:
                if len(data) <= MAX_COMPANION_BYTES:
                    new_companions[path] = data
                continue
            file = CatalogFile(path=path, content=data, mode=entry.mode, layer_digest=layer_digest)
            if cataloger.uses_companions:
                deferred.append((cataloger, file))
            else:
                found[(cataloger.name, path)] = _run(cataloger, file, None, warn)
        # Only small files stay cached for hard links later in this layer: keeping every wanted
        # binary of a big /usr/bin layer would hold them all in memory at once.
        if len(data) > MAX_HARDLINK_CACHE_BYTES:
            read_this_layer.pop(path, None)

    previous = state.packages.copy()
    for path, below_only in deletions:
        state.delete(path, below_only=below_only)
    # A file, link or directory written here replaces whatever this path was below.
    replaced = set(overwritten)
    for key in [k for k in state.packages if k[1] in replaced]:
        del state.packages[key]
    for path in overwritten:
        state.companions.pop(path, None)
        state.os_files.pop(path, None)
        state.os_links.pop(path, None)
    state.companions.update(new_companions)
    state.os_files.update(new_os_files)
    state.os_links.update(new_os_links)
    view = _View(state.companions)
    for cataloger, file in deferred:
        found[(cataloger.name, file.path)] = _run(cataloger, file, view, warn)
    for key, packages in found.items():
        state.packages[key] = _keep_first_layer(packages, previous.get(key, []))


def _run(cataloger: Cataloger, file: CatalogFile, view: _View | None,
         warn: Callable[[str, str, str], None]) -> list[Package]:
    try:
        packages = list(cataloger.parse(file, view or _View({})))
    except Exception as exc:  # noqa: BLE001 - one unreadable file must not sink the image
        log.debug("cataloger %s failed on %s", cataloger.name, file.path, exc_info=True)
        warn(f"{cataloger.name}: cannot read {file.path}: {exc}", file.path, cataloger.name)
        return []
    return [
        dataclasses.replace(p, layer_digest=p.layer_digest or file.layer_digest,
                            found_by=p.found_by or cataloger.name, location=p.location or file.path)
        for p in packages
    ]


def _keep_first_layer(packages: Iterable[Package], before: list[Package]) -> list[Package]:
    earlier = {(p.name, p.version, p.arch): p.layer_digest for p in before}
    out = []
    for p in packages:
        first = earlier.get((p.name, p.version, p.arch))
        out.append(dataclasses.replace(p, layer_digest=first) if first else p)
    return out
