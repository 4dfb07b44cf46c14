"""Every file an image holds, as its layers leave it: what runtime SBOM verification compares against.

The catalog keeps the files each package owns, not the whole tree, so ``list_image_files`` reads
the layers once more (streaming, nothing extracted) and applies whiteouts, opaque directories
and overwrites the way the walker does. Symlinks are kept: a path seen at runtime
(``/bin/sh``, ``/lib64/ld-linux-x86-64.so.2``) is resolved through them before it is looked up.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from keelwatch.images.layers import DIRECTORY, HARDLINK, REGULAR, SYMLINK
from keelwatch.images.source import OpenedImage

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(slots=True)
class ImageFiles:
    files: set[str] = field(default_factory=set)  # regular files (and hard links), root-relative
    links: dict[str, str] = field(default_factory=dict)  # symlink path → target as written


def list_image_files(opened: OpenedImage) -> ImageFiles:
    state = ImageFiles()
    for layer_cm in opened.layer_contents():
        with layer_cm as contents:
            deletions: list[tuple[str, bool]] = []
            added_files: list[str] = []
            added_links: dict[str, str] = {}
            replaced: list[str] = []
            for entry in contents.entries():
                base = posixpath.basename(entry.path)
                parent = posixpath.dirname(entry.path)
                if base == OPAQUE_MARKER:
                    deletions.append((parent, True))
                elif base.startswith(WHITEOUT_PREFIX):
                    deletions.append((posixpath.join(parent, base[len(WHITEOUT_PREFIX):]), False))
                elif entry.type in (REGULAR, HARDLINK):
                    added_files.append(entry.path)
                elif entry.type == SYMLINK:
                    added_links[entry.path] = entry.linkname
                elif entry.type == DIRECTORY:
                    replaced.append(entry.path)  # a directory replaces a file or link of that name
            contents.finish()
        for path, below_only in deletions:
            _delete(state, path, below_only)
        for path in (*added_files, *added_links, *replaced):
            state.files.discard(path)
            state.links.pop(path, None)
        state.files.update(added_files)
        state.links.update(added_links)
    return state


def _delete(state: ImageFiles, path: str, below_only: bool) -> None:
    prefix = path + "/" if path else ""
    if not below_only:
        state.files.discard(path)
        state.links.pop(path, None)
    state.files.difference_update([f for f in state.files if f.startswith(prefix)])
    for link in [k for k in state.links if k.startswith(prefix)]:
        del state.links[link]
