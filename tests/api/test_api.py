"""The REST API on real data, SQLite and PostgreSQL: roles on every route, lists, suppressions, writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keelwatch.store import tokens as stored_tokens
from keelwatch.store.tables import ApiTokenRow

from .world import ACCEPTED, OPEN, World

pytestmark = pytest.mark.datasets


def _api_routes(client: Any) -> list[tuple[str, str]]:
    """Every /api/v1 operation the published spec lists, path parameters filled in."""
    out = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/api/v1"):
            for method in item:
                out.append((method.upper(), path.replace("{digest}", "sha256:00").replace("{vuln_id}", "CVE-1")
                            .replace("{acceptance_id}", "1").replace("{token_id}", "1")))
    return out


def test_every_api_route_needs_a_token(client: Any, world: World) -> None:
    routes = _api_routes(client)
    assert len(routes) >= 15
    for method, path in routes:
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"
        wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer kw_not-a-token"})
        assert wrong.status_code == 401, (method, path)
    # Health and metrics stay open, for probes and Prometheus.
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_roles_are_ordered_viewer_operator_admin(client: Any, world: World) -> None:
    writes = [("POST", "/api/v1/vex/acceptances", {"vulnerability": OPEN, "image": "*", "until": "2099-01-01",
                                                   "reason": "test"}),
              ("POST", "/api/v1/vex/statements", {"statements": []}),
              ("POST", "/api/v1/scans", {"reference": world.digests["node-app"]}),
              ("DELETE", "/api/v1/vex/acceptances/1", None)]
    for method, path, body in writes:
        response = client.request(method, path, json=body, headers=world.headers("viewer"))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "forbidden"
    for method, path in (("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/1")):
        for role in ("viewer", "operator"):
            response = client.request(method, path, json={"role": "viewer"}, headers=world.headers(role))
            assert response.status_code == 403, (method, path, role)
    assert client.get("/api/v1/me", headers=world.headers("operator")).json()["role"] == "operator"
    assert client.get("/api/v1/tokens", headers=world.headers("admin")).status_code == 200


def test_a_revoked_token_is_refused_from_the_next_request(client: Any, world: World) -> None:
    created = client.post("/api/v1/tokens", json={"role": "viewer", "name": "ci"}, headers=world.headers("admin"))
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["info"]["id"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/images", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=world.headers("admin")).status_code == 204
    response = client.get("/api/v1/images", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["message"]
    # Revoked through the library (the CLI's path) as well.
    with world.store.session() as session:
        stored_tokens.revoke_token(session, "test-operator")
    assert client.get("/api/v1/images", headers=world.headers("operator")).status_code == 401


def test_tokens_are_stored_hashed(world: World) -> None:
    with world.store.session(write=False) as session:
        rows = session.query(ApiTokenRow).all()
    stored = {value for r in rows for value in (r.token_hash, r.prefix, r.name)}
    for token in world.tokens.values():
        assert token not in stored
        assert stored_tokens.hash_token(token) in stored
    with world.store.session(write=False) as session:
        assert stored_tokens.check_token(session, world.tokens["viewer"]).role == "viewer"  # type: ignore[union-attr]
        assert stored_tokens.check_token(session, world.tokens["viewer"] + "x") is None


def test_images_list_counts_filters_and_cursor(client: Any, world: World) -> None:
    h = world.headers("viewer")
    body = client.get("/api/v1/images", headers=h).json()
    assert body["total"] == 2 and body["next_cursor"] is None
    by_digest = {i["digest"]: i for i in body["items"]}
    python = by_digest[world.digests["debian12-python"]]
    with world.store.session(write=False) as session:
        from keelwatch.store.findings import image_scans

        scans = image_scans(session)
    assert python["counts"] == scans[python["digest"]].counts and python["total"] == scans[python["digest"]].total
    assert python["total"] > 20 and python["scanned"]
    # Most severe first by default: by the worst severity present, then by how many.
    labels = ("critical", "high", "medium", "low", "unknown")
    assert body["items"] == sorted(body["items"], key=lambda i: [-i["counts"][label] for label in labels])

    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/images", params={"limit": 1, "sort": "name", **({"cursor": cursor} if cursor
                                                                                   else {})}, headers=h).json()
        seen += [i["digest"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(by_digest) and len(seen) == 2
    assert seen == [i["digest"] for i in sorted(body["items"], key=lambda i: (i["name"], i["digest"]))]

    assert [i["digest"] for i in client.get("/api/v1/images", params={"q": "node-app"}, headers=h).json()["items"]] \
        == [world.digests["node-app"]]
    high = client.get("/api/v1/images", params={"min_severity": "high"}, headers=h).json()["items"]
    assert python["digest"] in {i["digest"] for i in high}
    bad = client.get("/api/v1/images", params={"cursor": "garbage!"}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_cursor"
    other_sort = client.get("/api/v1/images", params={"limit": 1, "sort": "name"}, headers=h).json()["next_cursor"]
    assert client.get("/api/v1/images", params={"cursor": other_sort, "sort": "-total"}, headers=h).status_code == 400
    invalid = client.get("/api/v1/images", params={"sort": "nonsense"}, headers=h)
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"


def test_image_findings_keep_suppressed_ones_visible(client: Any, world: World) -> None:
    h = world.headers("viewer")
    digest = world.digests["debian12-python"]
    doc = client.get(f"/api/v1/images/{digest}", headers=h).json()
    suppressed = [f for f in doc["findings"] if f["suppressed"]]
    assert [f["aliases"][0] for f in suppressed] == [ACCEPTED]
    assert suppressed[0]["suppression"]["kind"] == "acceptance"
    assert doc["summary"]["suppressed"] == 1 and doc["summary"]["total"] == len(doc["findings"]) - 1
    page = client.get(f"/api/v1/images/{digest}/findings", params={"suppressed": "true"}, headers=h).json()
    assert [f["key"] for f in page["items"]] == [suppressed[0]["key"]]
    requests_only = client.get(f"/api/v1/images/{digest}/findings", params={"package": "urllib3", "limit": 2},
                               headers=h).json()
    assert requests_only["total"] >= 2 and len(requests_only["items"]) == 2 and requests_only["next_cursor"]
    assert all(f["package"]["name"] == "urllib3" for f in requests_only["items"])
    assert client.get("/api/v1/images/sha256:nope", headers=h).status_code == 404
    assert client.get("/api/v1/images/sha256:nope/findings", headers=h).json()["error"] == "not_found"


def test_where_does_a_cve_occur(client: Any, world: World) -> None:
    h = world.headers("viewer")
    doc = client.get(f"/api/v1/vulnerabilities/{OPEN}", headers=h).json()
    assert [i["digest"] for i in doc["images"]] == [world.digests["debian12-python"]]
    assert doc["affected_images"] == 1 and doc["images"][0]["findings"][0]["package"]["name"] == "idna"
    accepted = client.get(f"/api/v1/vulnerabilities/{ACCEPTED}", headers=h).json()
    assert accepted["image_count"] == 1 and accepted["affected_images"] == 0 and accepted["images"][0]["suppressed"]
    # By another alias of the same finding: the same images.
    other = accepted["images"][0]["findings"][0]["id"]
    assert client.get(f"/api/v1/vulnerabilities/{other}", headers=h).json()["image_count"] == 1
    assert client.get("/api/v1/vulnerabilities/CVE-1999-0001", headers=h).status_code == 404
    listed = client.get("/api/v1/vulnerabilities", params={"q": OPEN}, headers=h).json()["items"]
    assert [v["images"] for v in listed] == [1]


def test_feeds_and_events(client: Any, world: World) -> None:
    h = world.headers("viewer")
    feeds = {f["name"]: f for f in client.get("/api/v1/feeds", headers=h).json()["items"]}
    assert set(feeds) == {"osv-pypi", "osv-npm", "nvd", "kev"}
    assert all(f["status"] == "ok" and 0 <= f["age_seconds"] < 3600 for f in feeds.values())
    events = client.get("/api/v1/events", params={"limit": 1000}, headers=h).json()
    assert events["total"] > 20 and {e["event"] for e in events["items"]} == {"opened"}
    latest = feeds["kev"]["last_sync"]
    # The scans read the last sync: their events carry it, so "after the sync before it" is all of them.
    assert {e["sync"] for e in events["items"]} == {latest}
    assert client.get("/api/v1/events", params={"since": latest - 1}, headers=h).json()["total"] == events["total"]
    assert client.get("/api/v1/events", params={"since": latest}, headers=h).json()["total"] == 0
    assert client.get("/api/v1/events", params={"since": "2999-01-01T00:00:00Z"}, headers=h).json()["total"] == 0
    assert client.get("/api/v1/events", params={"since": "yesterday"}, headers=h).status_code == 400
    one = client.get("/api/v1/events", params={"limit": 5}, headers=h).json()
    two = client.get("/api/v1/events", params={"limit": 5, "cursor": one["next_cursor"]}, headers=h).json()
    assert [e["event_id"] for e in one["items"] + two["items"]] == [e["event_id"] for e in events["items"][:10]]


def test_operators_import_vex_accept_and_scan(client: Any, world: World) -> None:
    h = world.headers("operator")
    digest = world.digests["debian12-python"]
    vex = {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.test/vex/1", "author": "tests",
           "timestamp": "2026-01-01T00:00:00Z", "version": 1,
           "statements": [{"vulnerability": {"name": OPEN}, "products": [{"@id": digest}], "status": "not_affected",
                           "justification": "vulnerable_code_not_in_execute_path"}]}
    imported = client.post("/api/v1/vex/statements", json=vex, headers=h)
    assert imported.status_code == 201, imported.text
    assert imported.json()["statements"] == 1
    doc = client.get(f"/api/v1/vulnerabilities/{OPEN}", headers=h).json()
    assert doc["affected_images"] == 0 and doc["images"][0]["findings"][0]["suppression"]["kind"] == "vex"
    statements = client.get("/api/v1/vex/statements", headers=world.headers("viewer")).json()["items"]
    assert [s["vulnerability"] for s in statements] == [OPEN]
    bad = client.post("/api/v1/vex/statements", json={"nothing": 1}, headers=h)
    assert bad.status_code == 400 and "OpenVEX" in bad.json()["message"]

    created = client.post("/api/v1/vex/acceptances", json={"vulnerability": "CVE-2023-43804", "image": "*",
                                                           "until": "2099-01-31", "reason": "tracked"}, headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["active"] and created.json()["created_by"].startswith("token test-operator")
    past = client.post("/api/v1/vex/acceptances", json={"vulnerability": "CVE-2023-43804", "image": "*",
                                                        "until": "2000-01-01", "reason": "x"}, headers=h)
    assert past.status_code == 400
    listed = client.get("/api/v1/vex/acceptances", headers=h).json()["items"]
    assert {a["vulnerability"] for a in listed} == {ACCEPTED, "CVE-2023-43804"}
    assert client.delete(f"/api/v1/vex/acceptances/{created.json()['id']}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/vex/acceptances/{created.json()['id']}", headers=h).status_code == 404

    again = client.post("/api/v1/scans", json={"reference": digest}, headers=h)
    assert again.status_code == 201, again.text
    assert (again.json()["opened"], again.json()["closed"]) == (0, 0)
    assert client.post("/api/v1/scans", json={"reference": "sha256:" + "0" * 64}, headers=h).status_code == 404


def test_scans_of_local_files_are_off_unless_allowed(world: World, images_dir: Any) -> None:
    from fastapi.testclient import TestClient

    from keelwatch.api import ApiOptions, create_app
    from keelwatch.config import Settings

    archive = f"oci-archive:{images_dir / 'debian12-python.oci.tar'}"
    strict = TestClient(create_app(world.store, Settings()))
    refused = strict.post("/api/v1/scans", json={"reference": archive}, headers=world.headers("operator"))
    assert refused.status_code == 400 and "registry references only" in refused.json()["message"]
    trusting = TestClient(create_app(world.store, Settings(), options=ApiOptions(allow_local_sources=True)))
    done = trusting.post("/api/v1/scans", json={"reference": archive}, headers=world.headers("operator"))
    assert done.status_code == 201, done.text
    assert done.json()["image"]["digest"] == world.digests["debian12-python"] and done.json()["reused_catalog"]


def test_metrics_health_and_openapi(client: Any, world: World) -> None:
    client.get("/api/v1/images", headers=world.headers("viewer"))
    client.get(f"/api/v1/images/{world.digests['node-app']}", headers=world.headers("viewer"))
    text = client.get("/metrics").text
    assert 'keelwatch_feed_age_seconds{feed="osv-pypi",kind="osv"}' in text
    assert 'keelwatch_findings{severity="high"}' in text
    assert 'route="/api/v1/images/{digest}"' in text and "keelwatch_http_request_duration_seconds_bucket" in text
    assert world.digests["node-app"] not in text  # route templates, never raw paths
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"store": "ok"}}
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert all(op.get("security") for path, item in spec["paths"].items() if path.startswith("/api/v1")
               for op in item.values())
    json.dumps(spec)


def test_readyz_fails_when_a_check_fails(world: World) -> None:
    from fastapi.testclient import TestClient

    from keelwatch.api import ApiOptions, create_app
    from keelwatch.config import Settings

    app = create_app(world.store, Settings(), options=ApiOptions(readiness={"loops": lambda: "feed sync stalled"}))
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["loops"] == "feed sync stalled"
