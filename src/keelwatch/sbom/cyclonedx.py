"""CycloneDX 1.6 JSON out, written by cyclonedx-python-lib so the document is the spec's, not ours.

Shape (other tools rely on it, keep it stable):

- ``metadata.component``: the image, type ``container``, name = image name, version = manifest
  digest, purl ``pkg:oci/…``, properties ``keelwatch:image:*`` (config digest, platform, …).
- one ``operating-system`` component for the OS release (name = os-release ID, version = VERSION_ID).
- one ``library`` component per package: ``bom-ref`` = the package id (stable across runs), a purl
  that always carries the version, licenses where known, and properties ``keelwatch:package:*``
  (ecosystem, kind, source_name, source_version, arch, layer_digest, location, found_by).
- dependencies: the image depends on the OS and on every package.

Files owned by packages are left out: they would multiply the size of the document for little use.
The serial number and timestamp are the only parts that change from run to run; both can be fixed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from keelwatch import __version__
from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, Image, OSRelease, Package
from keelwatch.sbom.common import IMAGE_PREFIX, OS_PREFIX, PACKAGE_FIELDS, PACKAGE_PREFIX, image_purl, package_purl

_LICENSES = LicenseFactory()


def to_cyclonedx(
    result: CatalogResult,
    *,
    serial_number: uuid.UUID | None = None,
    timestamp: datetime | None = None,
    indent: int | None = 2,
) -> str:
    """The catalog as a CycloneDX 1.6 JSON document (``serial_number``/``timestamp`` fixed for tests)."""
    image = result.image
    image_component = _image_component(image)
    os_component = _os_component(image.os) if image.os else None
    components = [os_component] if os_component else []
    for package, ref in _with_unique_refs(result.packages):
        components.append(_package_component(package, ref))
    # Handed over in the library's own order, its sorted sets need one comparison per item instead
    # of n·log n of its (slow) component comparisons.
    components.sort(key=_library_order)

    bom = Bom(
        serial_number=serial_number or uuid.uuid4(),
        metadata=BomMetaData(
            timestamp=timestamp or datetime.now(UTC),
            tools=ToolRepository(components=[Component(type=ComponentType.APPLICATION, name="keelwatch",
                                                       version=__version__)]),
            component=image_component,
            properties=[Property(name=f"keelwatch:cataloger:{name}", value=str(version))
                        for name, version in sorted(result.catalogers.items())],
        ),
        components=components,
    )
    # Every component gets its dependency entry here: the library's own registration searches the
    # whole graph per component, which is quadratic in the package count.
    refs = sorted((c.bom_ref for c in components), key=lambda r: r.value or "")
    bom.dependencies = [Dependency(ref=image_component.bom_ref, dependencies=[Dependency(ref=r) for r in refs]),
                        *(Dependency(ref=r) for r in refs)]
    # The library's (deprecated) pre-output check registers each component's dependency again by a
    # linear search: quadratic, seconds for a few thousand packages. The graph above is complete.
    bom.validate = lambda: True  # type: ignore[method-assign]
    try:
        out = JsonV1Dot6(bom).output_as_string(indent=indent)
    except Exception as exc:  # the library raises several unrelated types for a model it rejects
        raise SbomError(f"cannot write CycloneDX for {image.name}: {exc}") from exc
    if not components:
        # The library leaves an empty list out; an explicit one says "nothing found" (a scratch
        # image), where a missing list reads as a document that is not an inventory at all.
        out = json.dumps({**json.loads(out), "components": []}, indent=indent)
    return out


def _image_component(image: Image) -> Component:
    purl = image_purl(image)
    properties = [
        (IMAGE_PREFIX + "config_digest", image.config_digest),
        (IMAGE_PREFIX + "index_digest", image.index_digest or ""),
        (IMAGE_PREFIX + "platform", str(image.platform)),
        (IMAGE_PREFIX + "reference", image.reference),
        (IMAGE_PREFIX + "source_kind", image.source_kind),
        *((IMAGE_PREFIX + "repo_tag", tag) for tag in image.repo_tags),
    ]
    return Component(
        type=ComponentType.CONTAINER, name=image.name or image.reference, version=image.manifest_digest,
        bom_ref=purl, purl=PackageURL.from_string(purl), properties=_properties(properties),
    )


def _os_component(os: OSRelease) -> Component:
    return Component(
        type=ComponentType.OPERATING_SYSTEM, name=os.id, version=os.version_id or None,
        description=os.pretty_name or None, bom_ref=f"os:{os.id}-{os.version_id}" if os.version_id else f"os:{os.id}",
        properties=_properties([(OS_PREFIX + "version_codename", os.version_codename)]),
    )


def _package_component(package: Package, ref: str) -> Component:
    purl = PackageURL.from_string(package_purl(package))
    group = None
    name = package.name
    if purl.type == "maven" and ":" in name:
        # CycloneDX's convention for Maven: groupId in ``group``, artifactId in ``name``.
        group, name = name.split(":", 1)
    return Component(
        type=ComponentType.LIBRARY, name=name, group=group, version=package.version, bom_ref=ref, purl=purl,
        licenses=_licenses(package.licenses),
        properties=_properties((PACKAGE_PREFIX + f, getattr(package, f)) for f in PACKAGE_FIELDS),
    )


def _with_unique_refs(packages: Iterable[Package]) -> Iterable[tuple[Package, str]]:
    """The package id is the bom-ref; a repeated id (a database listing one package twice) gets a
    suffix so the document stays valid and the package is not lost."""
    seen: dict[str, int] = {}
    for package in packages:
        ref = package.id
        count = seen.get(ref, 0)
        seen[ref] = count + 1
        yield package, ref if count == 0 else f"{ref}-{count + 1}"


def _library_order(component: Component) -> tuple[object, ...]:
    """cyclonedx-python-lib's component order (type, group, name, version, bom-ref; None last)."""
    return (component.type.value, component.group is None, component.group or "", component.name,
            component.version is None, component.version or "", component.bom_ref.value or "")


def _properties(pairs: Iterable[tuple[str, str]]) -> list[Property]:
    return [Property(name=name, value=value) for name, value in pairs if value]


def _licenses(values: Iterable[str]) -> list[License]:
    licenses = [_LICENSES.make_from_string(v.strip()) for v in dict.fromkeys(values) if v and v.strip()]
    if len(licenses) > 1:
        # The schema allows one expression alone, or a list of single licenses: never both.
        licenses = [DisjunctiveLicense(name=lic.value) if isinstance(lic, LicenseExpression) else lic
                    for lic in licenses]
    return licenses
