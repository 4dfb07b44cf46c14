"""A small real world for the service's tests: the shared PyPI advisories (+ NVD, KEV), two shared
images scanned, a risk acceptance, and one token per role.

Built in a given store (the ``store`` fixture: SQLite and PostgreSQL) with the library's own
functions, as ``tests/match/test_rematch.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keelwatch.config import FeedSettings
from keelwatch.match.scan import scan_image
from keelwatch.match.vex import accept
from keelwatch.store import Store
from keelwatch.store import tokens as stored_tokens
from keelwatch.sync.engine import sync_feed
from match import scenarios  # tests/ is on sys.path

#: In debian12-python (requests 2.25.1), accepted in the world: a suppressed finding to show.
ACCEPTED = "CVE-2023-32681"
#: Also in debian12-python (idna 2.10), not suppressed.
OPEN = "CVE-2024-3651"
IMAGES = ("debian12-python", "node-app")


@dataclass
class World:
    store: Store
    digests: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_world(store: Store, feeds_dir: Path, images_dir: Path, workdir: Path) -> World:
    for name, kind, url in (("osv-pypi", "osv", feeds_dir / "osv" / "PyPI.zip"),
                            ("osv-npm", "osv", feeds_dir / "osv" / "npm-ghsa-subset.zip"),
                            ("nvd", "nvd", feeds_dir / "nvd" / "records"),
                            ("kev", "kev", feeds_dir / "kev" / "known_exploited_vulnerabilities.json")):
        report = sync_feed(store, FeedSettings(name=name, kind=kind, url=str(url)), workdir=workdir / name)
        assert report.status == "ok", report
    digests = {}
    for image in IMAGES:
        result = scenarios.catalog(images_dir, image)
        store.save_catalog(result)
        digests[image] = result.image.manifest_digest
        scan_image(store, result.image.manifest_digest)
    accept(store, ACCEPTED, image=digests["debian12-python"], until=datetime.now(UTC) + timedelta(days=30),
           reason="not reachable: the service never follows redirects", created_by="tests")
    world = World(store, digests)
    add_tokens(world)
    return world


def add_tokens(world: World) -> None:
    with world.store.session() as session:
        for role in stored_tokens.ROLES:
            world.tokens[role], _ = stored_tokens.create_token(session, role, name=f"test-{role}")
