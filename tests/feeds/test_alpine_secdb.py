"""Alpine secdb feed: the real YAML branches, the JSON form, id extraction and URL forms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds.alpine_secdb import AlpineSecdbFeed, _ids, parse_path
from keelwatch.feeds.base import Problem, Spool, Unchanged
from keelwatch.model import Advisory, AffectedRange

from .httpserver import Route, TestServer

SAMPLES = Path(__file__).parent / "samples" / "alpine-secdb"


def advisories(records: list[object]) -> dict[str, Advisory]:
    assert not [r for r in records if isinstance(r, Problem)]
    return {r.id: r for r in records if isinstance(r, Advisory)}


@pytest.fixture(scope="module")
def secdb(feeds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Advisory]:
    feed = AlpineSecdbFeed()
    spool = feed.fetch(str(feeds_dir / "alpine-secdb"), None, tmp_path_factory.mktemp("work"))
    assert isinstance(spool, Spool) and spool.extra["members"] == "18"
    return advisories(list(feed.parse(spool, source="alpine")))


def test_one_advisory_per_cve_across_branches_and_packages(secdb: dict[str, Advisory]) -> None:
    adv = secdb["ALPINE-CVE-2019-1547"]
    assert adv.upstream == ("CVE-2019-1547",) and adv.aliases == ()
    assert adv.references == ("https://security.alpinelinux.org/vuln/CVE-2019-1547",)
    by_branch = {(a.ecosystem, a.name): a for a in adv.affected}
    openssl = by_branch[("Alpine:v3.11", "openssl")]
    assert openssl.ranges == (AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.1.1d-r1"))),)
    assert json.loads(openssl.database_specific) == {"repo": "main"}
    assert openssl.purl == "pkg:apk/alpine/openssl"
    assert ("Alpine:v3.10", "openssl") in by_branch


def test_zero_means_never_affected(secdb: dict[str, Advisory]) -> None:
    adv = secdb["ALPINE-CVE-2016-0682"]  # v3.8 main: db "0": Oracle Berkeley DB issues, whitelisted
    assert ("Alpine:v3.8", "db") not in {(a.ecosystem, a.name) for a in adv.affected}
    assert {"ecosystem": "Alpine:v3.8", "name": "db"} in json.loads(adv.database_specific)["not_affected"]


def test_free_text_entries(secdb: dict[str, Advisory]) -> None:
    assert secdb["ALPINE-CVE-2017-2887"].aliases == ("TALOS-2017-0394",)
    assert "ALPINE-CVE-2017-17434" in secdb and "ALPINE-CVE-2017-8073" in secdb
    assert secdb["ALPINE-wnpa-sec-2017-18"].upstream == ()
    assert _ids("CVE-2016-6258 XSA-182") == ("CVE-2016-6258", ("XSA-182",))
    assert _ids("CVE-2017-17434-1") == ("CVE-2017-17434", ())
    assert _ids("  ") is None


def test_json_form_equals_the_yaml_it_came_from(feeds_dir: Path, tmp_path: Path) -> None:
    from_json = advisories(list(parse_path(SAMPLES / "v3.11" / "main.json", source="a")))
    from_yaml = advisories(list(parse_path(feeds_dir / "alpine-secdb" / "v3.11" / "main.yaml", source="a")))
    assert from_json
    for key, adv in from_json.items():  # the YAML has more packages; the sample's three agree exactly
        assert tuple(a for a in from_yaml[key].affected if a.name in ("curl", "musl", "openssl")) == adv.affected
    assert from_json["ALPINE-CVE-2019-14697"].affected[0].ranges[0].events == (("introduced", "0"),
                                                                                 ("fixed", "1.1.23-r2"))


def test_bad_documents_are_problems(tmp_path: Path) -> None:
    (tmp_path / "v3.19").mkdir()
    (tmp_path / "v3.19" / "main.yaml").write_text("distroversion: v3.19\npackages:\n  - pkg:\n      name: x\n"
                                                  "      secfixes:\n        1.0-r0:\n          - CVE-2024-0001\n")
    (tmp_path / "v3.19" / "community.json").write_text('{"packages": []}')
    feed = AlpineSecdbFeed()
    spool = feed.fetch(str(tmp_path), None, tmp_path / "work")
    assert isinstance(spool, Spool)
    records = list(feed.parse(spool, source="a"))
    assert [type(r).__name__ for r in records] == ["Problem", "Advisory"]
    assert isinstance(records[0], Problem) and "no 'distroversion'" in records[0].message
    assert isinstance(feed.fetch(str(tmp_path), spool.fingerprint, tmp_path / "work"), Unchanged)


def test_branches_over_http(server: TestServer, tmp_path: Path) -> None:
    sample = (SAMPLES / "v3.11" / "main.json").read_bytes()
    server.routes["/v3.11/main.json"] = Route(sample, etag='"a"')
    server.routes["/v3.11/community.json"] = Route(b'{"distroversion": "v3.11", "reponame": "community", '
                                                   b'"packages": []}', etag='"b"')
    feed = AlpineSecdbFeed({"branches": ["v3.11"]})
    spool = feed.fetch(server.base, None, tmp_path)
    assert isinstance(spool, Spool)
    assert "ALPINE-CVE-2019-1551" in advisories(list(feed.parse(spool, source="a")))
    assert isinstance(feed.fetch(server.base, spool.fingerprint, tmp_path), Unchanged)
    with pytest.raises(ConfigError, match="list the branches"):
        AlpineSecdbFeed().fetch(server.base, None, tmp_path)
    with pytest.raises(FeedError, match="HTTP 404"):
        AlpineSecdbFeed({"branches": ["v3.99"]}).fetch(server.base, None, tmp_path)


def test_one_file_url(server: TestServer, tmp_path: Path) -> None:
    server.routes["/v3.11/main.json"] = Route((SAMPLES / "v3.11" / "main.json").read_bytes())
    feed = AlpineSecdbFeed()
    spool = feed.fetch(server.url("/v3.11/main.json"), None, tmp_path)
    assert isinstance(spool, Spool)
    assert len(advisories(list(feed.parse(spool, source="a")))) > 5
    local = tmp_path / "main.yaml"
    shutil.copy(SAMPLES.parent.parent / "samples" / "alpine-secdb" / "v3.11" / "main.json", local)
    spool = feed.fetch(str(local), None, tmp_path / "w")  # JSON content under a .yaml name still reads
    assert isinstance(spool, Spool) and len(advisories(list(feed.parse(spool, source="a")))) > 5
