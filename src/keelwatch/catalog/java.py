"""Java archives: ``*.jar``, ``*.war``, ``*.ear`` and Jenkins plugins (``*.jpi``, ``*.hpi``), with
the archives nested in them (``WEB-INF/lib/``, ``BOOT-INF/lib/``, an ear's wars), read in memory.

Identity, best evidence first:

1. ``META-INF/maven/GROUP/ARTIFACT/pom.properties``, which Maven writes into every artifact it
   builds: one package per file, so a shaded jar yields each artifact it swallowed.
2. Without any pom.properties, ``META-INF/MANIFEST.MF`` read together with the file name: the
   artifact is the file name's (``log4j-1.2-api-2.19.0.jar``) or a title that is an id (not
   "Apache Commons Lang"), confirmed by the Bundle-SymbolicName, which maven-bundle-plugin writes as
   ``GROUP.ARTIFACT`` (dropping a prefix the group repeats: ``org.apache.commons.lang3``) and so
   also gives the group; else the group is the symbolic name's prefix or Implementation-Vendor-Id
   (log4j writes ``org.apache`` there, so it comes last). The version is Implementation-Version,
   else the file name's, else the OSGi-normalised Bundle-Version (1.33 → 1.33.0). Manifests are
   written by hand often enough to be second best.
3. The file name alone (``name-1.2.3.jar``) when there is no manifest to speak of. A package
   without a group is named by its artifact alone: visible, though no Maven advisory will match it.

Trivy settles cases 2 and 3 by looking the jar's SHA-1 up in its Java database (an index of Maven
Central), which keelwatch, offline, does not have. Without it Trivy takes the manifest as written
(``org.apache:Apache Log4j Core``), which these rules avoid.

A jar is a zip, and a zip can be a bomb: every member is read through a cap, nested archives
count against one budget of expanded bytes per top-level file, and nesting stops at a fixed depth.
What a cap cuts off is logged and skipped; the packages found so far stay.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import Package

log = logging.getLogger(__name__)

ARCHIVES = (".jar", ".war", ".ear", ".jpi", ".hpi")
POM_PROPERTIES = "/pom.properties"
MAVEN_DIR = "META-INF/maven/"
MANIFEST = "META-INF/MANIFEST.MF"
MAX_DEPTH = 3  # ear → war → jar → jar: deeper nesting is not how Java ships code
MAX_EXPANDED = 256 << 20  # expanded bytes read from members, nested archives included, per top-level file
MAX_ARCHIVES = 2_000  # nested archives opened per top-level file (each costs a central-directory read)
MAX_TEXT = 1 << 20  # a pom.properties or MANIFEST.MF; real ones are a few KB


@dataclass(slots=True)
class _Budget:
    bytes_left: int
    archives_left: int
    spent: bool = False  # said once; after that the rest of the file is skipped quietly


@dataclass(frozen=True, slots=True)
class Coordinates:
    group: str
    artifact: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.group}:{self.artifact}" if self.group else self.artifact

    @property
    def purl(self) -> str:
        return purl("maven", self.artifact, self.version, namespace=self.group or None)


class JavaCataloger:
    name = "java"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        return Want.PRIMARY if entry.path.endswith(ARCHIVES) else Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(file.content))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"not a readable zip archive: {exc}") from exc
        seen: set[tuple[str, str, str]] = set()
        with archive:
            for coords, location in _archive(archive, file.path, file.path, 0, _Budget(MAX_EXPANDED, MAX_ARCHIVES)):
                key = (coords.name, coords.version, location)
                if key in seen:  # the same pom.properties twice in one archive (a repackaged jar)
                    continue
                seen.add(key)
                yield Package(ecosystem="Maven", name=coords.name, version=coords.version, purl=coords.purl,
                              location=location, files=(file.path,))


def _archive(archive: zipfile.ZipFile, location: str, top: str, depth: int,
             budget: _Budget) -> Iterator[tuple[Coordinates, str]]:
    """Coordinates found in one archive (and below it), each with the location it was found at."""
    found: list[Coordinates] = []
    manifest: bytes | None = None
    nested: list[zipfile.ZipInfo] = []
    for info in archive.infolist():
        name = info.filename
        if name.endswith(POM_PROPERTIES) and MAVEN_DIR in name:
            data = _read(archive, info, MAX_TEXT, budget, location)
            coords = parse_pom_properties(data) if data is not None else None
            if coords:
                found.append(coords)
        elif name == MANIFEST:
            manifest = _read(archive, info, MAX_TEXT, budget, location)
        elif name.endswith(ARCHIVES) and not info.is_dir():
            nested.append(info)
    if not found:
        coords = from_manifest(parse_manifest(manifest) if manifest else {},
                               posixpath.basename(location.rpartition("!")[2]))
        if coords:
            found.append(coords)
    for coords in found:
        yield coords, location
    for info in nested:
        inner = f"{location}!{info.filename}"
        if depth + 1 > MAX_DEPTH:
            log.warning("%s: not descending into %s: nested deeper than %d archives", top, inner, MAX_DEPTH)
            continue
        if budget.archives_left <= 0:
            log.warning("%s: more than %d nested archives; the rest are skipped", top, MAX_ARCHIVES)
            return
        budget.archives_left -= 1
        data = _read(archive, info, MAX_EXPANDED, budget, inner)
        if budget.spent:
            return
        if data is None:
            continue
        try:
            child = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            log.warning("%s: nested %s is not a readable archive: %s", top, inner, exc)
            continue
        with child:
            yield from _archive(child, inner, top, depth + 1, budget)


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, budget: _Budget, where: str) -> bytes | None:
    """A member's content, or None (logged) when it is unreadable or would pass a cap.

    The declared size is checked before anything is inflated, so a bomb costs nothing; zipfile
    stops inflating at the declared size (and fails the CRC when a member lies about it), and the
    read stops one byte past it regardless.
    """
    size = info.file_size
    if size > cap:  # this member alone is implausible: skip it, keep reading the others
        log.warning("%s: %s expands to %d bytes, over the %d-byte cap: skipped", where, info.filename, size, cap)
        return None
    if size > budget.bytes_left:  # the file as a whole has expanded enough: stop
        if not budget.spent:
            log.warning("%s: the %d-byte budget of expanded bytes is spent: the rest of the archive is skipped",
                        where, MAX_EXPANDED)
        budget.spent = True
        return None
    try:
        with archive.open(info) as member:
            data = member.read(size + 1)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile lacks.
        log.warning("%s: cannot read %s: %s", where, info.filename, exc)
        return None
    budget.bytes_left -= len(data)
    if len(data) > size:
        log.warning("%s: %s expands past its declared size: skipped", where, info.filename)
        return None
    return data


def parse_pom_properties(data: bytes) -> Coordinates | None:
    """groupId, artifactId and version from a Java properties file, or None if one is missing."""
    values: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut > 0:
            values[line[:cut].strip()] = line[cut + 1:].strip()
    group, artifact, version = values.get("groupId"), values.get("artifactId"), values.get("version")
    if not group or not artifact or not version or "${" in version:
        return None
    return Coordinates(group, artifact, version)


def parse_manifest(data: bytes) -> dict[str, str]:
    """The main section of a MANIFEST.MF (it ends at the first empty line; the sections after it
    describe entries, not the archive). Lines longer than 72 bytes continue after a single space."""
    fields: dict[str, str] = {}
    key = None
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if not line:
            break
        if line[0] == " " and key is not None:
            fields[key] += line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    return fields


def from_manifest(fields: dict[str, str], file_name: str) -> Coordinates | None:
    """The archive's own coordinates from its manifest, helped by its file name."""
    splits = file_name_splits(file_name)
    titles = [t for k in ("Implementation-Title", "Specification-Title", "Bundle-Name")
              if _is_id(t := _field(fields, k))]
    symbolic = _field(fields, "Bundle-SymbolicName").split(";")[0].strip()
    group, artifact = split_symbolic_name(symbolic, [a for a, _ in splits] + titles)
    if not artifact:
        artifact = titles[0] if titles else splits[0][0]
        group = symbolic.rpartition(".")[0] or _field(fields, "Implementation-Vendor-Id")
    file_version = next((v for a, v in splits if a == artifact), splits[0][1])
    # Implementation-Version is the build's version; an OSGi Bundle-Version is normalised (1.33 →
    # 1.33.0) and a Specification-Version often shortened (3.12 for 3.12.0), so they come last.
    version = _field(fields, "Implementation-Version") or file_version or _field(
        fields, "Bundle-Version") or _field(fields, "Specification-Version")
    if not artifact or not version:
        return None
    return Coordinates(group if _is_id(group) else "", artifact, version)


def split_symbolic_name(symbolic: str, candidates: list[str]) -> tuple[str, str]:
    """(group, artifact) from an OSGi Bundle-SymbolicName, given artifact names to look for.

    maven-bundle-plugin writes ``GROUP.ARTIFACT`` (``com.fasterxml.jackson.core.jackson-databind``),
    dropping the artifact's prefix when it repeats the group's last segment (``org.apache.commons``
    + ``commons-lang3`` → ``org.apache.commons.lang3``); Eclipse bundles use the artifact whole
    (``org.eclipse.jdt.core``). Returns ("", "") when no candidate fits.
    """
    if not symbolic:
        return "", ""
    for artifact in candidates:
        if symbolic == artifact and "." in symbolic:
            return symbolic.rpartition(".")[0], artifact
        if symbolic.endswith("." + artifact):
            return symbolic[: -len(artifact) - 1], artifact
        dot = symbolic.find(".")
        while dot > 0:
            group, tail = symbolic[:dot], symbolic[dot + 1:]
            if artifact == f"{group.rpartition('.')[2]}-{tail}":
                return group, artifact
            dot = symbolic.find(".", dot + 1)
    return "", ""


def _field(fields: dict[str, str], key: str) -> str:
    value = fields.get(key, "").strip()
    return "" if value.startswith("%") else value  # %bundleName: a localisation key, not a value


def file_name_splits(name: str) -> list[tuple[str, str]]:
    """The ways to read ``ARTIFACT-VERSION.jar``, likeliest first: the version starts after a ``-``
    followed by a digit, and both halves may hold such a pair (``log4j-1.2-api-2.19.0.jar``,
    ``guava-31.1-jre.jar``), so every such ``-`` is a candidate; last, the whole stem without a version."""
    stem = name.rpartition(".")[0] or name
    splits = [(stem[:i], stem[i + 1:]) for i in range(1, len(stem) - 1) if stem[i] == "-" and stem[i + 1].isdigit()]
    return [*splits, (stem, "")]


def _is_id(text: str) -> bool:
    return bool(text) and not any(c.isspace() for c in text) and not text.startswith("%")
