"""Package URLs (purl spec), built with packageurl-python so encoding is exactly the spec's."""

from __future__ import annotations

from packageurl import PackageURL


def purl(type_: str, name: str, version: str, namespace: str | None = None,
         qualifiers: dict[str, str] | None = None, subpath: str | None = None) -> str:
    clean = {k: v for k, v in (qualifiers or {}).items() if v}
    return PackageURL(type=type_, namespace=namespace or None, name=name, version=version or None,
                      qualifiers=clean or None, subpath=subpath).to_string()
