"""Posture derived from the inventory and real findings: the shared debian12-python image and its
v2 rebuild (Django and requests upgraded) against the current PyPA database, with a workload that
is redeployed from one to the other. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.test_alerts import container, inventory  # tests/ is on sys.path
from keelwatch.match import vex
from keelwatch.match.scan import scan_image
from keelwatch.posture import compute
from keelwatch.store import Store
from match.test_rematch import AFTER, store_image, sync_zip

pytestmark = pytest.mark.datasets


@pytest.fixture
def images(store: Store, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> dict[str, Any]:
    sync_zip(store, feeds_dir, AFTER, tmp_path)
    v1 = store_image(store, images_dir, "debian12-python")
    v2 = store_image(store, images_dir, "debian12-python-v2")
    return {"v1": v1, "v2": v2, "scan1": scan_image(store, v1), "scan2": scan_image(store, v2)}


def fleet(store: Store) -> compute.Fleet:
    with store.session(write=False) as session:
        return compute.fleet(session)


def test_containers_inherit_their_image_and_a_redeploy_improves_posture(store: Store, images: dict[str, Any]) -> None:
    v1, v2 = images["v1"], images["v2"]
    pending = replace(container("api-0", "sha256:" + "0" * 64, workload="api"), digest=None,
                      resolution_error="unresolved: 401 from registry")
    inventory(store, container("checkout-a", v1), container("checkout-b", v1),
              container("search-a", v2, workload="search", owner="discovery"), pending)
    f = fleet(store)

    # Every container's counts equal its image's counts (the validation checklist's step 3).
    for row in compute.group_by(f, "container"):
        if row["pod"] == "api-0":
            assert row["unknown_posture"] == 1 and row["unknown_reasons"] == {"unresolved: 401 from registry": 1}
            continue
        scan = images["scan1"].scan if row["pod"].startswith("checkout") else images["scan2"].scan
        assert row["counts"] == scan.counts and row["total"] == scan.total

    by_workload = {r["workload"]: r for r in compute.group_by(f, "workload")}
    checkout = by_workload["checkout"]
    assert checkout["containers"] == 2 and checkout["counts"] == images["scan1"].scan.counts  # replicas count once
    assert {"cluster", "namespace", "workload_kind", "workload"} <= checkout.keys()
    assert by_workload["api"]["unknown_posture"] == 1
    assert {r["owner"] for r in compute.group_by(f, "owner")} == {"payments", "discovery"}

    # The top exposure reaches both checkout pods; the plan rebuilds v1 first.
    top = compute.top_exposures(f)
    assert top[0]["containers"] >= 2 and "shop/checkout" in " ".join(top[0]["workloads"])
    plan = compute.remediation_plan(f)
    assert plan[0]["digest"] == v1 and plan[0]["containers"] == 2
    assert any(p["name"] == "requests" for p in plan[0]["packages"])

    # Redeploy checkout onto v2: posture follows, with no other step.
    before = checkout["total"]
    inventory(store, container("checkout-c", v2), container("search-a", v2, workload="search", owner="discovery"))
    after = {r["workload"]: r for r in compute.group_by(fleet(store), "workload")}["checkout"]
    assert after["total"] < before and after["counts"] == images["scan2"].scan.counts


def test_suppressed_findings_leave_posture(store: Store, images: dict[str, Any]) -> None:
    v1 = images["v1"]
    inventory(store, container("checkout-a", v1))
    total = compute.group_by(fleet(store), "workload")[0]["total"]
    target = images["scan1"].findings[0].finding
    vex.accept(store, target.id, image=v1, until=datetime.now(UTC) + timedelta(days=1), reason="test")
    assert compute.group_by(fleet(store), "workload")[0]["total"] == total - 1


def test_posture_cli_json(store_url: str, store: Store, images: dict[str, Any], tmp_path: Path) -> None:
    inventory(store, container("checkout-a", images["v1"]))
    config = tmp_path / "k.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}

    def keelwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "keelwatch", "--config", str(config), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    out = keelwatch("posture", "--by", "workload", "--format", "json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["cluster"], row["namespace"], row["workload_kind"], row["workload"]) == ("eu-1", "shop",
                                                                                         "Deployment", "checkout")
    assert row["containers"] == 1 and set(row["counts"]) == {"critical", "high", "medium", "low", "unknown"}
    assert keelwatch("posture", "--by", "label:team").returncode == 0
    assert keelwatch("posture", "--by", "galaxy").returncode == 2


def test_snapshots_and_diff_show_the_redeploy(store: Store, images: dict[str, Any], store_url: str,
                                              tmp_path: Path) -> None:
    from keelwatch.posture import history

    inventory(store, container("checkout-a", images["v1"]), container("search-a", images["v2"], workload="search"))
    taken = datetime.now(UTC)
    with store.session() as session:
        assert history.snapshot(session, compute.fleet(session), now=taken) > 0
    inventory(store, container("checkout-b", images["v2"]), container("search-a", images["v2"], workload="search"))
    with store.session(write=False) as session:
        result = history.diff(session, compute.fleet(session), "workload", taken + timedelta(seconds=1))
    rows = {r["keys"]["workload"]: r for r in result["rows"]}
    assert rows["checkout"]["change"] == "improved" and rows["search"]["change"] == "same"
    assert rows["checkout"]["delta"]["critical"] <= 0 and sum(rows["checkout"]["delta"].values()) < 0
    # Before any snapshot, everything is new.
    with store.session(write=False) as session:
        early = history.diff(session, compute.fleet(session), "workload", taken - timedelta(days=1))
    assert early["snapshot"] is None and {r["change"] for r in early["rows"]} == {"new"}

    config = tmp_path / "k.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
    out = subprocess.run([sys.executable, "-m", "keelwatch", "--config", str(config), "posture", "diff", "--since",
                          (taken + timedelta(seconds=1)).isoformat(), "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert {r["keys"]["workload"]: r["change"] for r in json.loads(out.stdout)["rows"]}["checkout"] == "improved"


def test_reports_in_every_format(store: Store, images: dict[str, Any], store_url: str, tmp_path: Path) -> None:
    import csv
    import io

    from keelwatch.posture import history
    from keelwatch.reports import posture_report

    inventory(store, container("checkout-a", images["v1"]), container("search-a", images["v2"], workload="search"))
    with store.session() as session:
        history.snapshot(session, compute.fleet(session), now=datetime.now(UTC) - timedelta(days=1))
        history.snapshot(session, compute.fleet(session), now=datetime.now(UTC))
    with store.session(write=False) as session:
        f = compute.fleet(session)
        data = posture_report.report_data(f, "workload", history.trend(session))
    assert len(data["trend"]) == 2
    rows = list(csv.DictReader(io.StringIO(posture_report.to_csv(data))))
    assert {r["workload"] for r in rows} == {"checkout", "search"}
    checkout = next(r for r in rows if r["workload"] == "checkout")
    assert int(checkout["total"]) == images["scan1"].scan.total
    page = posture_report.to_html(data)
    assert "<svg" in page and "checkout" in page and "http" not in page.split("<body>")[1].split("keelwatch ")[0] \
        .replace("http://www.w3.org/2000/svg", "")  # self-contained: no remote assets
    pdf = posture_report.to_pdf(data)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    from weasyprint import HTML

    assert len(HTML(string=page).render().pages) >= 2  # the tables run over more than one page
    sarif = json.loads(posture_report.to_sarif(f))
    results = sarif["runs"][0]["results"]
    assert len(results) == images["scan1"].scan.total + images["scan2"].scan.total
    assert all(r["properties"]["containers"] for r in results)

    config = tmp_path / "k.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
    out = subprocess.run([sys.executable, "-m", "keelwatch", "--config", str(config), "report", "--format", "pdf",
                          "-o", str(tmp_path / "r.pdf")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")


def test_the_fast_path_gives_the_same_rows_as_the_fleet(store: Store, images: dict[str, Any]) -> None:
    """posture_rows (SQL aggregates) against group_by over every finding, suppressions included."""
    v1, v2 = images["v1"], images["v2"]
    inventory(store, container("checkout-a", v1), container("checkout-b", v1),
              container("search-a", v2, workload="search", owner="discovery"),
              replace(container("api-0", "sha256:" + "0" * 64, workload="api"), digest=None,
                      resolution_error="unresolved: 401 from registry"),
              container("batch-0", "sha256:" + "1" * 64, workload="batch"))
    vex.accept(store, images["scan1"].findings[0].finding.id, image=v1, until=datetime.now(UTC) + timedelta(days=1),
               reason="test")
    now = datetime.now(UTC)
    for by in ("container", "workload", "namespace", "cluster", "owner", "image"):
        with store.session(write=False) as session:
            slow = compute.group_by(compute.fleet(session, now=now), by)
            fast = compute.posture_rows(session, by, now=now)
        for row in (*slow, *fast):
            row["risk"] = pytest.approx(row["risk"], abs=0.05)
        assert fast == slow, by
    assert any(r["unknown_reasons"] == {"image not scanned yet": 1} for r in fast)
