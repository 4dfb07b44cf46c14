"""The PHP cataloger: which files it reads, what it finds in a real Composer 2 installed.json (and
the Composer 1 list form), and files it cannot read as errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.php import PhpCataloger
from keelwatch.images.layers import TarEntry

INSTALLED = (Path(__file__).parent / "fixtures" / "php" / "vendor" / "composer" / "installed.json").read_bytes()


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "var/www/app/vendor/composer/installed.json"):
    return list(PhpCataloger().parse(CatalogFile(path, content), NoView()))


def test_selection_is_installed_json_in_a_composer_directory():
    c = PhpCataloger()
    paths = [
        "var/www/app/vendor/composer/installed.json",
        "app/lib/composer/installed.json",  # "vendor-dir": "lib"
        "vendor/composer/installed.json",
        "composer/installed.json",
        "var/www/app/vendor/composer/installed.php",  # same data as PHP code: the JSON is enough
        "var/www/app/composer.lock",  # what was resolved, not what is installed
        "var/www/app/composer.json",
        "opt/tool/installed.json",  # another tool's file of the same name
        "opt/mycomposer/installed.json",
    ]
    wanted = {p for p in paths if c.wants(TarEntry(p, "file", 0o644, 1000)) is Want.PRIMARY}
    assert wanted == set(paths[:4])
    assert c.wants(TarEntry(paths[0], "symlink", 0o777, 0, linkname="x")) is Want.NO
    assert c.uses_companions is False


def test_composer_2_installed_json():
    found = [(p.ecosystem, p.name, p.version, p.purl, p.licenses, p.kind) for p in parse(INSTALLED)]
    # psr/container is a dev package (dev-package-names), but it is installed: reported, as Trivy does.
    assert found == [
        ("Packagist", "psr/container", "1.1.2", "pkg:composer/psr/container@1.1.2", ("MIT",), "lang"),
        ("Packagist", "psr/log", "1.1.4", "pkg:composer/psr/log@1.1.4", ("MIT",), "lang"),
    ]


def test_composer_1_list_form():
    packages = json.loads(INSTALLED)["packages"]
    packages[1] = {**packages[1], "version": "v1.1.4", "license": "MIT"}  # a v-tag and a string license
    found = [(p.name, p.version, p.purl, p.licenses) for p in parse(json.dumps(packages).encode())]
    assert found == [
        ("psr/container", "1.1.2", "pkg:composer/psr/container@1.1.2", ("MIT",)),
        ("psr/log", "v1.1.4", "pkg:composer/psr/log@v1.1.4", ("MIT",)),  # the version as Composer wrote it
    ]
    assert parse(b"[]") == [] and parse(b'{"packages": [], "dev": false, "dev-package-names": []}') == []


@pytest.mark.parametrize("content", [
    b"",
    b"{not json",
    b'{"dev": true}',
    b'{"packages": {"psr/log": "1.1.4"}}',
    b'[{"name": "psr/log"}]',
    b'[{"name": "psr/log", "version": 1.1}]',
    b'"just a string"',
])
def test_unreadable_installed_json_is_an_error(content):
    with pytest.raises(ValueError):
        parse(content)
