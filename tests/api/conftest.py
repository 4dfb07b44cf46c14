from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .world import World, build_world


@pytest.fixture
def world(store: Any, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> World:
    return build_world(store, feeds_dir, images_dir, tmp_path)


@pytest.fixture
def client(world: World) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from keelwatch.api import ApiOptions, create_app
    from keelwatch.config import Settings, StoreSettings

    app = create_app(world.store, Settings(store=StoreSettings(url=str(world.store.url))),
                     options=ApiOptions(allow_local_sources=True))
    with TestClient(app) as test_client:
        yield test_client
