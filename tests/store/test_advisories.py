"""The knowledge base's tables and queries: the codec, the name index, and the read API on Store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from keelwatch.model import Advisory, Affected, AffectedRange, Severity
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store.tables import ExploitabilityRow


def advisory(advisory_id: str = "GHSA-1", *, source: str = "osv-pypi", ecosystem: str = "PyPI",
             name: str = "Django", withdrawn: datetime | None = None, fixed: str = "4.2.1") -> Advisory:
    """An advisory with every field set, so a round trip proves each one."""
    return Advisory(
        id=advisory_id, source=source,
        modified=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        published=datetime(2024, 4, 30, 23, 0, tzinfo=timezone(timedelta(hours=2))),  # stored as UTC
        withdrawn=withdrawn, aliases=("CVE-2024-1", "PYSEC-2024-9"), related=("GHSA-x",), upstream=("CVE-2024-0",),
        summary="SQL injection", details="Multi-line\ndetails — with ünïcode",
        severity=(Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "ghsa"),),
        affected=(
            Affected(ecosystem=ecosystem, name=name,
                     ranges=(AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", fixed))),
                             AffectedRange("GIT", (("introduced", "abc"), ("fixed", "def")), repo="https://x/y")),
                     versions=("4.2", "4.2.0"), purl=f"pkg:pypi/{name.lower()}",
                     severity=(Severity("Ubuntu", "high", None, "ubuntu"),),
                     ecosystem_specific='{"imports": ["a"]}', database_specific='{"x": 1}'),
            Affected(ecosystem=ecosystem, name="other", versions=("1.0",)),
        ),
        references=("https://example.com/a", "https://example.com/b"), database_specific='{"cwe_ids": ["CWE-89"]}',
    )


def put(store: Store, *items: Advisory) -> None:
    with store.session() as session:
        for item in items:
            doc = kb.advisory_to_json(item)
            row, affected = kb.advisory_rows(doc, kb.content_hash(doc))
            kb.insert_advisories(session, [row], affected)


# --- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ecosystem", "name", "expected"), [
    ("PyPI", "Py_YAML", "py-yaml"),
    ("PyPI", "zope.interface", "zope-interface"),
    ("PyPI", "  Django ", "django"),
    ("npm", "JSONStream", "JSONStream"),  # case-sensitive registry: two packages may differ by case
    ("npm", "@babel/core", "@babel/core"),
    ("Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"),
    ("Maven", "org.yaml/snakeyaml", "org.yaml:snakeyaml"),
    ("Maven", "org.yaml:snakeyaml", "org.yaml:snakeyaml"),
    ("crates.io", "Serde_JSON", "serde-json"),
    ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
    ("Packagist", "Symfony/HttpKernel", "symfony/httpkernel"),
    ("Debian:12", "openssl", "openssl"),
    ("RubyGems", "Rack", "Rack"),
])
def test_normalise_name_follows_each_registrys_rule(ecosystem: str, name: str, expected: str) -> None:
    assert kb.normalise_name(ecosystem, name) == expected


def test_ecosystem_base_drops_the_release() -> None:
    assert kb.ecosystem_base("Debian:11") == "Debian"
    assert kb.ecosystem_base("Ubuntu:Pro:18.04:LTS") == "Ubuntu"
    assert kb.ecosystem_base("PyPI") == "PyPI"


def test_advisory_key_is_per_feed_and_stable() -> None:
    assert kb.advisory_key("a", "X-1") == kb.advisory_key("a", "X-1")
    assert kb.advisory_key("a", "X-1") != kb.advisory_key("b", "X-1")
    assert -(2**63) <= kb.advisory_key("a", "X-1") < 2**63


# --- the codec --------------------------------------------------------------------------------------------


def test_json_codec_round_trips_every_field() -> None:
    original = advisory(withdrawn=datetime(2024, 6, 1, tzinfo=UTC))
    assert kb.advisory_from_json(kb.advisory_to_json(original)) == original


def test_content_hash_ignores_the_source_and_sees_every_field() -> None:
    doc = kb.advisory_to_json(advisory())
    assert kb.content_hash(doc) == kb.content_hash(kb.advisory_to_json(advisory(source="elsewhere")))
    variants = [advisory(fixed="4.2.2"), advisory(withdrawn=datetime(2024, 1, 1, tzinfo=UTC)),
                replace(advisory(), aliases=("CVE-2024-1",)), replace(advisory(), details="other"),
                replace(advisory(), severity=())]
    assert len({kb.content_hash(kb.advisory_to_json(v)) for v in variants} | {kb.content_hash(doc)}) == 6


def test_changed_fields_name_what_the_matcher_cares_about() -> None:
    old = kb.advisory_to_json(advisory())
    assert kb.changed_fields(old, kb.advisory_to_json(advisory(fixed="4.2.9"))) == ["ranges"]
    moved = replace(advisory(), modified=datetime(2025, 1, 1, tzinfo=UTC), aliases=("CVE-2024-1",))
    assert kb.changed_fields(old, kb.advisory_to_json(moved)) == ["aliases", "modified"]
    renamed = advisory(name="flask")
    assert "packages" in kb.changed_fields(old, kb.advisory_to_json(renamed))
    first = advisory().affected[0]
    resevered = replace(advisory(), affected=(replace(first, severity=()), advisory().affected[1]))
    assert kb.changed_fields(old, kb.advisory_to_json(resevered)) == ["severity"]
    repurled = replace(advisory(), affected=(replace(first, purl="pkg:pypi/x"), advisory().affected[1]))
    assert kb.changed_fields(old, kb.advisory_to_json(repurled)) == ["affected"]


def test_ranges_summary_and_packages() -> None:
    doc = kb.advisory_to_json(advisory())
    summary = kb.ranges_summary(doc)
    assert summary["affected"][0] == {"ecosystem": "PyPI", "name": "Django", "versions": 2, "ranges": [
        {"type": "ECOSYSTEM", "events": [["introduced", "0"], ["fixed", "4.2.1"]]},
        {"type": "GIT", "events": [["introduced", "abc"], ["fixed", "def"]]}]}
    assert kb.affected_packages(doc) == {("PyPI", "django"), ("PyPI", "other")}


# --- the store's read API -------------------------------------------------------------------------------


def test_stored_advisory_reads_back_equal(store: Store) -> None:
    original = advisory(withdrawn=datetime(2024, 6, 1, tzinfo=UTC))
    put(store, original)
    assert store.get_advisory("GHSA-1") == original
    assert store.get_advisory("GHSA-1", source="osv-pypi") == original
    assert store.get_advisory("GHSA-1", source="other") is None
    assert store.get_advisory("nope") is None


def test_two_feeds_may_publish_one_id(store: Store) -> None:
    put(store, advisory(source="b-feed", fixed="2"), advisory(source="a-feed", fixed="1"))
    assert store.get_advisory("GHSA-1").source == "a-feed"  # type: ignore[union-attr]
    assert store.get_advisory("GHSA-1", source="b-feed").affected[0].ranges[0].events[1] == ("fixed", "2")  # type: ignore[union-attr]
    assert [a.source for a in store.advisories_for("PyPI", ["django"])] == ["a-feed", "b-feed"]


def test_advisories_for_looks_up_normalised_names(store: Store) -> None:
    put(store, advisory("A", name="Py_YAML"), advisory("B", name="requests"), advisory("C", ecosystem="npm",
                                                                                       name="Py_YAML"))
    assert [a.id for a in store.advisories_for("PyPI", ["pyyaml"])] == []  # another project than py-yaml
    assert [a.id for a in store.advisories_for("PyPI", ["py.yaml"])] == ["A"]
    assert [a.id for a in store.advisories_for("PyPI", ["PY-YAML", "Requests", "nothing"])] == ["A", "B"]
    assert [a.id for a in store.advisories_for("npm", ["Py_YAML"])] == ["C"]
    assert store.advisories_for("npm", ["py_yaml"]) == []  # npm is case-sensitive
    assert store.advisories_for("PyPI", []) == []
    # Whole advisories come back, with every package they name, for the matcher to filter.
    assert [a.name for a in store.advisories_for("PyPI", ["requests"])[0].affected] == ["requests", "other"]


def test_advisories_for_a_release_or_a_whole_distro(store: Store) -> None:
    put(store, advisory("DSA-1", ecosystem="Debian:11", name="openssl"),
        advisory("DSA-2", ecosystem="Debian:12", name="openssl"),
        advisory("ALPINE-1", ecosystem="Alpine:v3.19", name="openssl"))
    assert [a.id for a in store.advisories_for("Debian:11", ["openssl"])] == ["DSA-1"]
    assert [a.id for a in store.advisories_for("Debian:13", ["openssl"])] == []
    assert [a.id for a in store.advisories_for("Debian", ["openssl"])] == ["DSA-1", "DSA-2"]
    assert store.ecosystems() == {"Debian:11", "Debian:12", "Alpine:v3.19"}


def test_withdrawn_advisories_never_come_back_unless_asked(store: Store) -> None:
    put(store, advisory("A"), advisory("B", withdrawn=datetime(2024, 1, 1, tzinfo=UTC)))
    assert [a.id for a in store.advisories_for("PyPI", ["django"])] == ["A"]
    assert [a.id for a in store.advisories_for("PyPI", ["django"], include_withdrawn=True)] == ["A", "B"]


def test_advisories_for_many_names_at_once(store: Store) -> None:
    put(store, *(advisory(f"A-{i}", name=f"pkg{i}") for i in range(0, 2500, 100)))
    names = [f"pkg{i}" for i in range(2500)]  # more than one IN chunk
    assert len(store.advisories_for("PyPI", names)) == 25


def test_exploitability_by_cve(store: Store) -> None:
    with store.session() as session:
        session.execute(insert(ExploitabilityRow), [
            {"cve": "CVE-1", "kev_date_added": "2024-01-02", "kev_due_date": "2024-01-23", "kev_ransomware": "Known",
             "kev_source": "kev", "epss": 0.97, "epss_percentile": 0.999, "epss_date": "2026-09-29",
             "epss_source": "epss"},
            {"cve": "CVE-2", "kev_date_added": "", "kev_due_date": "", "kev_ransomware": "", "kev_source": None,
             "epss": 0.01, "epss_percentile": 0.2, "epss_date": "2026-09-29", "epss_source": "epss"},
        ])
    found = store.exploitability(["CVE-1", "CVE-2", "CVE-3"])
    assert set(found) == {"CVE-1", "CVE-2"}
    assert found["CVE-1"].kev_date_added == "2024-01-02" and found["CVE-1"].kev_ransomware == "Known"
    assert found["CVE-1"].epss == pytest.approx(0.97)
    assert found["CVE-2"].kev_date_added == "" and found["CVE-2"].epss_percentile == pytest.approx(0.2)


def test_an_empty_knowledge_base(store: Store) -> None:
    assert store.latest_sync_id() is None
    assert store.changes_since(0) == []
    assert store.changes_since(datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert store.feed_status() == []
    assert store.exploitability(["CVE-1"]) == {}
