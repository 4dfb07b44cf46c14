"""The whole path as an operator runs it: feeds of 2022, a scan, a static inventory, today's feeds,
and the alerts the new disclosures raise reaching a real webhook receiver — CLI processes only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.test_db import as_json, run  # tests/ is on sys.path

from .receiver import running_receiver

pytestmark = pytest.mark.datasets


def test_new_disclosures_on_a_running_workload_reach_the_webhook(store: object, store_url: str,
                                                                  feeds_dir: Path,
                                                                  images_dir: Path, tmp_path: Path) -> None:
    pypi = tmp_path / "PyPI.zip"
    pypi.write_bytes((feeds_dir / "osv/PyPI.before-2023-01-01.zip").read_bytes())
    image = f"oci-archive:{images_dir / 'debian12-python.oci.tar'}"
    with running_receiver() as receiver:
        config = tmp_path / "keelwatch.toml"
        inventory = tmp_path / "inventory.csv"
        config.write_text(f'[store]\nurl = "{store_url}"\n\n'
                          f'[[feeds]]\nname = "osv-pypi"\nkind = "osv"\nurl = "{pypi}"\n\n'
                          f'[[inventory.sources]]\nname = "cmdb"\nkind = "static"\npath = "{inventory}"\n\n'
                          f'[[alerts.channels]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\n'
                          f'secret = "{receiver.secret}"\n')
        assert run(config, "db", "update").returncode == 0
        digest = as_json(run(config, "scan", image, "--format", "json"))["image"]["digest"]
        inventory.write_text("cluster,namespace,workload_kind,workload,pod,container,image,digest\n"
                             f"eu-1,shop,Deployment,checkout,checkout-1,app,registry.example/shop:1.4,{digest}\n")
        synced = run(config, "inventory", "sync")
        assert synced.returncode == 0, synced.stderr
        assert run(config, "alerts", "deliver").returncode == 0
        before = {r["body"]["advisory"] for r in receiver.received}
        assert before and all(r["body"]["event"] == "opened" for r in receiver.received)
        first_batch = len(receiver.received)

        pypi.write_bytes((feeds_dir / "osv/PyPI.zip").read_bytes())
        update = run(config, "db", "update")
        assert update.returncode == 0 and "alerts:" in update.stderr
        delivered = run(config, "alerts", "deliver", "--format", "json")
        assert json.loads(delivered.stdout)["failed"] == 0
        new = [r["body"] for r in receiver.received[first_batch:]]
        assert new and all(b["event"] == "opened" for b in new)
        advisories = [b["advisory"] for b in new]
        assert len(advisories) == len(set(advisories)) and not set(advisories) & before  # once each, only new
        alerts = {a["advisory"]: a for a in as_json(run(config, "alerts", "list", "--format", "json"))}
        paging = {a for a, row in alerts.items() if row["notify"] == "immediate"}
        assert paging == before | set(advisories)
        assert all(b["containers"][0]["workload"] == "checkout" for b in new)
        sla = as_json(run(config, "sla", "--format", "json"))
        assert sum(r["open"] for r in sla) == len(alerts)
        assert run(config, "alerts", "deliver").returncode == 0 and len(receiver.received) == first_batch + len(new)
