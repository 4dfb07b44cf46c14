"""The accuracy scenarios: a shared image against a shared feed, and the pinned expectations beside them.

``tests/match/data/<scenario>.tsv`` is written by ``make_expected.py`` from the oracle
(``oracle.py``) and read by the tests; nothing in a test run writes it (golden files rewritten by
tests drift with test order: trivy#9699). Each line: advisory, package (the source package for
distro images), version compared, verdict (affected/unknown), why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.walker import catalog_image
from keelwatch.feeds.osv import parse_zip
from keelwatch.images import open_image
from keelwatch.match import AdvisoryIndex
from keelwatch.model import Advisory, CatalogResult, Package

from . import oracle

DATA = Path(__file__).with_name("data")


@dataclass(frozen=True)
class Scenario:
    name: str
    image: str
    feed: str  # zip under feeds/osv
    ecosystem: str  # the ecosystem judged (OSV name, with release for distros)
    note: str  # what the scenario shows, written into the data file

    @property
    def data_file(self) -> Path:
        return DATA / f"{self.name}.tsv"


SCENARIOS = {s.name: s for s in (
    Scenario("debian12-python.PyPI", "debian12-python", "PyPI.zip", "PyPI",
             "Every PyPA advisory (PYSEC) whose ranges or versions list contain an installed PyPI package."),
    Scenario("debian12-python.PyPI-before-2023", "debian12-python", "PyPI.before-2023-01-01.zip", "PyPI",
             "The same image against the PyPA database as it stood on 2022-12-30 (the replay's first half)."),
    Scenario("go-tools.Go", "go-tools", "Go.zip", "Go",
             "stdlib findings come from each binary's toolchain version (dive: go1.24.1, shfmt: go1.26.1); "
             "module findings from the build info. Matched at module level: the records' "
             "ecosystem_specific.imports (packages and symbols) are not used, as in Trivy."),
    Scenario("node-app.npm", "node-app", "npm-ghsa-subset.zip", "npm",
             "GHSA records present in the shared subset only: the subset is incomplete, so a GHSA absent "
             "here says nothing about the package."),
    Scenario("java-app.Maven", "java-app", "Maven-ghsa-subset.zip", "Maven",
             "GHSA records present in the shared subset only (incomplete, as for npm)."),
    Scenario("debian11-openssl.Debian", "debian11-openssl", "Debian.zip", "Debian:11",
             "Debian:11 DSA/DLA records, looked up by SOURCE package (libssl1.1 -> openssl, libcurl4 -> curl) "
             "and compared at the source version."),
)}


@cache
def catalog(images_dir: Path, image: str) -> CatalogResult:
    return catalog_image(open_image(f"oci-archive:{images_dir / image}.oci.tar"), CATALOGERS)


@cache
def advisories(feeds_dir: Path, feed: str) -> tuple[Advisory, ...]:
    source = feed.removesuffix(".zip")
    return tuple(r for r in parse_zip(feeds_dir / "osv" / feed, source=source) if isinstance(r, Advisory))


@cache
def index(feeds_dir: Path, *feeds: str) -> AdvisoryIndex:
    built = AdvisoryIndex()
    for feed in feeds:
        built.add(advisories(feeds_dir, feed))
    return built


def oracle_package(package: Package) -> oracle.Package:
    """The (ecosystem, name, version) a record must name for ``package``: distro records name the source."""
    if package.kind == "os":
        return oracle.Package(package.ecosystem, package.source_name or package.name,
                              package.source_version or package.version)
    return oracle.Package(package.ecosystem, package.name, package.version)


def oracle_packages(result: CatalogResult, ecosystem: str) -> list[oracle.Package]:
    return [oracle_package(p) for p in result.packages if p.ecosystem == ecosystem]


Row = tuple[str, str, str, str]  # advisory, name (canonical), version, verdict


def read_expected(path: Path) -> dict[Row, str]:
    rows: dict[Row, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        advisory, name, version, verdict, why = line.split("\t")
        rows[(advisory, name, version, verdict)] = why
    return rows


def rows_of(expectations: Iterable[oracle.Expectation]) -> dict[Row, str]:
    return {(e.advisory, oracle.canonical(e.package.ecosystem.split(":")[0], e.package.name), e.package.version,
             e.verdict): e.why for e in expectations}
