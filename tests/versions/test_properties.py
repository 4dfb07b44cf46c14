"""Property tests: every scheme is a consistent order, and the sort keys agree with ports of the
tools' own comparison code (tests/versions/oracles.py) — and, where the tool is installed, with the
tool itself (dpkg, rpm)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keelwatch.errors import VersionError
from keelwatch.versions import ECOSYSTEMS, compare, sort_key
from keelwatch.versions.composer import normalize
from keelwatch.versions.maven import compare_items

from . import oracles, strategies

# One ecosystem per scheme.
ECOSYSTEM_OF = {scheme: ecosystem for ecosystem, scheme in reversed(ECOSYSTEMS)}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(ecosystem: str, version: str) -> bool:
    try:
        sort_key(ecosystem, version)
    except VersionError:
        return False
    return True


@pytest.mark.parametrize("scheme", sorted(strategies.BY_SCHEME))
def test_order_is_total_antisymmetric_and_transitive(scheme: str) -> None:
    ecosystem = ECOSYSTEM_OF[scheme]
    strategy = strategies.BY_SCHEME[scheme]

    @FAST
    @given(strategy, strategy, strategy)
    def check(a: str, b: str, c: str) -> None:
        assume(_valid(ecosystem, a) and _valid(ecosystem, b) and _valid(ecosystem, c))
        ab, bc, ac = compare(ecosystem, a, b), compare(ecosystem, b, c), compare(ecosystem, a, c)
        assert compare(ecosystem, a, a) == 0
        assert compare(ecosystem, b, a) == -ab  # antisymmetric
        if ab <= 0 and bc <= 0:
            assert ac <= 0, f"{a} <= {b} <= {c} but {a} > {c}"  # transitive
        if ab == 0 and bc == 0:
            assert ac == 0
        # Sorting by key agrees with compare (what matching and range walks rely on).
        ordered = sorted([a, b, c], key=lambda v: sort_key(ecosystem, v))
        assert all(compare(ecosystem, x, y) <= 0 for x, y in zip(ordered, ordered[1:], strict=False))

    check()


@pytest.mark.parametrize("strategy", ["dpkg", "composer", "gem", "npm", "nuget", "apk", "rpm", "pep440"])
def test_generators_mostly_produce_valid_versions(strategy: str) -> None:
    # Guards the property tests above against testing nothing.
    ecosystem = ECOSYSTEM_OF[strategy]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(strategies.BY_SCHEME[strategy], min_size=10, max_size=10))
    def check(values: list[str]) -> None:
        assert sum(_valid(ecosystem, v) for v in values) >= 5, values

    check()


def _go_full(version: str) -> str:
    """golang.org/x/mod/semver's shorthands spelled out: v1 → 1.0.0, v1.2 → 1.2.0."""
    core = version.removeprefix("v")
    if "-" not in core and "+" not in core:
        core = ".".join((core.split(".") + ["0", "0"])[:3])
    return core


ORACLES: dict[str, tuple[str, Callable[[str, str], int]]] = {
    "dpkg": ("Debian", oracles.dpkg),
    "rpm": ("Red Hat", oracles.rpm),
    "apk": ("Alpine", oracles.apk),
    "gem": ("RubyGems", oracles.gem),
    "semver": ("crates.io", oracles.semver),
    "go": ("Go", lambda a, b: oracles.semver(_go_full(a), _go_full(b))),
}


@pytest.mark.parametrize("scheme", sorted(ORACLES))
def test_keys_agree_with_a_port_of_the_tool(scheme: str) -> None:
    ecosystem, oracle = ORACLES[scheme]
    strategy = strategies.BY_SCHEME[scheme]

    @settings(max_examples=400, deadline=None)
    @given(strategy, strategy)
    def check(a: str, b: str) -> None:
        assume(_valid(ecosystem, a) and _valid(ecosystem, b))
        assert compare(ecosystem, a, b) == oracle(a, b), (a, b)

    check()


@settings(max_examples=400, deadline=None)
@given(strategies.composer, strategies.composer)
def test_composer_agrees_with_php_version_compare(a: str, b: str) -> None:
    assume(_valid("Packagist", a) and _valid("Packagist", b))
    assert compare("Packagist", a, b) == oracles.php_version_compare(normalize(a), normalize(b)), (a, b)


@settings(max_examples=300, deadline=None)
@given(strategies.maven_any, strategies.maven_any)
def test_maven_equal_means_same_items(a: str, b: str) -> None:
    # MavenKey hashes its item tree: that is only sound if compare() == 0 implies equal trees.
    ka, kb = sort_key("Maven", a), sort_key("Maven", b)
    assert compare("Maven", a, b) == -compare("Maven", b, a)
    if compare("Maven", a, b) == 0:
        assert ka.items == kb.items and hash(ka) == hash(kb)


# --- the tools themselves, when installed -----------------------------------------------------------

def _dpkg_compare(pairs: list[tuple[str, str]]) -> list[int]:
    script = "\n".join(
        f"if dpkg --compare-versions '{a}' lt '{b}'; then echo -1; "
        f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi"
        for a, b in pairs)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    return [int(x) for x in out]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed (only on Debian-like systems)")
@settings(max_examples=4, deadline=None)
@given(st.lists(st.tuples(strategies.dpkg, strategies.dpkg), min_size=40, max_size=40))
def test_dpkg_agrees_with_dpkg(pairs: list[tuple[str, str]]) -> None:
    pairs = [(a, b) for a, b in pairs if _valid("Debian", a) and _valid("Debian", b) and "'" not in a + b]
    assert [compare("Debian", a, b) for a, b in pairs] == _dpkg_compare(pairs)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed (make system-deps installs it)")
@settings(max_examples=4, deadline=None)
@given(pairs=st.lists(st.tuples(strategies.rpm, strategies.rpm), min_size=300, max_size=300))
def test_rpm_agrees_with_rpm(pairs: list[tuple[str, str]], tmp_path_factory: pytest.TempPathFactory) -> None:
    pairs = [(a, b) for a, b in pairs if _valid("Red Hat", a) and _valid("Red Hat", b)]
    script = tmp_path_factory.mktemp("rpm") / "vercmp.lua"
    script.write_text("\n".join(f"print(rpm.vercmp({_lua_string(a)}, {_lua_string(b)}) .. ' ')" for a, b in pairs))
    out = subprocess.run(["rpm", "--eval", f'%{{lua: dofile("{script}")}}'], capture_output=True, text=True,
                         check=True).stdout.split()
    assert [compare("Red Hat", a, b) for a, b in pairs] == [int(x) for x in out]


@settings(max_examples=300, deadline=None)
@given(st.one_of(strategies.maven_realistic, strategies.maven_any), st.lists(st.sampled_from(["0", "1", "10"]),
                                                                            min_size=1, max_size=5).map(".".join))
def test_maven_numbers_fast_path_agrees_with_the_walk(a: str, b: str) -> None:
    for x, y in ((a, b), (b, a), (b, b)):
        kx, ky = sort_key("Maven", x), sort_key("Maven", y)
        walk = compare_items(kx.items, ky.items)
        assert (kx < ky, kx > ky, kx == ky) == (walk < 0, walk > 0, walk == 0), (x, y)
