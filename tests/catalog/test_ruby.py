"""The Ruby cataloger: which files it reads, what it finds in real installed gemspecs, and
gemspecs it cannot read as errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.ruby import RubyCataloger, parse_gemspec
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "ruby"


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "usr/lib/ruby/gems/3.1.0/specifications/x.gemspec"):
    return list(RubyCataloger().parse(CatalogFile(path, content), NoView()))


def test_selection_is_gemspecs_in_specifications_directories():
    c = RubyCataloger()
    paths = [
        "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
        "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
        "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
        "usr/local/bundle/specifications/rails-7.1.3.gemspec",
        "app/vendor/bundle/ruby/3.2.0/specifications/nokogiri-1.16.0-x86_64-linux.gemspec",
        # A gem's own source gemspec (hand-written Ruby, may compute its version): not installed metadata.
        "usr/lib/ruby/gems/3.1.0/gems/rake-13.0.6/rake.gemspec",
        "app/myapp.gemspec",
        "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec.orig",
        "usr/lib/ruby/gems/3.1.0/cache/rake-13.0.6.gem",
        "specifications.gemspec",
    ]
    wanted = {p for p in paths if c.wants(TarEntry(p, "file", 0o644, 2000)) is Want.PRIMARY}
    assert wanted == set(paths[:5])
    assert c.wants(TarEntry(paths[0], "symlink", 0o777, 0, linkname="x")) is Want.NO
    assert c.wants(TarEntry(paths[0], "hardlink", 0o644, 0, linkname="x")) is Want.PRIMARY
    assert c.uses_companions is False


@pytest.mark.parametrize(("fixture", "name", "version", "licenses"), [
    ("rack-2.2.22.gemspec", "rack", "2.2.22", ("MIT",)),
    ("rake-13.0.6.gemspec", "rake", "13.0.6", ("MIT",)),
    ("openssl-3.0.1.gemspec", "openssl", "3.0.1", ("Ruby",)),
    ("json-2.6.1.gemspec", "json", "2.6.1", ("Ruby",)),  # NULs in the stub line do not matter
])
def test_real_gemspecs(fixture, name, version, licenses):
    [package] = parse((FIXTURES / fixture).read_bytes())
    assert (package.ecosystem, package.name, package.version, package.kind) == ("RubyGems", name, version, "lang")
    assert package.purl == f"pkg:gem/{name}@{version}"
    assert package.licenses == licenses


def test_other_literal_forms():
    # Older RubyGems wrote %q{} strings; any block variable name; a single license; escapes.
    old = b"""Gem::Specification.new do |spec|
  spec.name = %q{rails}
  spec.version = '2.3.18'
  spec.license = %q<MIT>
end
"""
    assert parse_gemspec(old.decode()) == ("rails", "2.3.18", ("MIT",))
    multi = 'Gem::Specification.new do |s|\n  s.name = "a\\"b".freeze\n  s.version = "1.0.0.pre" # comment\n' \
            '  s.licenses = ["Ruby".freeze, "BSD-2-Clause".freeze]\nend\n'
    assert parse_gemspec(multi) == ('a"b', "1.0.0.pre", ("Ruby", "BSD-2-Clause"))


@pytest.mark.parametrize("text", [
    b"",
    b"# -*- encoding: utf-8 -*-\n",  # no specification block
    b'Gem::Specification.new do |s|\n  s.name = "x"\nend\n',  # no version
    b'Gem::Specification.new do |s|\n  s.name = "x"\n  s.version = Foo::VERSION\nend\n',  # computed: not guessed
    b'Gem::Specification.new do |s|\n  s.version = "1.0"\nend\n',  # no name
])
def test_unreadable_gemspecs_are_errors(text):
    with pytest.raises(ValueError):
        parse(text)
