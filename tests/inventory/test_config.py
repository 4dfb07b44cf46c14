"""``[[inventory.sources]]`` and ``[inventory]``: the keys other tools write, checked at load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from keelwatch.config import INVENTORY_KINDS, load_settings
from keelwatch.errors import ConfigError
from keelwatch.inventory import SOURCES_BY_KIND


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "k.toml"
    path.write_text(text)
    return path


def test_sources_of_every_kind(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '''
[inventory]
resolve_ttl = "2m"

[[inventory.sources]]
name = "prod-eu"
kind = "kubernetes"
kubeconfig = "kube/prod.yaml"
context = "prod-eu"
cluster = "prod-eu-1"
namespaces = ["shop", "data"]
team = ["label:team", "namespace-label:team"]
environment = ["namespace:*-staging=staging"]

[[inventory.sources]]
name = "build-host"
kind = "docker"
url = "unix:///run/podman/podman.sock"

[[inventory.sources]]
name = "cmdb"
kind = "static"
path = "cmdb.csv"
'''))
    inventory = settings.inventory
    assert inventory.resolve_ttl == timedelta(minutes=2)
    k8s, docker, static = inventory.sources
    assert (k8s.kind, k8s.context, k8s.cluster) == ("kubernetes", "prod-eu", "prod-eu-1")
    assert k8s.namespaces == ["shop", "data"]
    assert k8s.kubeconfig == str(tmp_path / "kube/prod.yaml")  # relative to the config file
    assert docker.url == "unix:///run/podman/podman.sock"
    assert static.path == str(tmp_path / "cmdb.csv")


@pytest.mark.parametrize(("text", "expected"), [
    ('[[inventory.sources]]\nname = "a"\nkind = "nomad"', r"sources\[0\]\.kind: unknown source kind 'nomad'"),
    ('[[inventory.sources]]\nname = "a"\nkind = "static"', r"sources\[0\]: a static source needs exactly one"),
    ('[[inventory.sources]]\nname = "a"\nkind = "static"\nurl = "ftp://x"', r"sources\[0\]\.url: must be an http"),
    ('[[inventory.sources]]\nname = "a"\nkind = "docker"\nnamespace = "x"', r"sources\[0\]\.namespace: unknown key"),
    ('[[inventory.sources]]\nname = "a"\nkind = "docker"\n[[inventory.sources]]\nname = "a"\nkind = "docker"',
     r"sources\[1\]\.name: duplicate source name 'a'"),
    ('[[inventory.sources]]\nname = "a"\nkind = "docker"\nteam = ["labels:team"]',
     r"sources\[0\]\.team\[0\]: not an ownership rule"),
    ('[[inventory.sources]]\nkind = "docker"', r"sources\[0\]: missing required key: name"),
])
def test_bad_sources_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, text))


def test_the_registry_knows_every_configurable_kind() -> None:
    assert sorted(SOURCES_BY_KIND) == sorted(INVENTORY_KINDS)


def test_every_source_module_is_registered() -> None:
    import pkgutil

    import keelwatch.inventory as package

    helpers = {"base", "resolve", "sync"}
    modules = {m.name for m in pkgutil.iter_modules(package.__path__)} - helpers
    assert modules == set(SOURCES_BY_KIND)
