"""CVSS base scores: our v2 and v3.x formulas against Red Hat's ``cvss`` library on every base vector."""

from __future__ import annotations

import itertools

import pytest
from cvss import CVSS2, CVSS3

from keelwatch.feeds.cvss import base_score, v2_base_score, v3_base_score, v4_base_score


@pytest.mark.parametrize("version", ["3.0", "3.1"])
def test_every_v3_base_vector_matches_the_reference(version: str) -> None:
    # 4 * 2 * 3 * 2 * 2 * 3 * 3 * 3 = 2,592 vectors: the whole v3 base space.
    for av, ac, pr, ui, s, c, i, a in itertools.product("NALP", "LH", "NLH", "NR", "UC", "HLN", "HLN", "HLN"):
        vector = f"CVSS:{version}/AV:{av}/AC:{ac}/PR:{pr}/UI:{ui}/S:{s}/C:{c}/I:{i}/A:{a}"
        assert v3_base_score(vector) == float(CVSS3(vector).base_score), vector


def test_every_v2_base_vector_matches_the_reference() -> None:
    for av, ac, au, c, i, a in itertools.product("LAN", "HML", "MSN", "NPC", "NPC", "NPC"):
        vector = f"AV:{av}/AC:{ac}/Au:{au}/C:{c}/I:{i}/A:{a}"
        assert v2_base_score(vector) == float(CVSS2(vector).base_score), vector


def test_known_scores_and_bad_vectors() -> None:
    assert base_score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0  # Log4Shell
    assert base_score("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:H") == 7.8  # temporal ignored
    assert base_score("CVSS_V2", "(AV:N/AC:M/Au:N/C:C/I:C/A:C)") == 9.3
    # FIRST's v4 examples: network RCE 9.3, local privilege escalation 8.5
    assert base_score("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3
    assert v4_base_score("CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 8.5
    for kind, vector in [("CVSS_V3", "CVSS:3.1/AV:N"), ("CVSS_V3", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P"),
                         ("CVSS_V3", "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
                         ("CVSS_V2", "AV:Q/AC:L/Au:N/C:P/I:P/A:P"), ("CVSS_V4", "CVSS:4.0/AV:N"),
                         ("Ubuntu", "high")]:
        assert base_score(kind, vector) is None, vector
