"""The API against its own published spec: schemathesis generates requests for every GET operation
of ``/openapi.json`` (with a valid viewer token, on a world with a running fleet and alerts) and
checks every response against the spec —
status codes, content types, headers and bodies — and that no request makes a server error.

One check is left out: ``positive_data_acceptance`` (a schema-valid request must get 2xx). An
opaque ``cursor`` and a free-form ``since`` (sync id or ISO time) cannot be fully described by a
schema, so a well-formed but meaningless one gets the documented 400 ``bad_cursor`` /
``bad_request``; every other check runs, and tests/api/test_api.py pins those 400s.

One test per backend walks every operation itself (schemathesis' ``from_fixture`` does not run on
pytest 9), each operation a hypothesis run of its own.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .fleet_world import run_fleet
from .world import World

pytestmark = pytest.mark.datasets

EXAMPLES = 30


def test_get_operations_conform_to_the_published_spec(world: World) -> None:
    from keelwatch.api import create_app
    from keelwatch.config import Settings

    # A running fleet on the world's images: containers, snapshots and alerts for the fleet routes.
    run_fleet(world.store, world.digests["debian12-python"], world.digests["node-app"])
    app = create_app(world.store, Settings())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = world.headers("viewer")
    operations = [result.ok() for result in schema.get_all_operations()]
    gets = [op for op in operations if op.method.upper() == "GET"]
    assert {op.path for op in gets} >= {"/healthz", "/readyz", "/metrics", "/api/v1/images", "/api/v1/images/{digest}",
                                        "/api/v1/images/{digest}/findings", "/api/v1/vulnerabilities",
                                        "/api/v1/vulnerabilities/{vuln_id}", "/api/v1/feeds", "/api/v1/events",
                                        "/api/v1/vex/statements", "/api/v1/vex/acceptances", "/api/v1/me",
                                        "/api/v1/containers", "/api/v1/containers/{key}", "/api/v1/workloads",
                                        "/api/v1/workloads/{cluster}/{namespace}/{kind}/{name}",
                                        "/api/v1/namespaces", "/api/v1/clusters", "/api/v1/posture",
                                        "/api/v1/posture/top", "/api/v1/posture/plan", "/api/v1/posture/freshness",
                                        "/api/v1/posture/history", "/api/v1/posture/trend", "/api/v1/alerts",
                                        "/api/v1/alerts/{alert_id}", "/api/v1/sla", "/api/v1/validation"}
    failures: list[str] = []
    for operation in gets:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # every operation runs; the failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
