"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real server.

Logs in with a token, clicks from the overview to an image to one of its vulnerabilities, and
asserts on what each page says; screenshots of each page are written to docs/screenshots/.
Skips (or fails under ``KEELWATCH_REQUIRE_DATASETS=1``) when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.world import ACCEPTED, OPEN, World, build_world  # tests/ is on sys.path
from conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.datasets, pytest.mark.slow]

CHROMIUM = os.environ.get("KEELWATCH_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _unavailable(reason: str) -> None:
    if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium; make system-deps does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def served(feeds_dir: Path, images_dir: Path, tmp_path: Path) -> Iterator[tuple[str, World]]:
    import uvicorn

    from keelwatch.api import create_app
    from keelwatch.config import Settings
    from keelwatch.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'web.db'}")
    world = build_world(store, feeds_dir, images_dir, tmp_path)
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


def _shot(page: Any, name: str) -> None:
    # The committed screenshots are refreshed on request (KEELWATCH_SCREENSHOTS=1); otherwise into a
    # temporary directory, so a test run leaves the checkout as it was.
    import tempfile

    where = SCREENSHOTS if os.environ.get("KEELWATCH_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "kw-shots"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size < 1_000_000, f"{path} is {path.stat().st_size} bytes"


def test_click_from_the_overview_to_an_image_to_a_vulnerability(browser: Any, served: tuple[str, World]) -> None:
    base, world = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")  # no session: the login page
    page.fill("#token", "kw_wrong")
    page.click("button[type=submit]")
    assert "unknown or revoked" in page.inner_text("[role=alert]")
    _shot(page, "login")
    page.fill("#token", world.tokens["viewer"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # Overview: the fleet's counts are the API's.
    api = httpx.get(f"{base}/api/v1/images", headers=world.headers("viewer")).json()["items"]
    high = sum(i["counts"]["high"] for i in api)
    assert page.inner_text("[data-severity=high] .n") == str(high)
    assert page.inner_text("[data-kev] .n") == str(sum(i["kev"] for i in api))
    assert page.locator("#severity-chart rect").count() == 5
    assert "osv-pypi" in page.inner_text("table.feeds")
    _shot(page, "overview")

    page.click("nav >> text=Images")
    page.wait_for_url(f"{base}/images")
    assert page.locator("table.images tbody tr").count() == 2
    _shot(page, "images")

    digest = world.digests["debian12-python"]
    page.click(f"a[href='/images/{digest}']")
    page.wait_for_url(f"{base}/images/{digest}")
    assert digest in page.inner_text("dl.facts")
    suppressed = page.locator("tr.suppressed")
    assert suppressed.count() == 1 and ACCEPTED in suppressed.inner_text()
    assert "suppressed: accepted (acceptance)" in suppressed.inner_text()
    assert "1 suppressed" in page.inner_text("p.summary")
    _shot(page, "image")

    page.click(f"table.findings a:text-is('{OPEN}')")
    page.wait_for_url(f"{base}/vulnerabilities/{OPEN}")
    assert page.inner_text("h1").startswith(OPEN)
    where = page.inner_text("table.where-images")
    assert "idna" in where and digest[:19] in where
    assert "1 image affected" in page.inner_text("p.where")
    _shot(page, "vulnerability")

    # The search box answers "where does CVE-X run?" straight away.
    page.fill("header .search input", ACCEPTED)
    page.press("header .search input", "Enter")
    page.wait_for_url(f"{base}/vulnerabilities/{ACCEPTED}")
    assert "0 images affected, 1 suppressed" in page.inner_text("p.where")
    page.goto(f"{base}/vulnerabilities")
    assert page.locator("table tbody tr").count() > 20
    _shot(page, "vulnerabilities")

    # Every asset came from this server: no CDN.
    assert requests and all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]

    page.click("text=Log out")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/images")
    assert page.url.startswith(f"{base}/login?next=/images")
    context.close()


def test_a_revoked_token_logs_the_browser_out(browser: Any, served: tuple[str, World]) -> None:
    from keelwatch.store import tokens as stored_tokens

    base, world = served
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#token", world.tokens["operator"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    cookie = next(c for c in context.cookies() if c["name"] == "keelwatch_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with world.store.session() as session:
        stored_tokens.revoke_token(session, "test-operator")
    page.goto(f"{base}/images")
    assert page.url.startswith(f"{base}/login")
    context.close()
