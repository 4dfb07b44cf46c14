"""``dir:ROOTFS``: an unpacked root filesystem on disk, read as one layer.

Nothing outside the root is ever opened: the walk does not follow symlinks, and files are opened
with O_NOFOLLOW. The identity is a digest over every entry's path, type, size, mode and mtime, so
a changed tree is a new "image" and an unchanged one is not cataloged twice.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

from keelwatch.errors import ImageError
from keelwatch.images.layers import (
    BLOCKDEV,
    CHARDEV,
    DIRECTORY,
    FIFO,
    OTHER,
    REGULAR,
    SYMLINK,
    Limits,
    TarEntry,
)
from keelwatch.images.manifest import host_platform
from keelwatch.images.source import LayerContents, OpenOptions
from keelwatch.model import Image, Layer

_KINDS = ((stat.S_ISREG, REGULAR), (stat.S_ISDIR, DIRECTORY), (stat.S_ISLNK, SYMLINK),
          (stat.S_ISCHR, CHARDEV), (stat.S_ISBLK, BLOCKDEV), (stat.S_ISFIFO, FIFO))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return OTHER


class _DirLayer:
    def __init__(self, root: str, layer: Layer, entries: list[tuple[TarEntry, str]], limits: Limits):
        self.layer = layer
        self.skipped: list[tuple[str, str]] = []
        self._root, self._entries, self._limits = root, entries, limits

    def entries(self) -> Iterator[TarEntry]:
        for entry, _ in self._entries:
            yield entry

    def read(self, entry: TarEntry) -> bytes:
        if entry.type != REGULAR:
            raise ImageError(f"{entry.path} is a {entry.type}, not a file")
        if entry.size > self._limits.max_file_bytes:
            raise ImageError(f"{entry.path} is {entry.size} bytes, over the per-file limit")
        fd = os.open(os.path.join(self._root, entry.path), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read(self._limits.max_file_bytes + 1)

    def finish(self) -> None:
        pass


class DirImage:
    def __init__(self, root: str, reference: str, options: OpenOptions):
        self._root = root
        self._options = options
        hasher = hashlib.sha256()
        self._entries: list[tuple[TarEntry, str]] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                rel = os.path.relpath(full, root)
                kind = _kind(st.st_mode)
                link = os.readlink(full) if kind == SYMLINK else ""
                entry = TarEntry(path=rel, type=kind, mode=stat.S_IMODE(st.st_mode),
                                 size=st.st_size if kind == REGULAR else 0, linkname=link)
                self._entries.append((entry, full))
                hasher.update(f"{rel}\0{kind}\0{entry.size}\0{entry.mode}\0{st.st_mtime_ns}\0{link}\n"
                              .encode("utf-8", "surrogateescape"))
        digest = f"sha256:{hasher.hexdigest()}"
        self._layer = Layer(digest=digest, media_type="", size=0, diff_id=digest, index=0)
        self.image = Image(reference=reference, name=root, manifest_digest=digest, config_digest="",
                           platform=options.platform or host_platform(), layers=[self._layer],
                           source_kind="dir")

    def layer_contents(self) -> Iterator[AbstractContextManager[LayerContents]]:
        yield nullcontext(_DirLayer(self._root, self._layer, self._entries, self._options.limits))

    def close(self) -> None:
        pass


class DirSource:
    scheme = "dir"

    def open(self, location: str, reference: str, options: OpenOptions) -> DirImage:
        root = os.path.realpath(location)
        if not os.path.isdir(root):
            raise ImageError(f"{location}: not a directory")
        return DirImage(root, reference, options)
