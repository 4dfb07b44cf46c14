"""``oci-dir:PATH``: an OCI image layout directory on disk (``skopeo copy … oci:DIR``)."""

from __future__ import annotations

import os
from typing import BinaryIO

from keelwatch.errors import ImageError
from keelwatch.images.layout import OciLayoutImage
from keelwatch.images.source import OpenOptions


class OciDirSource:
    scheme = "oci-dir"

    def open(self, location: str, reference: str, options: OpenOptions) -> OciLayoutImage:
        root = os.path.realpath(location)
        if not os.path.isdir(root):
            raise ImageError(f"{location}: not a directory")

        def resolve(relative: str) -> str:
            # Blob paths come from digests in JSON we do not trust: stay inside the layout, and
            # never follow a symlink that leads out of it.
            path = os.path.realpath(os.path.join(root, relative))
            if not path.startswith(root + os.sep):
                raise ImageError(f"{location}: {relative} points outside the layout")
            return path

        def opener(relative: str) -> BinaryIO:
            path = resolve(relative)
            if not os.path.isfile(path):
                raise ImageError(f"{location}: missing {relative}")
            return open(path, "rb")  # noqa: SIM115 - the caller closes it

        def exists(relative: str) -> bool:
            return os.path.isfile(resolve(relative))

        return OciLayoutImage(opener, exists, reference=reference, name=root,
                              source_kind=self.scheme, options=options)
