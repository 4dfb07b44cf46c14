"""OSV range evaluation (the schema's "Evaluation" pseudocode) over real ecosystems."""

from __future__ import annotations

import random

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import in_range

SCHEMA_MULTIPLE = [{"introduced": "1.0.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"}]


@pytest.mark.parametrize(("version", "affected"), [
    ("0.9.9", False), ("1.0.0", True), ("1.0.1", True), ("1.0.2", False), ("2.9.9", False), ("3.0.0", True),
    ("3.2.5-rc.1", True), ("3.2.4", True), ("3.2.5", False), ("9.0.0", False),
])
def test_schema_multiple_range_example(version: str, affected: bool) -> None:
    assert in_range("crates.io", version, SCHEMA_MULTIPLE) is affected


def test_event_order_in_the_record_does_not_matter() -> None:
    for seed in range(5):
        events = SCHEMA_MULTIPLE[:]
        random.Random(seed).shuffle(events)
        assert in_range("npm", "3.1.0", events) and not in_range("npm", "2.0.0", events)


@pytest.mark.parametrize(("version", "affected"), [("0.0.1", True), ("2.1.214", True), ("2.1.215", False)])
def test_last_affected_is_inclusive(version: str, affected: bool) -> None:
    # The schema's last_affected example.
    assert in_range("Maven", version, [{"introduced": "0"}, {"last_affected": "2.1.214"}]) is affected


def test_introduced_zero_is_before_everything() -> None:
    events = [{"introduced": "0"}, {"fixed": "1.0"}]
    # dpkg's lowest versions, and "0" itself: all from the beginning.
    for version in ("0~", "0", "0:0~~", "0.9-1"):
        assert in_range("Debian:12", version, events), version
    assert in_range("Debian:12", "1.0~rc1", events)
    assert not in_range("Debian:12", "1.0", events)


def test_real_distro_ranges() -> None:
    debian = [{"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}]
    assert in_range("Debian:12", "2.36-9+deb12u3", debian)
    assert not in_range("Debian:12", "2.36-9+deb12u10", debian)
    alpine = [{"introduced": "0"}, {"fixed": "3.1.4-r1"}]
    assert in_range("Alpine:v3.19", "3.1.4-r0", alpine)
    assert in_range("Alpine:v3.19", "3.1.4_rc1-r9", alpine)
    assert not in_range("Alpine:v3.19", "3.1.4-r1", alpine)
    rhel = [{"introduced": "0"}, {"fixed": "1:1.1.1k-12.el8_9"}]
    assert in_range("Red Hat:enterprise_linux:8::baseos", "1:1.1.1k-9.el8_7", rhel)
    assert not in_range("Red Hat:enterprise_linux:8::baseos", "1:3.0.1-1.el8", rhel)


def test_go_binaries_report_v_prefixed_versions() -> None:
    events = [{"introduced": "0"}, {"fixed": "0.17.0"}]  # as OSV's Go records write them
    assert in_range("Go", "v0.0.0-20220722155217-630584e8d5aa", events)
    assert in_range("Go", "v0.16.9", events)
    assert not in_range("Go", "v0.17.0", events)


def test_single_version_and_empty_ranges() -> None:
    assert in_range("PyPI", "1.5", [{"introduced": "1.5"}, {"last_affected": "1.5"}])
    assert not in_range("PyPI", "1.5.1", [{"introduced": "1.5"}, {"last_affected": "1.5"}])
    assert not in_range("PyPI", "1.5", [{"introduced": "1.5"}, {"fixed": "1.5"}])


def test_reintroduced_and_overlapping() -> None:
    events = [{"introduced": "0"}, {"fixed": "1.0"}, {"introduced": "2.0"}]
    assert in_range("PyPI", "0.5", events) and not in_range("PyPI", "1.5", events) and in_range("PyPI", "9", events)
    overlapping = [{"introduced": "1.0"}, {"introduced": "1.5"}, {"fixed": "2.0"}]
    assert in_range("PyPI", "1.7", overlapping) and not in_range("PyPI", "2.0", overlapping)


def test_limits() -> None:
    events = [{"introduced": "0"}, {"limit": "2.0"}]
    assert in_range("RubyGems", "1.9", events) and not in_range("RubyGems", "2.0", events)
    assert in_range("RubyGems", "9.0", [{"introduced": "0"}, {"limit": "*"}])
    two = [{"introduced": "0"}, {"limit": "1.0"}, {"limit": "3.0"}]
    assert in_range("RubyGems", "2.5", two) and not in_range("RubyGems", "3.0", two)


@pytest.mark.parametrize(("version", "events", "message"), [
    ("1.0", [{"fixed": "2.0"}], "no 'introduced'"),
    ("1.0", [], "no 'introduced'"),
    ("1.0", [{"introduced": "0", "fixed": "2.0"}], "not an OSV event"),
    ("1.0", [{"introduced": "0"}, {"fixd": "2.0"}], "unknown OSV event"),
    ("1.0", [{"introduced": "0"}, {"fixed": 2.0}], "not a string"),
    ("1.0", [{"introduced": "0"}, {"fixed": "2019-09-12"}], "pep440"),  # a real PYSEC bound
    ("not a version", [{"introduced": "0"}, {"fixed": "2.0"}], "pep440"),
])
def test_unevaluable_ranges_raise(version: str, events: list[dict[str, object]], message: str) -> None:
    # Never a silent "not affected": the caller records an unknown.
    with pytest.raises(VersionError, match=message):
        in_range("PyPI", version, events)
