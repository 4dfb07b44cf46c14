"""The fleet side of the API on a real running fleet (tests/api/fleet_world.py), SQLite and PostgreSQL:
containers and their posture, the groupings, posture top/plan/freshness/history/trend, where a CVE
runs, alerts (viewers read, operators acknowledge and resolve), SLA and the validation checklist."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keelwatch.store import findings as stored_findings
from keelwatch.store import tokens as stored_tokens

from .fleet_world import REQUESTS_CVE, FleetWorld, build_fleet_world

pytestmark = pytest.mark.datasets

FLEET_GETS = ("/api/v1/containers", "/api/v1/workloads", "/api/v1/namespaces", "/api/v1/clusters",
              "/api/v1/posture", "/api/v1/posture?by=label:app", "/api/v1/posture/top", "/api/v1/posture/plan",
              "/api/v1/posture/freshness", "/api/v1/posture/history", "/api/v1/posture/trend", "/api/v1/alerts",
              "/api/v1/sla", "/api/v1/validation", "/api/v1/containers/shop/checkout-a",
              "/api/v1/workloads/eu-1/shop/Deployment/checkout")


@pytest.fixture
def fleet(store: Any, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> FleetWorld:
    return build_fleet_world(store, feeds_dir, images_dir, tmp_path)


@pytest.fixture
def api(fleet: FleetWorld) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from keelwatch.api import create_app
    from keelwatch.config import FeedSettings, Settings, StoreSettings

    settings = Settings(store=StoreSettings(url=str(fleet.store.url)),
                        feeds=[FeedSettings(name="pypi", kind="osv", url="file:///dev/null")])
    with TestClient(create_app(fleet.store, settings)) as client:
        yield client


def get(api: Any, fleet: FleetWorld, path: str, role: str = "viewer", **params: Any) -> Any:
    response = api.get(path, params=params, headers=fleet.headers(role))
    assert response.status_code == 200, (path, response.text)
    return response.json()


def scans(fleet: FleetWorld) -> dict[str, Any]:
    with fleet.store.session(write=False) as session:
        return stored_findings.image_scans(session)


def test_fleet_routes_need_a_token_and_viewers_read_them(api: Any, fleet: FleetWorld) -> None:
    for path in FLEET_GETS:
        assert api.get(path).status_code == 401, path
        assert api.get(path, headers={"Authorization": "Bearer kw_nope"}).status_code == 401, path
        for role in ("viewer", "operator", "admin"):
            assert api.get(path, headers=fleet.headers(role)).status_code == 200, (path, role)
    alert = get(api, fleet, "/api/v1/alerts")["items"][0]["id"]
    assert api.get(f"/api/v1/alerts/{alert}").status_code == 401
    for action in ("ack", "resolve"):
        assert api.post(f"/api/v1/alerts/{alert}/{action}").status_code == 401
        refused = api.post(f"/api/v1/alerts/{alert}/{action}", headers=fleet.headers("viewer"))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    with fleet.store.session() as session:
        stored_tokens.revoke_token(session, "test-viewer")
    assert api.get("/api/v1/containers", headers=fleet.headers("viewer")).status_code == 401


def test_containers_carry_their_image_posture_or_why_it_is_unknown(api: Any, fleet: FleetWorld) -> None:
    body = get(api, fleet, "/api/v1/containers")
    assert body["total"] == 5 and body["next_cursor"] is None
    by_pod = {c["pod"]: c for c in body["items"]}
    assert set(by_pod) == {"checkout-a", "checkout-b", "search-b", "checkout-dev-a", "api-0"}  # search-a ended
    stored = scans(fleet)
    for pod, digest in (("checkout-a", fleet.v1), ("checkout-dev-a", fleet.v1), ("search-b", fleet.v2)):
        c = by_pod[pod]
        assert c["digest"] == digest and c["posture_known"] and c["unknown_posture"] is None
        assert c["counts"] == stored[digest].counts and c["total"] == stored[digest].total  # nothing suppressed
        assert c["scanned_at"] and (c["risk"] > 0) == (digest == fleet.v1)
    # The v2 rebuild is clean: known posture, zero findings (not "unknown").
    assert by_pod["search-b"]["total"] == 0 and by_pod["search-b"]["counts"]["high"] == 0
    pending = by_pod["api-0"]
    assert not pending["posture_known"] and pending["counts"] is None and pending["total"] is None
    assert pending["unknown_posture"] == "unresolved: 401 from registry"
    # The most exposed first (v1 has more than v2), unknown posture last.
    assert [c["pod"] for c in body["items"]][-1] == "api-0"
    assert by_pod["checkout-a"]["risk"] > by_pod["search-b"]["risk"]

    def pods(**params: Any) -> list[str]:
        return sorted(c["pod"] for c in get(api, fleet, "/api/v1/containers", **params)["items"])

    assert pods(namespace="shop-dev") == ["checkout-dev-a"]
    assert pods(cluster="eu-2") == ["checkout-dev-a"]
    assert pods(workload="checkout") == ["checkout-a", "checkout-b", "checkout-dev-a"]
    assert pods(workload="eu-1/shop/Deployment/checkout") == ["checkout-a", "checkout-b"]
    assert pods(digest=fleet.v2) == ["search-b"]
    assert pods(image=fleet.v1) == ["checkout-a", "checkout-b", "checkout-dev-a"]
    assert pods(unresolved=True) == ["api-0"] and len(pods(unresolved=False)) == 4
    assert pods(unknown_posture=True) == ["api-0"]
    assert pods(owner="discovery") == ["search-b"] and pods(environment="dev") == ["checkout-dev-a"]
    worst = "critical" if stored[fleet.v2].counts["critical"] else "high"
    assert set(pods(min_severity=worst)) == {p for p, c in by_pod.items() if c["counts"] and c["counts"][worst]} \
        | {p for p, c in by_pod.items() if c["counts"] and c["counts"]["critical"]}

    seen, cursor = [], None
    while True:
        page = get(api, fleet, "/api/v1/containers", limit=2, sort="name", **({"cursor": cursor} if cursor else {}))
        seen += [c["key"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [c["key"] for c in sorted(body["items"], key=lambda c: (c["cluster"], c["namespace"], c["pod"]))]

    one = get(api, fleet, "/api/v1/containers/shop/checkout-a")
    assert one["pod"] == "checkout-a" and len(one["findings"]) == one["total"]
    assert REQUESTS_CVE in {a for f in one["findings"] for a in f["aliases"]}
    missing = api.get("/api/v1/containers/shop/nope", headers=fleet.headers("viewer"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_workloads_namespaces_clusters_and_any_grouping(api: Any, fleet: FleetWorld) -> None:
    stored = scans(fleet)
    workloads = {r["key"]: r for r in get(api, fleet, "/api/v1/workloads")["items"]}
    assert set(workloads) == {"eu-1/shop/Deployment/checkout", "eu-1/shop/Deployment/search",
                              "eu-1/shop/Deployment/api", "eu-2/shop-dev/Deployment/checkout"}
    checkout = workloads["eu-1/shop/Deployment/checkout"]
    assert checkout["containers"] == 2 and checkout["counts"] == stored[fleet.v1].counts  # replicas count once
    assert checkout["keys"] == {"cluster": "eu-1", "namespace": "shop", "workload_kind": "Deployment",
                                "workload": "checkout"}
    assert workloads["eu-1/shop/Deployment/api"]["unknown_posture"] == 1
    assert [r["key"] for r in get(api, fleet, "/api/v1/workloads", cluster="eu-2")["items"]] == \
        ["eu-2/shop-dev/Deployment/checkout"]

    namespaces = {r["key"]: r for r in get(api, fleet, "/api/v1/namespaces")["items"]}
    assert set(namespaces) == {"eu-1/shop", "eu-2/shop-dev"}
    assert namespaces["eu-1/shop"]["containers"] == 4 and namespaces["eu-1/shop"]["images"] == 2
    assert [r["key"] for r in get(api, fleet, "/api/v1/namespaces", cluster="eu-1")["items"]] == ["eu-1/shop"]
    clusters = get(api, fleet, "/api/v1/clusters")
    assert clusters["by"] == "cluster" and {r["key"] for r in clusters["items"]} == {"eu-1", "eu-2"}
    risks = [r["risk"] for r in clusters["items"]]
    assert risks == sorted(risks, reverse=True) and risks[0] > 0  # riskiest first (both run v1: a tie)
    assert [r["key"] for r in get(api, fleet, "/api/v1/clusters", sort="name")["items"]] == ["eu-1", "eu-2"]

    by_app = {r["keys"]["value"]: r for r in get(api, fleet, "/api/v1/posture", by="label:app")["items"]}
    assert set(by_app) == {"checkout", "search", ""} and by_app["checkout"]["containers"] == 3
    owners = {r["owner"] for r in get(api, fleet, "/api/v1/posture", by="owner")["items"]}
    assert owners == {"payments", "discovery", "platform"}
    assert get(api, fleet, "/api/v1/posture", by="image")["total"] == 3  # v1, v2, and the unresolved one
    bad = api.get("/api/v1/posture", params={"by": "galaxy"}, headers=fleet.headers("viewer"))
    assert bad.status_code == 400 and "unknown grouping" in bad.json()["message"]

    doc = get(api, fleet, "/api/v1/workloads/eu-1/shop/Deployment/checkout")
    assert doc["workload"]["counts"] == checkout["counts"] and doc["owners"] == ["payments"]
    assert {c["pod"] for c in doc["containers"]} == {"checkout-a", "checkout-b"}
    assert [i["digest"] for i in doc["images"]] == [fleet.v1] and doc["images"][0]["containers"] == 2
    assert len(doc["images"][0]["findings"]) == stored[fleet.v1].total
    assert api.get("/api/v1/workloads/eu-1/shop/Deployment/nope", headers=fleet.headers("viewer")).status_code == 404


def test_top_plan_freshness_history_trend_and_validation(api: Any, fleet: FleetWorld) -> None:
    top = get(api, fleet, "/api/v1/posture/top")
    assert top["items"][0]["rank"] == 1 and top["items"][0]["containers"] >= 3
    assert "eu-1/shop/checkout" in top["items"][0]["workloads"]
    page = get(api, fleet, "/api/v1/posture/top", limit=2)
    rest = get(api, fleet, "/api/v1/posture/top", limit=1000, cursor=page["next_cursor"])
    assert [r["rank"] for r in page["items"] + rest["items"]] == list(range(1, top["total"] + 1))

    plan = get(api, fleet, "/api/v1/posture/plan")["items"]
    assert plan[0]["digest"] == fleet.v1 and plan[0]["containers"] == 3
    assert any(p["name"] == "requests" for p in plan[0]["packages"])
    assert set(plan[0]["owners"]) == {"payments"}

    fresh = get(api, fleet, "/api/v1/posture/freshness")
    assert {f["name"] for f in fresh["feeds"]} == {"pypi"} and not fresh["feeds"][0]["stale"]
    assert {i["digest"] for i in fresh["images"]} == {fleet.v1, fleet.v2}

    diff = get(api, fleet, "/api/v1/posture/history", by="workload", since="5d")
    assert diff["snapshot"] is not None and diff["grouping"] == "workload"
    rows = {r["key"]: r for r in diff["rows"]}
    search = next(r for r in rows.values() if r["keys"].get("workload") == "search")
    assert search["change"] == "improved" and search["risk_after"] < search["risk_before"]
    assert sum(search["delta"].values()) < 0
    improved = get(api, fleet, "/api/v1/posture/history", by="workload", since="5d", change="improved")["rows"]
    assert [r["keys"]["workload"] for r in improved] == ["search"]
    # Before the first snapshot there is nothing to compare with: every row is new.
    early = get(api, fleet, "/api/v1/posture/history", by="cluster", since="2000-01-01T00:00:00Z")
    assert early["snapshot"] is None and {r["change"] for r in early["rows"]} == {"new"}
    for since in ("yesterday", "5x"):
        assert api.get("/api/v1/posture/history", params={"since": since},
                       headers=fleet.headers("viewer")).status_code == 400
    assert api.get("/api/v1/posture/history", params={"by": "image"},
                   headers=fleet.headers("viewer")).status_code == 422

    trend = get(api, fleet, "/api/v1/posture/trend")
    assert trend["days"] == 90 and len(trend["items"]) == 2
    assert trend["items"][0]["day"] < trend["items"][1]["day"] and trend["items"][0]["containers"] == 5
    assert len(get(api, fleet, "/api/v1/posture/trend", days=20)["items"]) == 1

    checklist = get(api, fleet, "/api/v1/validation")
    steps = {s["step"]: s for s in checklist["steps"]}
    assert [steps[n]["status"] for n in (1, 2, 3, 4, 5)] == ["pass"] * 5, checklist
    assert steps[6]["status"] == "fail" and not checklist["passed"]  # no inventory source configured, stale scans
    assert any("search" in e for e in steps[4]["evidence"])


def test_a_vulnerability_lists_where_it_runs_right_now(api: Any, fleet: FleetWorld) -> None:
    doc = get(api, fleet, f"/api/v1/vulnerabilities/{REQUESTS_CVE}")
    assert [i["digest"] for i in doc["images"]] == [fleet.v1]
    running = doc["running"]
    assert sorted(c["pod"] for c in running["containers"]) == ["checkout-a", "checkout-b", "checkout-dev-a"]
    assert running["affected_containers"] == 3 and running["owners"] == ["payments"]
    assert [(w["cluster"], w["namespace"], w["workload"], w["containers"]) for w in running["workloads"]] == \
        [("eu-1", "shop", "checkout", 2), ("eu-2", "shop-dev", "checkout", 1)]
    # Suppressed on v1: listed, but no longer counted.
    from keelwatch.match.vex import accept

    accept(fleet.store, REQUESTS_CVE, image=fleet.v1, until=datetime.now(UTC) + timedelta(days=3), reason="tests",
           created_by="tests")
    quiet = get(api, fleet, f"/api/v1/vulnerabilities/{REQUESTS_CVE}")["running"]
    assert quiet["affected_containers"] == 0 and quiet["owners"] == [] and len(quiet["containers"]) == 3
    assert all(c["suppressed"] for c in quiet["containers"])


def test_alerts_list_filter_ack_resolve_and_sla(api: Any, fleet: FleetWorld) -> None:
    body = get(api, fleet, "/api/v1/alerts", limit=1000)
    alerts = body["items"]
    assert alerts and {a["state"] for a in alerts} == {"open"}
    assert {a["image_digest"] for a in alerts} <= {fleet.v1, fleet.v2}
    ranks = ["critical", "high", "medium", "low", "unknown"]
    assert [ranks.index(a["severity"]) for a in alerts] == sorted(ranks.index(a["severity"]) for a in alerts)
    requests_alert = next(a for a in alerts if a["advisory"] == REQUESTS_CVE)
    assert requests_alert["image_digest"] == fleet.v1 and requests_alert["owners"] == ["payments"]
    assert {c["pod"] for c in requests_alert["containers"]} == {"checkout-a", "checkout-b", "checkout-dev-a"}
    high = get(api, fleet, "/api/v1/alerts", severity="high", limit=1000)["items"]
    assert high and all(a["severity"] == "high" for a in high)
    assert [a["id"] for a in get(api, fleet, "/api/v1/alerts", advisory=REQUESTS_CVE)["items"]] == \
        [requests_alert["id"]]
    assert {a["image_digest"] for a in get(api, fleet, "/api/v1/alerts", image=fleet.v2, limit=1000)["items"]} \
        <= {fleet.v2}
    assert get(api, fleet, "/api/v1/alerts", owner="discovery", limit=1000)["total"] == \
        sum(1 for a in alerts if "discovery" in a["owners"])

    one = get(api, fleet, f"/api/v1/alerts/{requests_alert['id']}")
    assert one["advisory"] == REQUESTS_CVE and "deliveries" in one and one["body"]["advisory"] == REQUESTS_CVE
    assert api.get("/api/v1/alerts/nope", headers=fleet.headers("viewer")).status_code == 404

    sla = get(api, fleet, "/api/v1/sla")
    assert sla["open"] == len(alerts) and sla["soon_seconds"] == 7 * 86400
    owners = {r["owner"]: r for r in sla["items"]}
    assert owners["payments"]["open"] == sum(1 for a in alerts if "payments" in a["owners"])
    assert sla["breached"] == 0  # raised just now: nothing is overdue yet
    # Critical alerts are due in 3 days: due soon within 7 days, not within 24 hours.
    critical = sum(1 for a in alerts if a["severity"] == "critical")
    assert get(api, fleet, "/api/v1/sla", soon="1d")["due_soon"] == 0
    assert sla["due_soon"] == critical
    assert api.get("/api/v1/sla", params={"soon": "soon"}, headers=fleet.headers("viewer")).status_code == 400

    url = f"/api/v1/alerts/{requests_alert['id']}"
    acked = api.post(f"{url}/ack", json={"by": "alice"}, headers=fleet.headers("operator"))
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"] == "alice"
    default_by = api.post(f"{url}/ack", headers=fleet.headers("operator")).json()
    assert default_by["acknowledged_by"] == "token test-operator"
    assert get(api, fleet, "/api/v1/alerts", state="acknowledged")["total"] == 1
    assert get(api, fleet, "/api/v1/sla")["open"] == len(alerts)  # acknowledged is still open work
    resolved = api.post(f"{url}/resolve", headers=fleet.headers("operator"))
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved" and resolved.json()["resolved_at"]
    assert requests_alert["id"] not in {a["id"] for a in get(api, fleet, "/api/v1/alerts", limit=1000)["items"]}
    assert [a["id"] for a in get(api, fleet, "/api/v1/alerts", state="resolved")["items"]] == [requests_alert["id"]]
    again = api.post(f"{url}/ack", headers=fleet.headers("operator"))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert api.post("/api/v1/alerts/nope/resolve", headers=fleet.headers("operator")).status_code == 404
    assert api.post(f"{url}/ack", json={"who": "x"}, headers=fleet.headers("operator")).status_code == 422
