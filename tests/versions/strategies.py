"""Hypothesis strategies: version strings shaped like each ecosystem's, biased to the tricky parts.

They generate mostly valid versions from small alphabets so that collisions, shared prefixes and
the special characters (``~``, ``^``, ``_rc``, ``-r``, qualifiers) meet each other often.
"""

from __future__ import annotations

from hypothesis import strategies as st

_SMALL_NUMBERS = st.sampled_from(["0", "1", "2", "9", "10", "00", "01", "010", "123456789012345678901"])
_NUMBERS = st.sampled_from(["0", "1", "2", "10"])


def _joined(parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    return parts.map("".join)


# dpkg: [epoch:]upstream[-revision], upstream starts with a digit.
dpkg = st.builds(
    lambda epoch, first, rest, revision: f"{epoch}{first}{rest}{revision}",
    st.sampled_from(["", "", "0:", "1:", "2:"]),
    _SMALL_NUMBERS,
    st.text(alphabet="019az.+~", max_size=6),
    st.one_of(st.just(""), st.text(alphabet="019az.+~", min_size=1, max_size=5).map(lambda r: "-" + r)),
)

# rpm: [epoch:]version[-release] over the characters rpmvercmp treats specially.
_RPM_FIELD = st.text(alphabet="019aZz.~^_+", min_size=1, max_size=7)
rpm = st.builds(
    lambda epoch, version, release: f"{epoch}{version}{release}",
    st.sampled_from(["", "", "0:", "1:"]),
    _RPM_FIELD,
    st.one_of(st.just(""), _RPM_FIELD.map(lambda r: "-" + r)),
)

# apk: digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}
apk = st.builds(
    lambda numbers, letter, suffixes, commit, revision: ".".join(numbers) + letter + "".join(suffixes) + commit
    + revision,
    st.lists(_SMALL_NUMBERS, min_size=1, max_size=4),
    st.sampled_from(["", "", "a", "b", "z"]),
    st.lists(
        st.builds(lambda s, n: f"_{s}{n}", st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg",
                                                            "p"]),
                  st.sampled_from(["", "0", "1", "2", "10"])),
        max_size=2,
    ),
    st.sampled_from(["", "", "~abc", "~abd", "~0f"]),
    st.sampled_from(["", "", "-r0", "-r1", "-r10"]),
)

# SemVer 2.0.0.
_PRE_IDS = st.sampled_from(["0", "1", "2", "10", "alpha", "beta", "rc", "a1", "1a", "-", "x-y", "0a"])
semver = st.builds(
    lambda major, minor, patch, pre, build: f"{major}.{minor}.{patch}{pre}{build}",
    _NUMBERS, _NUMBERS, _NUMBERS,
    st.one_of(st.just(""), st.lists(_PRE_IDS, min_size=1, max_size=3).map(lambda ids: "-" + ".".join(ids))),
    st.sampled_from(["", "", "+build", "+1.2", "+incompatible"]),
)

# Go pseudo-versions and releases (with the optional 'v').
go = st.one_of(
    semver.map(lambda v: "v" + v),
    st.builds(
        lambda base, stamp, commit: f"v{base}{stamp}-{commit}",
        st.sampled_from(["0.0.0-", "1.2.4-0.", "1.2.4-pre.0.", "2.0.0-"]),
        st.sampled_from(["20191109021931", "20191109021932", "20200101000000"]),
        st.sampled_from(["daa7c04131f5", "000000000000", "ffffffffffff"]),
    ),
    st.sampled_from(["v1", "v1.2", "v0", "v2.0"]),
)

# RubyGems: digits then .segments, optional -prerelease.
gem = st.builds(
    lambda first, rest, pre: first + "".join(rest) + pre,
    _NUMBERS,
    st.lists(st.sampled_from([".0", ".1", ".2", ".10", ".a", ".b", ".pre", ".rc1", ".0a", ".a0", ".Z"]), max_size=4),
    st.sampled_from(["", "", "-1", "-a", "-pre.1", "-0"]),
)

# Packagist: what Composer can normalize.
composer = st.builds(
    lambda v, numbers, modifier, number, dev: v + ".".join(numbers) + modifier + number + dev,
    st.sampled_from(["", "v"]),
    st.lists(_NUMBERS, min_size=1, max_size=4),
    st.sampled_from(["", "", "-alpha", "-a", "-beta", "-b", "-RC", "-rc", "-patch", "-pl", "-p", "-stable", "_beta",
                     ".rc"]),
    st.sampled_from(["", "1", "2", ".1", "-2", "10"]),
    st.sampled_from(["", "", "-dev", ".dev", "dev"]),
)

# NuGet: 1-4 numeric parts, labels, metadata.
nuget = st.builds(
    lambda numbers, labels, metadata: ".".join(numbers) + labels + metadata,
    st.lists(_NUMBERS, min_size=1, max_size=4),
    st.one_of(st.just(""), st.lists(st.sampled_from(["1", "2", "10", "alpha", "ALPHA", "beta", "rc", "a-b",
                                                     "2147483648"]),
                                    min_size=1, max_size=3).map(lambda ids: "-" + ".".join(ids))),
    st.sampled_from(["", "", "+meta", "+1.2"]),
)

# Maven: realistic shapes (numbers, dots, hyphens, known and unknown qualifiers).
maven_realistic = st.builds(
    lambda numbers, qualifier: ".".join(numbers) + qualifier,
    st.lists(_NUMBERS, min_size=1, max_size=4),
    st.sampled_from(["", "", "-SNAPSHOT", "-alpha-1", "-alpha1", "-beta-2", "-M1", "-RC1", "-rc-2", "-cr1", "-ga",
                     "-final", "-sp1", "-1", "-2", ".Final", "-redhat-00001", "-jre", "-android", ".RELEASE",
                     "-20200101.123456-1"]),
)
# Maven: anything built from its separators and qualifier letters (for crash and equality tests).
maven_any = st.text(alphabet="0129abmrcspxyz.-", min_size=1, max_size=10).filter(
    lambda s: any(c.isalnum() for c in s))

cran = st.lists(_SMALL_NUMBERS, min_size=2, max_size=4).flatmap(
    lambda parts: st.lists(st.sampled_from([".", "-"]), min_size=len(parts) - 1, max_size=len(parts) - 1).map(
        lambda seps: parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))))

pub = st.builds(
    lambda core, pre, build: core + pre + build,
    st.sampled_from(["0.0.0", "1.0.0", "1.2.3", "01.0.0", "1.0.1"]),
    st.one_of(st.just(""), st.lists(_PRE_IDS, min_size=1, max_size=2).map(lambda ids: "-" + ".".join(ids))),
    st.one_of(st.just(""), st.lists(_PRE_IDS, min_size=1, max_size=2).map(lambda ids: "+" + ".".join(ids))),
)

pep440 = st.builds(
    lambda epoch, release, pre, post, dev, local: epoch + release + pre + post + dev + local,
    st.sampled_from(["", "", "1!"]),
    st.lists(_NUMBERS, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["", "a1", "b2", "rc1", "c1", "alpha", "-preview3"]),
    st.sampled_from(["", ".post1", "-1", "post"]),
    st.sampled_from(["", ".dev0", "dev1"]),
    st.sampled_from(["", "+local", "+1.abc", "+ubuntu-1"]),
)

BY_SCHEME = {
    "apk": apk, "composer": composer, "cran": cran, "dpkg": dpkg, "gem": gem, "go": go, "maven": maven_realistic,
    "npm": semver, "nuget": nuget, "pep440": pep440, "pub": pub, "rpm": rpm, "semver": semver,
}
