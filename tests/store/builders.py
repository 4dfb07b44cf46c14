"""Catalog results to store: small, but with every field set, so a round trip proves each one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from keelwatch.model import CatalogResult, CatalogWarning, Image, Layer, OSRelease, Package, Platform

CATALOGERS = {"dpkg": 3, "python": 1}


def digest(n: int | str) -> str:
    return f"sha256:{str(n).rjust(64, '0')}"


def debian_package(name: str, version: str = "1.0-1", *, source: str = "", files: int = 3,
                   layer: str = digest("l1")) -> Package:
    return Package(
        ecosystem="Debian:12", name=name, version=version, kind="os",
        purl=f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
        source_name=source or name, source_version=version, arch="amd64", layer_digest=layer,
        found_by="dpkg", location="var/lib/dpkg/status",
        files=tuple(f"usr/share/doc/{name}/file{i}" for i in range(files)), licenses=("GPL-2.0-or-later",),
    )


def python_package(name: str, version: str, *, site: str = "usr/lib/python3/dist-packages") -> Package:
    return Package(
        ecosystem="PyPI", name=name, version=version, kind="lang", purl=f"pkg:pypi/{name.lower()}@{version}",
        layer_digest=digest("l2"), found_by="python", location=f"{site}/{name}-{version}.dist-info/METADATA",
        files=(f"{site}/{name.lower()}/__init__.py", f"{site}/{name}-{version}.dist-info/RECORD"),
        licenses=("MIT", "Apache-2.0"),
    )


def catalog_result(manifest: int | str = 1, packages: list[Package] | None = None, *,
                   catalogers: dict[str, int] | None = None) -> CatalogResult:
    image = Image(
        reference="registry:localhost:5000/app:1.2",
        name="localhost:5000/app",
        manifest_digest=digest(manifest),
        config_digest=digest("c"),
        platform=Platform("linux", "arm64", "v8"),
        layers=[
            Layer(digest("l1"), "application/vnd.oci.image.layer.v1.tar+gzip", 29_123_456, digest("d1"), 0),
            Layer(digest("l2"), "application/vnd.oci.image.layer.v1.tar+zstd", 5 << 30, digest("d2"), 1),
        ],
        index_digest=digest("i"),
        os=OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm"),
        created=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        labels={"org.opencontainers.image.source": "https://example.org/app", "maintainer": "ops"},
        source_kind="registry",
        repo_tags=("localhost:5000/app:1.2", "localhost:5000/app:latest"),
    )
    if packages is None:
        packages = [
            debian_package("libssl3", "3.0.11-1~deb12u2", source="openssl", files=40),
            debian_package("openssl", "3.0.11-1~deb12u2"),
            debian_package("base-files", "12.4+deb12u5", files=0),
            python_package("Django", "4.2.7"),
            # The same distribution twice in one image (two virtualenvs): two links, one identity.
            python_package("Django", "4.2.7", site="opt/venv/lib/python3.11/site-packages"),
        ]
    warnings = [
        CatalogWarning("unreadable METADATA: not UTF-8", path="opt/x.dist-info/METADATA", layer_digest=digest("l2"),
                       cataloger="python"),
        CatalogWarning("device file skipped", path="dev/null"),
    ]
    return CatalogResult(image=image, packages=packages, warnings=warnings,
                         catalogers=dict(catalogers or CATALOGERS), extra={"sbom": {"tool": "keelwatch"}})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
