"""Ruby gems: the installed specifications, ``…/specifications/[default/]NAME-VERSION.gemspec``.

RubyGems writes one of these for every installed gem (``gem install``, Bundler's
``vendor/bundle/ruby/X/specifications``, Debian's ``rubygems-integration/all/specifications``,
Ruby's default gems under ``specifications/default``) with ``Gem::Specification#to_ruby``: Ruby
source, but machine-written in a fixed shape::

    Gem::Specification.new do |s|
      s.name = "rack".freeze
      s.version = "2.2.22"
      s.licenses = ["MIT".freeze]

So, like Trivy and Syft, we read those assignments with patterns rather than run Ruby. Values
are string literals (``"…"``, ``'…'`` or the ``%q{…}`` older RubyGems wrote), optionally
``.freeze``d. A spec whose name or version is not such a literal is reported as unreadable,
never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import HARDLINK, REGULAR, TarEntry
from keelwatch.model import Package

SPECIFICATIONS = "/specifications/"
SUFFIX = ".gemspec"

_NEW = re.compile(r"Gem::Specification\.new\s+do\s*\|\s*(\w+)\s*\|")
_STRING = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|%q\{([^}]*)\}|%q<([^>]*)>)(?:\.freeze)?"""
_STRING_RE = re.compile(_STRING)


class RubyCataloger:
    name = "ruby"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        # Cheapest test first: wants() runs on every file of every layer.
        if (entry.path.endswith(SUFFIX) and SPECIFICATIONS in "/" + entry.path
                and entry.type in (REGULAR, HARDLINK)):
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        # Default gems' stub lines may hold NULs (several extension paths): decode leniently.
        text = file.content.decode("utf-8", "replace")
        name, version, licenses = parse_gemspec(text)
        yield Package(ecosystem="RubyGems", name=name, version=version, kind="lang",
                      purl=purl("gem", name, version), licenses=licenses)


def parse_gemspec(text: str) -> tuple[str, str, tuple[str, ...]]:
    """(name, version, licenses) of a RubyGems-written gemspec; ValueError when they are not there."""
    new = _NEW.search(text)
    if new is None:
        raise ValueError("no `Gem::Specification.new do |s|` block")
    var = re.escape(new.group(1))
    body = text[new.end():]
    name = _assigned(body, var, "name")
    version = _assigned(body, var, "version")
    if not name or not version:
        missing = "name" if not name else "version"
        raise ValueError(f"gemspec {missing} is not a string literal")
    licenses: tuple[str, ...] = ()
    many = re.search(rf"^\s*{var}\.licenses\s*=\s*\[(.*)\]", body, re.MULTILINE)
    if many:
        licenses = tuple(_literal(m) for m in _STRING_RE.finditer(many.group(1)))
    else:
        one = _assigned(body, var, "license")
        licenses = (one,) if one else ()
    return name, version, licenses


def _assigned(body: str, var: str, attribute: str) -> str:
    match = re.search(rf"^\s*{var}\.{attribute}\s*=\s*{_STRING}\s*(?:#.*)?$", body, re.MULTILINE)
    return _literal(match) if match else ""


def _literal(match: re.Match[str]) -> str:
    double, single, brace, angle = match.group(1, 2, 3, 4)
    if double is not None:
        return re.sub(r"\\(.)", r"\1", double)
    if single is not None:
        return re.sub(r"\\([\\'])", r"\1", single)
    return brace if brace is not None else angle
