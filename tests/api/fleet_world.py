"""A running fleet for the API's and the dashboard's fleet tests, built as tests/posture and tests/alerts do.

The shared debian12-python image and its v2 rebuild against the current PyPA database; an
inventory (written through ``keelwatch.store.inventory.apply_snapshot`` as a source would) of two
clusters: ``shop/checkout`` (two replicas on v1, owner payments, prod), ``shop/search`` (redeployed
from v1 to v2, owner discovery), ``shop-dev/checkout`` on eu-2 (v1, dev) and one container whose
digest could not be resolved. Fleet snapshots 40 and 10 days ago (before the search redeploy),
alerts raised with the default policy, and one token per role.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.test_alerts import container, inventory  # tests/ is on sys.path
from keelwatch.alerts.engine import raise_alerts
from keelwatch.config import AlertSettings
from keelwatch.match.scan import scan_image
from keelwatch.posture import compute, history
from keelwatch.store import Store
from keelwatch.store import tokens as stored_tokens
from keelwatch.store.inventory import ContainerValues
from match.test_rematch import AFTER, store_image, sync_zip

#: requests 2.25.1 in v1, upgraded in v2: on checkout (v1), not on search (v2) any more.
REQUESTS_CVE = "CVE-2023-32681"


@dataclass
class FleetWorld:
    store: Store
    v1: str
    v2: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def labelled(values: ContainerValues, **labels: str) -> ContainerValues:
    return replace(values, labels=dict(labels))


def checkout(pod: str, digest: str) -> ContainerValues:
    return labelled(container(pod, digest), app="checkout", tier="web")


def search(pod: str, digest: str) -> ContainerValues:
    return labelled(container(pod, digest, workload="search", owner="discovery"), app="search", tier="backend")


def dev_checkout(digest: str) -> ContainerValues:
    return replace(labelled(container("checkout-dev-a", digest, namespace="shop-dev", environment="dev",
                                      owner="payments"), app="checkout", tier="web"), cluster="eu-2")


def unresolved() -> ContainerValues:
    return replace(container("api-0", "sha256:" + "0" * 64, workload="api", owner="platform"), digest=None,
                   resolution_error="unresolved: 401 from registry")


def snapshot(store: Store, when: datetime) -> None:
    with store.session() as session:
        history.snapshot(session, compute.fleet(session, now=when), now=when)


def add_tokens(store: Store, tokens: dict[str, str]) -> None:
    with store.session() as session:
        for role in stored_tokens.ROLES:
            tokens[role], _ = stored_tokens.create_token(session, role, name=f"test-{role}")


def run_fleet(store: Store, v1: str, v2: str, *, now: datetime | None = None) -> None:
    """The inventory, its history and the alerts, on images already scanned."""
    now = now or datetime.now(UTC)
    inventory(store, checkout("checkout-a", v1), checkout("checkout-b", v1), search("search-a", v1),
              dev_checkout(v1), unresolved())
    snapshot(store, now - timedelta(days=40))
    snapshot(store, now - timedelta(days=10))
    # search redeployed onto the v2 rebuild: search-a ends, search-b runs v2.
    inventory(store, checkout("checkout-a", v1), checkout("checkout-b", v1), search("search-b", v2),
              dev_checkout(v1), unresolved())
    raise_alerts(store, AlertSettings())


def build_fleet_world(store: Store, feeds_dir: Path, images_dir: Path, workdir: Path) -> FleetWorld:
    sync_zip(store, feeds_dir, AFTER, workdir)
    v1 = store_image(store, images_dir, "debian12-python")
    v2 = store_image(store, images_dir, "debian12-python-v2")
    scan_image(store, v1)
    scan_image(store, v2)
    run_fleet(store, v1, v2)
    world = FleetWorld(store, v1, v2)
    add_tokens(store, world.tokens)
    return world
