"""Random access to the members of an uncompressed tar file (an oci-archive or docker-archive).

The outer archive is read once to learn where each member's bytes start; a blob is then a
bounded window over the file, so layers stream straight from the archive without extracting.
"""

from __future__ import annotations

import io
import os
import tarfile
from typing import BinaryIO

from keelwatch.errors import ImageError
from keelwatch.images.layers import normalise_path


class _Window(io.RawIOBase):
    """A read-only view of ``length`` bytes at ``offset`` in an open file."""

    def __init__(self, fd: BinaryIO, offset: int, length: int):
        self._fd, self._offset, self._length, self._pos = fd, offset, length, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        left = self._length - self._pos
        if left <= 0:
            return 0
        n = min(len(buffer), left)
        self._fd.seek(self._offset + self._pos)
        data = self._fd.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        if not data:
            raise ImageError("archive truncated inside a blob")
        return len(data)


class TarBlobs:
    def __init__(self, path: str):
        if not os.path.exists(path):
            raise ImageError(f"no such file: {path}")
        if os.path.isdir(path):
            raise ImageError(f"{path} is a directory", hint="use oci-dir: or dir: for directories")
        self._fd: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._members: dict[str, tarfile.TarInfo] = {}
        hardlinks: dict[str, str] = {}
        try:
            with tarfile.open(fileobj=self._fd, mode="r:") as tar:
                for info in tar:
                    name = normalise_path(info.name)
                    if name is None or not name:
                        continue
                    if info.islnk():
                        target = normalise_path(info.linkname)
                        if target:
                            hardlinks[name] = target
                    elif info.isfile():
                        self._members[name] = info
                    # Symlinks are ignored: a blob is a plain file, and a link could point anywhere.
        except (tarfile.TarError, EOFError) as exc:
            self._fd.close()
            raise ImageError(f"{path}: not a readable tar archive ({exc})") from exc
        for name, target in hardlinks.items():
            if target in self._members:
                self._members[name] = self._members[target]
        size = os.fstat(self._fd.fileno()).st_size
        for name, info in self._members.items():
            if info.offset_data + info.size > size:
                self._fd.close()
                raise ImageError(f"{path}: truncated archive ({name} is cut short)")
        self.path = path

    def has(self, name: str) -> bool:
        return name in self._members

    def open(self, name: str) -> BinaryIO:
        info = self._members.get(name)
        if info is None:
            raise ImageError(f"{self.path}: no member {name!r}")
        return io.BufferedReader(_Window(self._fd, info.offset_data, info.size), 1 << 20)  # type: ignore[return-value]

    def read(self, name: str, limit: int) -> bytes:
        info = self._members.get(name)
        if info is None:
            raise ImageError(f"{self.path}: no member {name!r}")
        if info.size > limit:
            raise ImageError(f"{self.path}: {name} is {info.size} bytes (limit {limit})")
        with self.open(name) as f:
            return f.read()

    def size(self, name: str) -> int:
        return self._members[name].size

    def close(self) -> None:
        self._fd.close()
