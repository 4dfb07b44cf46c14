"""`keelwatch validate` end to end on real images: debian12-python, then the v2 rebuild (Django and
requests upgraded) with the workload redeployed onto it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.test_alerts import container, inventory  # tests/ is on sys.path
from keelwatch.config import FeedSettings, InventorySettings, InventorySourceSettings, Settings
from keelwatch.posture.validate import validate
from keelwatch.store import Store
from keelwatch.store.inventory import record_success

from .test_posture import images  # noqa: F401 (the fixture)

pytestmark = pytest.mark.datasets


def run(store: Store, settings: Settings) -> dict[int, Any]:
    with store.session() as session:
        record_success(session, "test-cluster", "static", datetime.now(UTC))
    with store.session(write=False) as session:
        return {s.step: s for s in validate(session, settings)}


def test_the_checklist_passes_after_the_redeploy(store: Store, images: dict[str, Any],  # noqa: F811
                                                 feeds_dir: Path) -> None:
    settings = Settings(feeds=[FeedSettings(name="pypi", kind="osv", url=str(feeds_dir / "osv/PyPI.zip"))],
                        inventory=InventorySettings(sources=[InventorySourceSettings(
                            name="test-cluster", kind="static", path="inventory.csv")]))
    inventory(store, container("checkout-a", images["v1"]), container("checkout-b", images["v1"]))
    steps = run(store, settings)
    assert [steps[i].status for i in (1, 2, 3)] == ["pass", "pass", "pass"]
    assert images["v1"] in steps[1].evidence[0] and "CVE-" in steps[1].evidence[0]
    assert "shop/Deployment/checkout" in steps[2].evidence[0]
    assert steps[4].status == steps[5].status == "skipped"

    # The rebuild is deployed: the old pods end, new ones run v2.
    inventory(store, container("checkout-c", images["v2"]), container("checkout-d", images["v2"]))
    steps = run(store, settings)
    assert {i: s.status for i, s in steps.items()} == dict.fromkeys(range(1, 7), "pass"), \
        {i: s.evidence for i, s in steps.items()}
    assert " removed CVE-" in steps[4].evidence[0]  # the rebuild upgraded the vulnerable packages
    assert "after" in steps[5].evidence[0]

    # An unowned container fails the operations step, naming the problem.
    inventory(store, container("checkout-c", images["v2"]),
              replace(container("orphan", images["v2"], workload="orphan"), owner=""))
    steps = run(store, settings)
    assert steps[6].status == "fail" and "no owner" in " ".join(steps[6].evidence)
