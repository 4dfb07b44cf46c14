"""PyPI: PEP 440 ordering, through ``packaging`` (the reference implementation pip uses).

``packaging.version.Version`` objects are the keys: they compare exactly as PEP 440 says
(epochs, pre/post/dev releases, local versions) and are hashable. Since packaging 22 there is no
"legacy" fallback, so a string PEP 440 cannot read is a ``VersionError`` — the same strings pip
itself refuses to order.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from keelwatch.versions.base import invalid, require_str


class Pep440Scheme:
    name = "pep440"

    def key(self, version: str) -> Version:
        try:
            return Version(require_str(self.name, version))
        except InvalidVersion as error:
            raise invalid(self.name, version, "not PEP 440 (see packaging.version)") from error
