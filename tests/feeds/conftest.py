"""Fixtures of the feed tests: a misbehaving HTTP server on 127.0.0.1 (see ``httpserver.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .httpserver import TestServer


@pytest.fixture
def server() -> Iterator[TestServer]:
    srv = TestServer()
    try:
        yield srv
    finally:
        srv.close()
