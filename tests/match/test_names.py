"""Name normalisation per ecosystem, and the matcher registry."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import keelwatch.match as match_package
from keelwatch.match import MATCHERS, normalise_name
from keelwatch.match.distro import DistroMatcher
from keelwatch.match.language import LanguageMatcher
from keelwatch.model import Package


@pytest.mark.parametrize(("ecosystem", "name", "normal"), [
    # PEP 503: case and runs of -_. fold
    ("PyPI", "PyYAML", "pyyaml"),
    ("PyPI", "zope.interface", "zope-interface"),
    ("PyPI", "Foo__Bar-.baz", "foo-bar-baz"),
    # npm: case-sensitive as published, scope kept
    ("npm", "JSONStream", "JSONStream"),
    ("npm", "@babel/core", "@babel/core"),
    # Maven: group:artifact; a purl-style group/artifact is rewritten
    ("Maven", "org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j:log4j-core"),
    ("Maven", "org.yaml/snakeyaml", "org.yaml:snakeyaml"),
    # Go: module paths as they are (/v2 is another module), the toolchain is stdlib
    ("Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"),
    ("Go", "github.com/gdamore/tcell/v2", "github.com/gdamore/tcell/v2"),
    ("Go", "stdlib", "stdlib"),
    # distros: as the distro writes the (source) name
    ("Debian:11", "openssl", "openssl"),
    ("Alpine:v3.19", "py3-pip", "py3-pip"),
    ("Red Hat:9", "NetworkManager", "NetworkManager"),
    # crates.io treats case and -/_ as one name
    ("crates.io", "Serde_JSON", "serde-json"),
    ("Packagist", "Symfony/HTTP-Kernel", "symfony/http-kernel"),
    ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
    ("RubyGems", "Rack", "Rack"),
    ("Hex", "Plug", "plug"),
    # surrounding space never counts
    ("PyPI", " requests ", "requests"),
])
def test_normalise_name(ecosystem, name, normal):
    assert normalise_name(ecosystem, name) == normal


def test_every_matcher_module_is_registered():
    # Not matchers: the core, and the scan / re-match / VEX logic built on it.
    helpers = {"base", "names", "matcher", "affected", "severity", "index", "diff", "scan", "rematch", "vex"}
    modules = {m.name for m in pkgutil.iter_modules(match_package.__path__)} - helpers
    assert modules == {m.name for m in MATCHERS}
    for name in modules:
        importlib.import_module(f"keelwatch.match.{name}")


def test_distro_packages_go_to_the_distro_matcher_first():
    os_package = Package(ecosystem="Debian:12", name="python3-yaml", version="6.0-3", kind="os")
    lang_package = Package(ecosystem="PyPI", name="PyYAML", version="6.0", kind="lang")
    chosen = [next(m for m in MATCHERS if m.handles(p)) for p in (os_package, lang_package)]
    assert [type(m) for m in chosen] == [DistroMatcher, LanguageMatcher]


def test_registering_a_matcher_twice_fails():
    with pytest.raises(RuntimeError, match="registered twice: distro"):
        match_package._check((DistroMatcher(), DistroMatcher()))
