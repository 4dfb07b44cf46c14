"""Fixtures every test area shares: where the shared data lives, and how a missing dataset is treated.

Shared data is read in place from ``$KEELWATCH_SHARED/data`` (default ``../shared`` beside the
repository's root). A test that needs it skips with a reason when it is absent, and fails instead
when ``KEELWATCH_REQUIRE_DATASETS=1`` (as CI sets it), so a missing dataset never passes silently.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("KEELWATCH_SHARED", REPO_ROOT.parent / "shared")).resolve()


def require_dataset(relative: str) -> Path:
    """Path of ``$KEELWATCH_SHARED/data/RELATIVE``; skip (or fail under CI) when it is missing."""
    path = shared_dir() / "data" / relative
    if not path.exists():
        reason = f"shared dataset missing: {path} (set KEELWATCH_SHARED)"
        if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_dataset("")


@pytest.fixture(scope="session")
def images_dir() -> Path:
    return require_dataset("images")


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    return require_dataset("feeds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
