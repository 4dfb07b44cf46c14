"""Alpine's secdb (kind ``alpine-secdb``) → OSV-shaped advisories.

secdb (https://secdb.alpinelinux.org, source github.com/alpinelinux/alpine-secdb; format described
at https://wiki.alpinelinux.org/wiki/Security_fixes and in Alpine's APKBUILD ``secfixes``
convention) publishes one document per branch and repository, ``v3.19/main.yaml`` and the same
as ``v3.19/main.json``::

    distroversion: v3.19
    reponame: main
    packages:
      - pkg:
          name: openssl
          secfixes:
            3.1.4-r1: [CVE-2023-5678]
            "0": [CVE-2022-3358]        # "0": this branch's package was never affected

Each ``fixed_version: [ids]`` pair says the package's versions before ``fixed_version`` are
affected (range ``introduced 0`` → ``fixed``), in ecosystem ``Alpine:<distroversion>``.

**Id scheme**: one advisory per CVE, id ``ALPINE-<CVE id>`` (the id osv.dev gives its records
derived from secdb), with one ``affected`` entry per (package × branch) that names the CVE, so
branches and packages of one CVE are one advisory. The ``"0"`` entries are listed in the
advisory's ``database_specific.not_affected``. Entries are free text in practice: ``CVE-2017-2887
TALOS-2017-0394`` (the other ids become aliases), ``CVE-2017-17434-1`` and ``CVE-2017-8073.patch``
(the CVE is taken out), ``wnpa-sec-2017-18`` (no CVE: id ``ALPINE-wnpa-sec-2017-18``).

URL forms: one file (``…/v3.19/main.json`` or ``.yaml``), or a directory / base URL holding
``<branch>/<repo>.(json|yaml)``: option ``branches`` (``["v3.18", "v3.19"]``; a local directory
without it uses every ``v*`` directory present), ``repos`` (default main and community) and
``format`` (``json``, the default over HTTP, or ``yaml``; a local directory uses what is there).
All files of one feed are one snapshot: "unchanged" only when every file is.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds import fetch as fetching
from keelwatch.feeds.base import Problem, Record, Spool, Unchanged
from keelwatch.feeds.decode import JSON_ERRORS, dumps, load_yaml, loads
from keelwatch.model import Advisory, Affected, AffectedRange

DEFAULT_URL = "https://secdb.alpinelinux.org"
CVE = re.compile(r"CVE-\d{4}-\d{4,}")
SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class _Vuln:
    aliases: set[str] = field(default_factory=set)
    # (ecosystem, package) → fixed versions, and the repo each came from
    fixed: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    repos: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    not_affected: set[tuple[str, str]] = field(default_factory=set)


def _ids(entry: str) -> tuple[str, tuple[str, ...]] | None:
    """``"CVE-2017-2887 TALOS-2017-0394"`` → (``CVE-2017-2887``, (``TALOS-2017-0394``,)); None if empty."""
    tokens = entry.split()
    if not tokens:
        return None
    cves = [m.group(0) for t in tokens for m in [CVE.search(t)] if m]
    if cves:
        others = tuple(t for t in tokens if not CVE.search(t))
        return cves[0], tuple(dict.fromkeys(cves[1:])) + others
    return tokens[0], tuple(tokens[1:])


def _ecosystem(distroversion: str) -> str:
    version = distroversion.strip()
    return f"Alpine:{version if version.startswith('v') or version == 'edge' else 'v' + version}"


def _collect(doc: Any, where: str, vulns: dict[str, _Vuln], problems: list[Problem]) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("distroversion"), str):
        problems.append(Problem(where, "not a secdb document (no 'distroversion')"))
        return
    ecosystem = _ecosystem(doc["distroversion"])
    repo = doc["reponame"] if isinstance(doc.get("reponame"), str) else ""
    packages = doc.get("packages") or []
    if not isinstance(packages, list):
        problems.append(Problem(where, "'packages' is not a list"))
        return
    for i, item in enumerate(packages):
        pkg = item.get("pkg") if isinstance(item, dict) else None
        name = pkg.get("name") if isinstance(pkg, dict) else None
        if not isinstance(pkg, dict) or not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}:packages[{i}]", "entry has no pkg.name"))
            continue
        secfixes = pkg.get("secfixes") or {}
        if not isinstance(secfixes, dict):
            problems.append(Problem(f"{where}:{name}", "'secfixes' is not a mapping"))
            continue
        for version, entries in secfixes.items():
            if entries is None:
                continue
            if not isinstance(version, str) or not isinstance(entries, list):
                problems.append(Problem(f"{where}:{name}", f"secfixes {version!r} is not 'version: [ids]'"))
                continue
            for entry in entries:
                ids = _ids(entry) if isinstance(entry, str) else None
                if ids is None:
                    problems.append(Problem(f"{where}:{name}@{version}", f"not an id: {entry!r:.60}"))
                    continue
                primary, aliases = ids
                vuln = vulns.setdefault(primary, _Vuln())
                vuln.aliases.update(aliases)
                key = (ecosystem, name)
                if version.strip() == "0":
                    vuln.not_affected.add(key)
                else:
                    vuln.fixed.setdefault(key, set()).add(version.strip())
                    vuln.repos.setdefault(key, set()).add(repo)


def _advisory(vuln_id: str, vuln: _Vuln, source: str) -> Advisory:
    affected = []
    for (ecosystem, name) in sorted(vuln.fixed):
        ranges = tuple(AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", fixed)))
                       for fixed in sorted(vuln.fixed[(ecosystem, name)]))
        repos = sorted(r for r in vuln.repos[(ecosystem, name)] if r)
        affected.append(Affected(ecosystem=ecosystem, name=name, ranges=ranges,
                                 purl=f"pkg:apk/alpine/{name}",
                                 database_specific=dumps({"repo": repos[0] if len(repos) == 1 else repos})
                                 if repos else ""))
    specific = ({"not_affected": [{"ecosystem": e, "name": n} for e, n in sorted(vuln.not_affected)]}
                if vuln.not_affected else {})
    is_cve = vuln_id.startswith("CVE-")
    return Advisory(
        id=f"ALPINE-{vuln_id}",
        source=source,
        aliases=tuple(sorted(vuln.aliases - {vuln_id})),
        upstream=(vuln_id,) if is_cve else (),
        affected=tuple(affected),
        references=(f"https://security.alpinelinux.org/vuln/{vuln_id}",) if is_cve else (),
        database_specific=dumps(specific) if specific else "",
    )


def _decode(data: bytes, name: str) -> Any:
    if name.endswith(".json"):
        return loads(data)
    return load_yaml(data)


def _documents(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each secdb file in a spool: a zip bundle or one file."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise FeedError(f"{path.name}: not a readable zip ({exc})") from None
        with archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.endswith(SUFFIXES):
                    try:
                        yield info.filename, archive.read(info)
                    except (zipfile.BadZipFile, OSError) as exc:
                        raise FeedError(f"{path.name}:{info.filename}: corrupt ({exc})") from None
        return
    yield path.name, path.read_bytes()


def parse_path(path: Path, *, source: str, name: str | None = None) -> Iterator[Record]:
    vulns: dict[str, _Vuln] = {}
    problems: list[Problem] = []
    for member, data in _documents(path):
        # A single-file spool is named after the URL's hash; its format shows in the first byte.
        label = name if name and member == path.name else member
        try:
            doc = loads(data) if data.lstrip()[:1] == b"{" else _decode(data, label)
        except JSON_ERRORS as exc:
            problems.append(Problem(label, f"not JSON: {exc}"))
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(label, f"not YAML: {str(exc).splitlines()[0]}"))
            continue
        _collect(doc, label, vulns, problems)
    yield from problems
    for vuln_id in sorted(vulns):
        yield _advisory(vuln_id, vulns[vuln_id], source)


class AlpineSecdbFeed:
    """secdb files: one, or several branches × repos under a base URL or directory."""

    kind = "alpine-secdb"
    OPTIONS = ("branches", "repos", "format") + fetching.FetchOptions.KEYS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        fetching.check_options(self.kind, options, self.OPTIONS)
        self.fetch_options = fetching.FetchOptions.from_mapping(options, where=self.kind)
        self.branches = fetching.str_list_option(options, "branches", (), where=self.kind)
        self.repos = fetching.str_list_option(options, "repos", ("main", "community"), where=self.kind)
        self.format = options.get("format")
        if self.format not in (None, "json", "yaml"):
            raise ConfigError(f"feed {self.kind}: option 'format' must be \"json\" or \"yaml\"")

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        if PurePosixPath(urlsplit(url).path).suffix in SUFFIXES:
            return fetching.fetch_file(url, fingerprint, workdir, self.fetch_options)
        members = self._members(url)
        return fetching.fetch_many(members, fingerprint, workdir, self.fetch_options, name="alpine-secdb.zip")

    def _members(self, url: str) -> dict[str, str]:
        local = fetching.local_path(url)
        base = url.rstrip("/")
        if local is None:
            if not self.branches:
                raise ConfigError(f"feed {self.kind}: {url} is a base URL: list the branches to fetch "
                                  "(branches = [\"v3.19\", \"v3.20\"])")
            ext = self.format or "json"
            return {f"{b}/{r}.{ext}": f"{base}/{b}/{r}.{ext}" for b in self.branches for r in self.repos}
        if not local.is_dir():
            raise FeedError(f"{local}: no such directory", hint="check the feed's url")
        branches = self.branches or tuple(sorted(p.name for p in local.iterdir() if p.is_dir()
                                                 and re.fullmatch(r"v\d+\.\d+|edge", p.name)))
        members = {}
        for branch in branches:
            for repo in self.repos:
                exts = (self.format,) if self.format else ("json", "yaml", "yml")
                candidates = (local / branch / f"{repo}.{e}" for e in exts)
                found = next((c for c in candidates if c.is_file()), None)
                if found is not None:
                    members[f"{branch}/{found.name}"] = str(found)
                elif self.branches:  # asked for by name: its absence is a mistake, not "no fixes"
                    raise FeedError(f"{local / branch}: no {repo}.json or {repo}.yaml")
        if not members:
            raise FeedError(f"{local}: no secdb files (<branch>/<repo>.json|yaml)", hint="check the feed's url")
        return members

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        return parse_path(spool.path, source=source, name=PurePosixPath(urlsplit(spool.url).path).name)
