"""The npm cataloger: which files it reads, what it finds in them, and agreement with Trivy."""

import json
from pathlib import Path

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.npm import NpmCataloger, npm_purl, parse_lock
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "npm"


def entry(path):
    return TarEntry(path=path, type="file", mode=0o644, size=10)


class View:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def test_selection():
    c = NpmCataloger()
    expected = {
        "app/node_modules/express/package.json": Want.PRIMARY,
        "app/node_modules/send/node_modules/ms/package.json": Want.PRIMARY,  # nested install
        "app/node_modules/@isaacs/cliui/package.json": Want.PRIMARY,  # scoped
        "usr/lib/node_modules/npm/package.json": Want.PRIMARY,  # a global install
        "app/package.json": Want.PRIMARY,  # the application itself: Trivy lists it too
        "package.json": Want.PRIMARY,  # an app at the image root
        "app/node_modules/uuid/dist/esm-browser/package.json": Want.PRIMARY,  # read, then found not a package
        # Lock files say what an install would hold; the installed tree is read instead (see npm.py).
        "app/package-lock.json": Want.NO,
        "app/node_modules/.package-lock.json": Want.NO,
        "app/npm-shrinkwrap.json": Want.NO,
        "app/yarn.lock": Want.NO,
        "app/node_modules/express/index.js": Want.NO,
        "app/node_modules/express/package.json.bak": Want.NO,
        "app/my-package.json": Want.NO,
    }
    assert {p: c.wants(entry(p)) for p in expected} == expected


def parse(path, content):
    return list(NpmCataloger().parse(CatalogFile(path, content), View()))


def test_content():
    [ms] = parse("app/node_modules/ms/package.json", (FIXTURES / "ms-2.1.3.package.json").read_bytes())
    assert (ms.ecosystem, ms.name, ms.version, ms.purl, ms.licenses, ms.kind) == (
        "npm", "ms", "2.1.3", "pkg:npm/ms@2.1.3", ("MIT",), "lang")
    [cliui] = parse("app/node_modules/@isaacs/cliui/package.json",
                    (FIXTURES / "isaacs-cliui-8.0.2.package.json").read_bytes())
    assert (cliui.name, cliui.version, cliui.purl, cliui.licenses) == (
        "@isaacs/cliui", "8.0.2", "pkg:npm/%40isaacs/cliui@8.0.2", ("ISC",))
    # Dependencies are ranges, not packages: only the manifest's own package is reported.
    assert len(parse("app/package.json", (FIXTURES / "lock-fixture.package.json").read_bytes())) == 1


def test_old_style_licenses_list():
    [p] = parse("node_modules/json-schema/package.json", (FIXTURES / "json-schema-0.2.3.package.json").read_bytes())
    assert (p.name, p.version, p.licenses) == ("json-schema", "0.2.3", ("AFLv2.1", "BSD"))
    [q] = parse("node_modules/x/package.json", b'{"name": "x", "version": "1.0.0", "license": {"type": "MIT"}}')
    assert q.licenses == ("MIT",)


@pytest.mark.parametrize("content", [
    b'{"type": "module"}',  # a module-type marker in a package's subdirectory
    b'{"name": "workspace-root", "private": true, "workspaces": ["packages/*"]}',
    b'{"name": "x", "version": 1}',  # not a version string
    b'{"name": "", "version": "1.0.0"}',
    b'["not", "an", "object"]',
])
def test_manifests_that_are_not_packages_yield_nothing(content):
    assert parse("app/node_modules/x/sub/package.json", content) == []


def test_broken_json_is_an_error():
    with pytest.raises(ValueError, match="not JSON"):
        parse("app/node_modules/x/package.json", b'{"name": "x", "version": ')


def test_scoped_purl_encodes_the_at():
    assert npm_purl("@babel/core", "7.24.0") == "pkg:npm/%40babel/core@7.24.0"
    assert npm_purl("lodash", "4.17.15") == "pkg:npm/lodash@4.17.15"


# --- package-lock.json, read by parse_lock (not selected from images: see npm.py) --------------

LOCK_PACKAGES = [
    ("node_modules/@types/ms", "@types/ms", "0.7.34"),
    ("node_modules/debug", "debug", "2.6.9"),
    ("node_modules/debug/node_modules/ms", "ms", "2.0.0"),  # nested: another version beside the top one
    ("node_modules/ms", "ms", "2.1.3"),
]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_lockfile_versions(version):
    content = (FIXTURES / f"package-lock.v{version}.json").read_bytes()
    assert json.loads(content)["lockfileVersion"] == version
    found = parse_lock(content)
    assert [(p.name, p.version) for p in found] == [(name, v) for _, name, v in LOCK_PACKAGES]
    assert {p.purl for p in found} >= {"pkg:npm/%40types/ms@0.7.34", "pkg:npm/ms@2.0.0"}
    # The dev dependency is left out unless asked for, as Trivy does by default.
    with_dev = parse_lock(content, include_dev=True)
    assert sorted((p.name, p.version) for p in with_dev) == sorted(
        [(name, v) for _, name, v in LOCK_PACKAGES] + [("inherits", "2.0.4")])


def test_lock_skips_links_and_non_registry_sources():
    lock = {"lockfileVersion": 3, "packages": {
        "": {"name": "app", "version": "1.0.0"},
        "packages/lib": {"name": "lib", "version": "0.1.0"},  # a workspace's source
        "node_modules/lib": {"resolved": "packages/lib", "link": True},
        "node_modules/local": {"version": "file:../local"},
        "node_modules/string-width-cjs": {"name": "string-width", "version": "4.2.3"},  # an npm: alias
    }}
    assert [(p.name, p.version) for p in parse_lock(json.dumps(lock).encode())] == [("string-width", "4.2.3")]
    v1 = {"lockfileVersion": 1, "dependencies": {
        "string-width-cjs": {"version": "npm:string-width@4.2.3"},
        "from-git": {"version": "git+https://github.com/a/b.git#0123"},
    }}
    assert [(p.name, p.version) for p in parse_lock(json.dumps(v1).encode())] == [("string-width", "4.2.3")]


# --- agreement with Trivy on the shared image -----------------------------------------------------

# (name, version) → reason, for npm packages Trivy lists that keelwatch does not, and back.
TRIVY_ONLY: dict[tuple[str, str], str] = {}
KEELWATCH_ONLY: dict[tuple[str, str], str] = {}


def test_agrees_with_trivy_on_node_app(images_dir):
    opened = open_image(f"oci-archive:{images_dir / 'node-app.oci.tar'}")
    try:
        result = catalog_image(opened, CATALOGERS)
    finally:
        opened.close()
    ours = [p for p in result.packages if p.ecosystem == "npm"]
    assert all(p.found_by == "npm" for p in ours)
    sbom = json.loads((images_dir / "node-app.trivy.cdx.json").read_text())
    components = [c for c in sbom["components"] if c.get("purl", "").startswith("pkg:npm/")]
    theirs = {(f"{c['group']}/{c['name']}" if c.get("group") else c["name"], c["version"]) for c in components}
    found = {(p.name, p.version) for p in ours}
    assert {k: TRIVY_ONLY.get(k, "unexplained") for k in theirs - found} == TRIVY_ONLY
    assert {k: KEELWATCH_ONLY.get(k, "unexplained") for k in found - theirs} == KEELWATCH_ONLY
    # One package per installed package.json, where Trivy found it: nothing counted twice.
    trivy_paths = {(c["name"], c["version"]): {p["value"] for p in c.get("properties", [])
                                               if p["name"] == "aquasecurity:trivy:FilePath"} for c in components}
    assert sorted((p.name, p.version, p.location) for p in ours) == sorted(
        (name, version, path) for (name, version), paths in trivy_paths.items() for path in paths)
    assert not [w for w in result.warnings if w.cataloger == "npm"]
