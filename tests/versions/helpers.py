"""Assertions shared by the scheme tests: a chain must be strictly increasing in every pair."""

from __future__ import annotations

from collections.abc import Sequence

from keelwatch.versions import compare


def assert_increasing(ecosystem: str, chain: Sequence[str]) -> None:
    """Every earlier version sorts strictly before every later one, in both argument orders."""
    for i, low in enumerate(chain):
        assert compare(ecosystem, low, low) == 0, low
        for high in chain[i + 1:]:
            assert compare(ecosystem, low, high) == -1, f"expected {low} < {high}"
            assert compare(ecosystem, high, low) == 1, f"expected {high} > {low}"


def assert_equal(ecosystem: str, a: str, b: str) -> None:
    assert compare(ecosystem, a, b) == 0, f"expected {a} == {b}"
    assert compare(ecosystem, b, a) == 0, f"expected {b} == {a}"


def assert_relation(ecosystem: str, a: str, op: str, b: str) -> None:
    expected = {"<": -1, "=": 0, ">": 1}[op]
    assert compare(ecosystem, a, b) == expected, f"expected {a} {op} {b}"
    assert compare(ecosystem, b, a) == -expected, f"expected {b} {'<=>'[2 - (expected + 1)]} {a}"
