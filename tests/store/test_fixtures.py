"""The shared PostgreSQL fixtures: no server means skip, unless PostgreSQL is required."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_postgres_test(**env: str) -> subprocess.CompletedProcess[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_REQUIRE")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/store/test_engine.py::test_database_errors_in_a_session_are_store_errors_and_roll_back[postgres]"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**clean, "KEELWATCH_TEST_PG_URL": f"postgresql://postgres@127.0.0.1:{port}/postgres", **env},
    )


def test_an_unreachable_server_skips_with_the_reason() -> None:
    done = run_postgres_test()
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "PostgreSQL unavailable: cannot connect to" in done.stdout


@pytest.mark.parametrize("variable", ["KEELWATCH_REQUIRE_POSTGRES", "KEELWATCH_REQUIRE_DATASETS"])
def test_an_unreachable_server_fails_when_postgresql_is_required(variable: str) -> None:
    done = run_postgres_test(**{variable: "1"})
    assert done.returncode != 0
    assert "PostgreSQL is required but cannot connect to" in done.stdout
