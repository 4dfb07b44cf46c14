"""The static (CMDB) source: the documented CSV/JSON/YAML schema, from a file or over HTTP, and bad rows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from keelwatch.config import InventorySettings, InventorySourceSettings, Settings
from keelwatch.inventory.base import InventoryError
from keelwatch.inventory.static import StaticSource
from keelwatch.inventory.sync import InventorySync, list_inventory

DIGEST = "sha256:" + "c" * 64
HEADER = "cluster,namespace,workload_kind,workload,pod,container,image,digest"
ROWS = [
    {"cluster": "dc1", "namespace": "billing", "workload_kind": "VM", "workload": "invoicer", "pod": "vm-17",
     "container": "invoicer", "image": "registry.example.com/billing/invoicer:4.2", "digest": DIGEST,
     "labels": {"team": "billing"}},
    {"cluster": "dc1", "namespace": "billing", "workload_kind": "VM", "workload": "pdf", "pod": "vm-18",
     "container": "pdf", "image": "gotenberg/gotenberg:8", "digest": ""},
]


def static(tmp_path: Path, name: str, text: str, **kw) -> StaticSource:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    return StaticSource(InventorySourceSettings(name="cmdb", kind="static", path=str(path), **kw))


def csv_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
def test_each_format_gives_the_same_records(tmp_path: Path, fmt: str) -> None:
    import yaml

    if fmt == "csv":
        text = HEADER + ",labels\n" + "\n".join(
            ",".join(str(r[k]) for k in HEADER.split(",")) + ("," + "team=billing" if "labels" in r else ",")
            for r in ROWS) + "\n"
    else:
        text = json.dumps(ROWS) if fmt == "json" else yaml.safe_dump(ROWS)
    snapshot = static(tmp_path, f"cmdb.{fmt}", text, team=["label:team"]).snapshot()
    assert snapshot.problems == []
    first, second = snapshot.records
    assert (first.cluster, first.namespace, first.workload_kind, first.workload, first.pod, first.container) == (
        "dc1", "billing", "VM", "invoicer", "vm-17", "invoicer")
    assert (first.image, first.digest, first.team, first.state) == (
        "registry.example.com/billing/invoicer:4.2", DIGEST, "billing", "listed")
    assert second.digest is None and second.team == ""


def test_columns_in_any_order_and_a_default_cluster(tmp_path: Path) -> None:
    text = "image,container,pod,workload,workload_kind,namespace,cluster,digest\nnginx:1.27,web,web-1,web,VM,ns,,\n"
    (record,) = static(tmp_path, "x.csv", text, cluster="fallback").snapshot().records
    assert (record.cluster, record.image, record.container) == ("fallback", "nginx:1.27", "web")


def test_a_missing_column_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"x\.csv: CSV header lacks digest"):
        static(tmp_path, "x.csv", "cluster,namespace,workload_kind,workload,pod,container,image\n").snapshot()


def test_bad_rows_are_skipped_with_their_line_and_bad_cells_marked(tmp_path: Path) -> None:
    text = csv_text([
        "dc1,ns,VM,a,a-1,a,nginx:1.27,",
        "dc1,ns,VM,b,b-1,b,,",  # no image
        "dc1,ns,VM,c,c-1,c,nginx:1.27,sha256:nothex",  # a bad digest: kept, digest ignored
        "dc1,ns,VM,d,d-1,d,Not A Reference,",  # a bad reference: kept, the sync marks it
        "dc1,ns,VM,e,e-1,e,nginx:1.27,,extra",  # a cell too many
    ])
    snapshot = static(tmp_path, "x.csv", text).snapshot()
    assert sorted((p.where, p.message, p.pod) for p in snapshot.problems) == [
        ("x.csv:3", "no image", ("ns", "b-1")),
        ("x.csv:4", "digest 'sha256:nothex' is not a sha256 or sha512 digest; ignored", None),
        ("x.csv:6", "more cells than the header has columns", ("ns", "e-1")),
    ]
    records = {r.pod: r for r in snapshot.records}
    assert sorted(records) == ["a-1", "c-1", "d-1"]
    assert records["c-1"].digest is None and "not a sha256" in (records["c-1"].problem or "")


def test_bad_documents(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="not valid JSON"):
        static(tmp_path, "x.json", "[{").snapshot()
    with pytest.raises(InventoryError, match="expected a list of container objects, got dict"):
        static(tmp_path, "x.yaml", "cluster: a\n").snapshot()
    snapshot = static(tmp_path, "y.json", json.dumps([ROWS[0], "oops", {**ROWS[1], "labels": ["x"]}])).snapshot()
    assert [p.message for p in snapshot.problems] == ["expected an object, got str",
                                                      "labels must be an object of strings"]
    with pytest.raises(InventoryError, match="cannot read"):
        StaticSource(InventorySourceSettings(name="cmdb", kind="static", path=str(tmp_path / "none.csv"))).snapshot()


@pytest.fixture
def http_cmdb() -> Iterator[dict[str, object]]:
    state: dict[str, object] = {"status": 200, "body": b"", "type": "application/json"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = state["body"]
            assert isinstance(body, bytes)
            self.send_response(int(state["status"]))  # type: ignore[call-overload]
            self.send_header("Content-Type", str(state["type"]))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/export"
    yield state
    server.shutdown()
    server.server_close()


def test_over_http_and_a_failing_export_keeps_the_inventory(http_cmdb, store) -> None:  # type: ignore[no-untyped-def]
    http_cmdb["body"] = json.dumps(ROWS).encode()
    source = InventorySourceSettings(name="cmdb", kind="static", url=str(http_cmdb["url"]), resolve=False)
    sync = InventorySync(store, Settings(inventory=InventorySettings(sources=[source])))
    (report,) = sync.sync()
    assert (report.status, report.containers) == ("ok", 2)
    http_cmdb["status"] = 503
    (report,) = sync.sync()
    assert report.status == "failed" and "answered 503" in report.error
    http_cmdb["status"] = 200
    http_cmdb["body"] = b"<html>maintenance</html>"
    http_cmdb["type"] = "text/html"
    (report,) = sync.sync()
    assert report.status == "failed"
    rows = list_inventory(store)
    assert len(rows) == 2
    # resolve = false: the stated digest stands, the tag-only row says why it has none.
    by_pod = {r.values.pod: r.values for r in rows}
    assert by_pod["vm-17"].digest == DIGEST and by_pod["vm-17"].resolution_error is None
    assert by_pod["vm-18"].resolution_error == "unresolved: resolution is off for this source"
    assert by_pod["vm-18"].reference == "docker.io/gotenberg/gotenberg:8"
