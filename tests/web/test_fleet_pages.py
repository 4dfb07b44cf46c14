"""The dashboard's fleet pages in Debian's Chromium (Playwright) against a real server on a running fleet
(tests/api/fleet_world.py): overview → cluster → namespace → workload → container, where a CVE runs,
acknowledging an alert as an operator (and not as a viewer), the plan and the validation checklist.

Screenshots go to docs/screenshots/ only with KEELWATCH_SCREENSHOTS=1 (see ``_shot``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.fleet_world import REQUESTS_CVE, FleetWorld, build_fleet_world  # tests/ is on sys.path
from conftest import free_port
from web import test_dashboard as dashboard

pytestmark = [pytest.mark.datasets, pytest.mark.slow]

browser = dashboard.browser  # the module-scoped Chromium fixture, shared
_shot = dashboard._shot


@pytest.fixture
def served_fleet(feeds_dir: Path, images_dir: Path, tmp_path: Path) -> Iterator[tuple[str, FleetWorld]]:
    import uvicorn

    from keelwatch.api import create_app
    from keelwatch.config import Settings
    from keelwatch.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    world = build_fleet_world(store, feeds_dir, images_dir, tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, Settings()), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield base, world
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def login(browser: Any, base: str, token: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page


def test_drill_down_from_the_overview_to_a_container(browser: Any, served_fleet: tuple[str, FleetWorld]) -> None:
    base, world = served_fleet
    context, page = login(browser, base, world.tokens["viewer"])
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    api = httpx.get(f"{base}/api/v1/containers", headers=world.headers("viewer")).json()

    # Overview: the fleet's posture and the 90-day trend (two snapshots and today's live column).
    page.reload()
    assert page.inner_text("[data-fleet=containers] .n") == str(api["total"]) == "5"
    assert page.inner_text("[data-fleet=unknown] .n") == "1"
    assert "unresolved: 401 from registry" in page.inner_text("[data-fleet=unknown]")
    fleet_total = {c["digest"]: c["total"] for c in api["items"] if c["digest"]}
    assert page.inner_text("[data-fleet=findings] .n") == str(sum(fleet_total.values()))  # distinct: v1's + v2's
    assert page.locator("#trend-chart g.day").count() == 3
    assert page.inner_text("[data-fleet=breached] .n") == "0"
    _shot(page, "fleet-overview")

    page.click("nav >> text=Clusters")
    page.wait_for_url(f"{base}/clusters")
    assert page.locator("table.groups tbody tr").count() == 2
    _shot(page, "clusters")

    page.click("table.groups a:text-is('eu-1')")
    page.wait_for_url(f"{base}/clusters/eu-1")
    assert [t.strip() for t in page.locator("table.groups tbody td:first-child").all_inner_texts()] == ["shop"]
    page.click("table.groups a:text-is('shop')")
    page.wait_for_url(f"{base}/clusters/eu-1/namespaces/shop")
    workloads = page.locator("table.groups tbody td:first-child").all_inner_texts()
    assert sorted(w.strip() for w in workloads) == ["Deployment/api", "Deployment/checkout", "Deployment/search"]
    assert "1 unknown" in page.inner_text("table.groups")
    _shot(page, "namespace")

    page.click("table.groups a:text-is('Deployment/checkout')")
    page.wait_for_url(f"{base}/workloads/eu-1/shop/Deployment/checkout")
    assert page.inner_text("h1") == "Deployment/checkout"
    assert page.locator("table.containers tbody tr").count() == 2
    assert "payments" in page.inner_text("dl.facts")
    assert REQUESTS_CVE in page.inner_text("table.findings")
    _shot(page, "workload")

    page.click("table.containers a:text-is('checkout-a')")
    page.wait_for_url(f"{base}/containers/shop/checkout-a")
    assert page.inner_text("h1").startswith("checkout-a")
    one = httpx.get(f"{base}/api/v1/containers/shop/checkout-a", headers=world.headers("viewer")).json()
    assert f"{one['total']} open findings" in page.inner_text("p.summary")
    assert page.locator("nav.crumbs a").count() == 4
    _shot(page, "container")

    # Where does the requests CVE run right now? On checkout in both clusters, owned by payments.
    page.click(f"table.findings a:text-is('{REQUESTS_CVE}')")
    page.wait_for_url(f"{base}/vulnerabilities/{REQUESTS_CVE}")
    assert page.get_attribute("p.running", "data-running") == "3"
    assert "payments" in page.inner_text("p.running")
    assert page.locator("table.where-workloads tbody tr").count() == 2
    _shot(page, "vulnerability-running")

    # The unresolved container says why its posture is unknown.
    page.goto(f"{base}/containers/shop/api-0")
    assert "unresolved: 401 from registry" in page.inner_text("[data-unknown]")

    page.click("nav >> text=Plan")
    page.wait_for_url(f"{base}/plan")
    assert world.v1[:19] in page.inner_text("table.plan") and "requests" in page.inner_text("table.plan")
    _shot(page, "plan")

    page.click("nav >> text=Validation")
    page.wait_for_url(f"{base}/validation")
    assert page.locator("li.step").count() == 6
    assert page.locator("li.step-pass").count() == 5
    _shot(page, "validation")

    assert requests and all(url.startswith(base) for url in requests)  # no CDN
    context.close()


def test_an_operator_acknowledges_an_alert_and_a_viewer_cannot(browser: Any,
                                                               served_fleet: tuple[str, FleetWorld]) -> None:
    base, world = served_fleet
    alert = httpx.get(f"{base}/api/v1/alerts", params={"advisory": REQUESTS_CVE},
                      headers=world.headers("viewer")).json()["items"][0]

    viewer, page = login(browser, base, world.tokens["viewer"])
    page.click("nav >> text=Alerts")
    page.wait_for_url(f"{base}/alerts")
    assert page.locator("table.alerts button").count() == 0
    assert "needs an operator token" in page.inner_text("main")
    viewer.close()

    operator, page = login(browser, base, world.tokens["operator"])
    page.click("nav >> text=Alerts")
    page.wait_for_url(f"{base}/alerts")
    total = httpx.get(f"{base}/api/v1/alerts", headers=world.headers("viewer")).json()["total"]
    assert page.locator("table.alerts tbody tr").count() == total
    assert "payments" in page.inner_text("table.sla")
    row = page.locator(f"tr[data-alert='{alert['id']}']")
    assert row.locator("td.state").inner_text().strip() == "open"
    row.locator("button:text-is('Acknowledge')").click()
    page.wait_for_url(f"{base}/alerts?state=active&done=*")
    assert "Acknowledged" in page.inner_text("[role=status]")
    row = page.locator(f"tr[data-alert='{alert['id']}']")
    assert row.locator("td.state").inner_text().startswith("acknowledged by test-operator")
    assert row.locator("button:text-is('Acknowledge')").count() == 0  # only Resolve is left
    _shot(page, "alerts")
    doc = httpx.get(f"{base}/api/v1/alerts/{alert['id']}", headers=world.headers("viewer")).json()
    assert doc["state"] == "acknowledged" and doc["acknowledged_by"] == "test-operator"

    row.locator("button:text-is('Resolve')").click()
    page.wait_for_url(f"{base}/alerts?state=active&done=*")
    assert page.locator(f"tr[data-alert='{alert['id']}']").count() == 0  # resolved: not active any more
    page.select_option("select[name=state]", "resolved")
    page.click("form.filter button")
    assert page.locator(f"tr[data-alert='{alert['id']}']").count() == 1
    operator.close()
