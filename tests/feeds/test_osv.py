"""OSV feed: exact records from the shared zips, every bad-input case, and each URL form."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Spool, Unchanged
from keelwatch.feeds.osv import OsvFeed, advisory_from_osv, parse_path
from keelwatch.model import Advisory, AffectedRange, Severity

from .httpserver import Route, TestServer


def advisories(path: Path) -> dict[str, Advisory]:
    out = {}
    for record in parse_path(path, source="osv-test"):
        assert not isinstance(record, Problem), record
        assert isinstance(record, Advisory)
        out[record.id] = record
    return out


@pytest.fixture(scope="module")
def pypi(feeds_dir: Path) -> dict[str, Advisory]:
    return advisories(feeds_dir / "osv" / "PyPI.zip")


def test_every_shared_zip_parses_without_problems(feeds_dir: Path) -> None:
    counts = {z.name: len(advisories(z)) for z in sorted((feeds_dir / "osv").glob("*.zip"))}
    assert counts == {
        "Debian.before-2023-01-01.zip": 4070, "Debian.zip": 4267, "Go.before-2023-01-01.zip": 293,
        "Go.zip": 4291, "Maven-ghsa-subset.zip": 7, "PyPI.before-2023-01-01.zip": 2214, "PyPI.zip": 2661,
        "npm-ghsa-subset.zip": 33,
    }


def test_pysec_record_ranges_aliases_and_git(pypi: dict[str, Advisory]) -> None:
    adv = pypi["PYSEC-2021-108"]
    assert adv.source == "osv-test"
    assert adv.aliases == ("CVE-2021-33503", "GHSA-q2q7-5pp4-w6pg")
    assert adv.modified == datetime(2021, 7, 2, 18, 56, 20, 858344, tzinfo=UTC)
    assert adv.published == datetime(2021, 6, 29, 11, 15, tzinfo=UTC)
    assert adv.withdrawn is None
    (affected,) = adv.affected
    assert (affected.ecosystem, affected.name, affected.purl) == ("PyPI", "urllib3", "pkg:pypi/urllib3")
    assert affected.ranges == (
        AffectedRange("GIT", (("introduced", "0"), ("fixed", "2d4a3fee6de2fa45eb82169361918f759269b4ec")),
                      repo="https://github.com/urllib3/urllib3"),
        AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.26.5"))),
    )
    # Versions stay the strings written: 1.10 is not 1.1.
    assert "1.10" in affected.versions and affected.versions[-1] == "1.9.1" and len(affected.versions) == 67
    assert adv.references[0].startswith("https://github.com/advisories/GHSA-q2q7-5pp4-w6pg")


def test_pypi_withdrawn_records(pypi: dict[str, Advisory]) -> None:
    withdrawn = sorted(a.id for a in pypi.values() if a.withdrawn is not None)
    assert len(withdrawn) == 10
    assert pypi["PYSEC-2022-15"].withdrawn == datetime(2022, 2, 22, 16, 15, 7, tzinfo=UTC)
    assert pypi["PYSEC-2022-15"].aliases == ("CVE-2022-0329", "GHSA-cvp7-c586-cmf4")


def test_pypi_cvss_v3_scores(pypi: dict[str, Advisory]) -> None:
    scored = [s for a in pypi.values() for s in a.severity]
    assert len(scored) == 202
    assert all(s.type == "CVSS_V3" and s.base_score is not None and 0 <= s.base_score <= 10 for s in scored)


def test_go_stdlib_record_keeps_imports(feeds_dir: Path) -> None:
    adv = advisories(feeds_dir / "osv" / "Go.zip")["GO-2024-2887"]
    assert adv.aliases == ("CVE-2024-24790",)
    (affected,) = adv.affected
    assert (affected.ecosystem, affected.name) == ("Go", "stdlib")
    assert affected.ranges == (AffectedRange("SEMVER", (("introduced", "0"), ("fixed", "1.21.11"),
                                                        ("introduced", "1.22.0-0"), ("fixed", "1.22.4"))),)
    imports = json.loads(affected.ecosystem_specific)["imports"]
    assert imports[0]["path"] == "net/netip" and "Addr.IsPrivate" in imports[0]["symbols"]
    assert json.loads(adv.database_specific) == {"review_status": "REVIEWED",
                                                 "url": "https://pkg.go.dev/vuln/GO-2024-2887"}
    # Go writes a zero time for modified/published: kept, not a Problem.
    assert adv.modified == datetime(1, 1, 1, tzinfo=UTC)


def test_debian_dsa_record(feeds_dir: Path) -> None:
    adv = advisories(feeds_dir / "osv" / "Debian.zip")["DSA-5343-1"]
    assert adv.upstream == ("CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286")
    assert adv.summary == "openssl - security update"
    (affected,) = adv.affected
    assert (affected.ecosystem, affected.name) == ("Debian:11", "openssl")
    assert affected.purl == "pkg:deb/debian/openssl?arch=source"
    assert affected.ranges == (AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.1.1n-0+deb11u4"))),)
    assert json.loads(affected.database_specific) == {"source": "data/DSA/list"}


def test_ghsa_cvss_v4_and_v3(feeds_dir: Path) -> None:
    adv = advisories(feeds_dir / "osv" / "npm-ghsa-subset.zip")["GHSA-qwcr-r2fm-qrc7"]
    assert adv.severity == (
        Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "osv-test"),
        Severity("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", 8.7, "osv-test"),
    )
    assert json.loads(adv.database_specific)["severity"] == "HIGH"


# --- bad input ---------------------------------------------------------------------------------------


GOOD = {"id": "TEST-1", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_truncated_zip_is_a_feed_error(tmp_path: Path, feeds_dir: Path) -> None:
    data = (feeds_dir / "osv" / "Go.before-2023-01-01.zip").read_bytes()
    truncated = tmp_path / "all.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError, match="not a readable zip"):
        list(parse_path(truncated, source="osv"))


def test_corrupt_member_is_a_feed_error(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "all.zip", {"TEST-1.json": json.dumps(GOOD).encode() * 50})
    data = bytearray(path.read_bytes())
    data[60:70] = b"\xff" * 10  # inside the first member's compressed bytes
    path.write_bytes(bytes(data))
    with pytest.raises(FeedError, match="corrupt zip member"):
        list(parse_path(path, source="osv"))


@pytest.mark.parametrize(("member", "message"), [
    (b"{not json", "not JSON"),
    (b'"a string"', "not an OSV record"),
    (json.dumps({"hello": "world"}).encode(), "missing 'id'"),
    (json.dumps({**GOOD, "modified": "yesterday"}).encode(), "not an RFC 3339 timestamp"),
    (json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPi", "name": "x"}}]}).encode(),
     "unknown ecosystem 'PyPi'"),
    (json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                                       "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]}).encode(),
     "no 'introduced'"),
    (json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                                       "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]}).encode(),
     "GIT range has no 'repo'"),
    (json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                                       "ranges": [{"type": "ECOSYSTEM",
                                                   "events": [{"introduced": "0", "fixed": "1"}]}]}]}).encode(),
     "not an OSV event"),
])
def test_one_bad_record_is_a_problem_and_the_rest_go_on(tmp_path: Path, member: bytes, message: str) -> None:
    path = write_zip(tmp_path / "all.zip", {"A-1.json": json.dumps({**GOOD, "id": "A-1"}).encode(),
                                            "BAD.json": member,
                                            "Z-1.json": json.dumps({**GOOD, "id": "Z-1"}).encode()})
    records = list(parse_path(path, source="osv"))
    assert [type(r).__name__ for r in records] == ["Advisory", "Problem", "Advisory"]
    problem = records[1]
    assert isinstance(problem, Problem) and problem.where.startswith("all.zip:BAD.json")
    assert message in problem.message


def test_ecosystem_suffixes_and_unlisted_but_ordered_ecosystems_are_known() -> None:
    for ecosystem in ("Debian:12", "Alpine:v3.19", "Ubuntu:Pro:22.04:LTS", "Red Hat:rhel_aus:8.4::appstream",
                      "Hackage", "GitHub Actions", "Fedora"):
        doc = {**GOOD, "affected": [{"package": {"ecosystem": ecosystem, "name": "x"}}]}
        assert advisory_from_osv(doc, source="s").affected[0].ecosystem == ecosystem


def test_an_unparseable_vector_keeps_the_severity_without_a_number() -> None:
    doc = {**GOOD, "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:X"}, {"type": "Ubuntu", "score": "medium"}]}
    assert advisory_from_osv(doc, source="s").severity == (
        Severity("CVSS_V3", "CVSS:3.1/AV:X", None, "s"), Severity("Ubuntu", "medium", None, "s"))


def test_yaml_records_keep_versions_as_written(tmp_path: Path) -> None:
    (tmp_path / "vulns" / "x").mkdir(parents=True)
    (tmp_path / "vulns" / "x" / "PYSEC-0-1.yaml").write_text(
        "id: PYSEC-0-1\nmodified: 2021-07-05T00:01:17.388273Z\naffected:\n- package:\n    ecosystem: PyPI\n"
        "    name: x\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 1.10\n"
        "  versions:\n  - 1.0\n  - 1.2\n")
    (tmp_path / "vulns" / "README.md").write_text("not a record")
    (adv,) = advisories(tmp_path / "vulns").values()
    assert adv.affected[0].ranges[0].events == (("introduced", "0"), ("fixed", "1.10"))
    assert adv.affected[0].versions == ("1.0", "1.2")
    assert adv.modified == datetime(2021, 7, 5, 0, 1, 17, 388273, tzinfo=UTC)


def test_api_answer_and_list_files(tmp_path: Path) -> None:
    (tmp_path / "answer.json").write_text(json.dumps({"vulns": [GOOD, {**GOOD, "id": "TEST-2"}]}))
    assert [r.id for r in parse_path(tmp_path / "answer.json", source="s")] == ["TEST-1", "TEST-2"]  # type: ignore[union-attr]


# --- fetch: local URL forms ----------------------------------------------------------------------------


def test_fetch_local_zip_then_unchanged(tmp_path: Path, feeds_dir: Path) -> None:
    feed = OsvFeed()
    zip_path = feeds_dir / "osv" / "Go.before-2023-01-01.zip"
    spool = feed.fetch(zip_path.as_uri(), None, tmp_path / "work")
    assert isinstance(spool, Spool) and spool.complete and spool.path.parent == tmp_path / "work"
    assert Counter(type(r).__name__ for r in feed.parse(spool, source="go")) == {"Advisory": 293}
    assert spool.path != zip_path  # a copy: the sync deletes spools
    again = feed.fetch(str(zip_path), spool.fingerprint, tmp_path / "work")
    assert again == Unchanged(spool.fingerprint)


def test_fetch_directory_packs_records_and_notices_changes(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    (records / "TEST-1.json").write_text(json.dumps(GOOD))
    feed = OsvFeed()
    first = feed.fetch(str(records), None, tmp_path / "work")
    assert isinstance(first, Spool)
    assert [r.id for r in feed.parse(first, source="s")] == ["TEST-1"]  # type: ignore[union-attr]
    assert isinstance(feed.fetch(str(records), first.fingerprint, tmp_path / "work"), Unchanged)
    (records / "TEST-2.json").write_text(json.dumps({**GOOD, "id": "TEST-2"}))
    second = feed.fetch(str(records), first.fingerprint, tmp_path / "work")
    assert isinstance(second, Spool)
    assert sorted(r.id for r in feed.parse(second, source="s")) == ["TEST-1", "TEST-2"]  # type: ignore[union-attr]


# --- fetch: osv.dev's incremental path over HTTP --------------------------------------------------------


def test_modified_id_csv_first_full_then_deltas(server: TestServer, tmp_path: Path, feeds_dir: Path) -> None:
    rows = ["2022-12-29T20:19:21Z,GO-2022-1144", "2022-12-20T00:00:00Z,GO-2022-1143"]
    server.routes["/Go/modified_id.csv"] = Route("\n".join(rows).encode() + b"\n")
    server.routes["/Go/all.zip"] = Route((feeds_dir / "osv" / "Go.before-2023-01-01.zip").read_bytes())
    feed = OsvFeed()
    url = server.url("/Go/modified_id.csv")

    full = feed.fetch(url, None, tmp_path)
    assert isinstance(full, Spool) and full.complete and full.extra["mode"] == "full"
    assert full.fingerprint == "2022-12-29T20:19:21Z"
    assert sum(1 for _ in feed.parse(full, source="go")) == 293

    assert feed.fetch(url, full.fingerprint, tmp_path) == Unchanged("2022-12-29T20:19:21Z")
    assert not server.requests_to("/Go/GO-2022-1144.json")

    new = {**GOOD, "id": "GO-2023-0001", "modified": "2023-01-05T10:00:00Z"}
    changed = {**GOOD, "id": "GO-2022-1144", "modified": "2023-01-04T10:00:00Z"}
    rows = ["2023-01-05T10:00:00Z,GO-2023-0001", "2023-01-04T10:00:00Z,GO-2022-1144", *rows]
    server.routes["/Go/modified_id.csv"] = Route("\n".join(rows).encode() + b"\n")
    server.routes["/Go/GO-2023-0001.json"] = Route(json.dumps(new).encode())
    server.routes["/Go/GO-2022-1144.json"] = Route(json.dumps(changed).encode())
    delta = feed.fetch(url, full.fingerprint, tmp_path)
    assert isinstance(delta, Spool) and not delta.complete and delta.extra["mode"] == "delta"
    assert delta.fingerprint == "2023-01-05T10:00:00Z"
    assert sorted(r.id for r in feed.parse(delta, source="go")) == ["GO-2022-1144", "GO-2023-0001"]  # type: ignore[union-attr]
    assert not server.requests_to("/Go/GO-2022-1143.json")  # older than the fingerprint: not fetched

    # Too far behind: the whole zip again, not hundreds of requests.
    behind = OsvFeed({"max_delta": 1}).fetch(url, full.fingerprint, tmp_path)
    assert isinstance(behind, Spool) and behind.complete and behind.extra["mode"] == "full"


def test_modified_id_csv_that_is_not_one(server: TestServer, tmp_path: Path) -> None:
    server.routes["/Go/modified_id.csv"] = Route(b"<html>oops</html>\n")
    with pytest.raises(FeedError, match="expected '<modified>,<id>'"):
        OsvFeed().fetch(server.url("/Go/modified_id.csv"), None, tmp_path)
