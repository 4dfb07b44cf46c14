"""``oci-archive:PATH``: an OCI image layout packed in a tar (``skopeo copy … oci-archive:``, ``docker save`` ≥ 25)."""

from __future__ import annotations

import os

from keelwatch.images.layout import OciLayoutImage
from keelwatch.images.source import OpenOptions
from keelwatch.images.tarblobs import TarBlobs


class OciArchiveSource:
    scheme = "oci-archive"

    def open(self, location: str, reference: str, options: OpenOptions) -> OciLayoutImage:
        blobs = TarBlobs(location)
        try:
            return OciLayoutImage(blobs.open, blobs.has, reference=reference,
                                  name=os.path.abspath(location), source_kind=self.scheme,
                                  options=options, on_close=blobs.close)
        except BaseException:
            blobs.close()
            raise
