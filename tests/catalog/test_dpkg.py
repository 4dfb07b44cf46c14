"""The dpkg cataloger: which files it reads, and exactly what it finds in them."""

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.dpkg import DpkgCataloger, parse_stanzas
from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease

# A real stanza pair from Debian 12's /var/lib/dpkg/status (debian12-python image), trimmed of
# the long Description continuation lines.
STATUS = """\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6140
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL and TLS
 cryptographic protocols for secure communication over the Internet.

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
"""

LIST = "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n/usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"


def entry(path, type="file"):
    return TarEntry(path=path, type=type, mode=0o644, size=10)


def test_selection():
    c = DpkgCataloger()
    wants = {p: c.wants(entry(p)) for p in [
        "var/lib/dpkg/status", "var/lib/dpkg/status-old", "var/lib/dpkg/status.d/base",
        "var/lib/dpkg/status.d/base.md5sums", "var/lib/dpkg/info/libssl3:amd64.list",
        "var/lib/dpkg/info/tzdata.md5sums", "var/lib/dpkg/info/tzdata.postinst", "usr/share/doc/x/copyright",
        "app/var/lib/dpkg/status",
    ]}
    assert {p for p, w in wants.items() if w is Want.PRIMARY} == {"var/lib/dpkg/status", "var/lib/dpkg/status.d/base"}
    assert {p for p, w in wants.items() if w is Want.COMPANION} == {
        "var/lib/dpkg/status.d/base.md5sums", "var/lib/dpkg/info/libssl3:amd64.list",
        "var/lib/dpkg/info/tzdata.md5sums"}


class View:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)

    def under(self, directory):
        return sorted(p for p in self.files if p.startswith(directory + "/"))


def test_content_with_source_packages_and_owned_files():
    c = DpkgCataloger()
    view = View({"var/lib/dpkg/info/libssl3:amd64.list": LIST.encode(),
                 "var/lib/dpkg/info/tzdata.md5sums": b"0123  usr/share/zoneinfo/UTC\n"})
    found = list(c.parse(CatalogFile("var/lib/dpkg/status", STATUS.encode()), view))
    os = OSRelease(id="debian", version_id="12")
    pkgs = {p.name: c.complete(p, os) for p in found}
    assert sorted(pkgs) == ["libgcc-s1", "libssl3", "tzdata"]  # config-files only is not installed
    ssl = pkgs["libssl3"]
    assert (ssl.ecosystem, ssl.version, ssl.source_name, ssl.source_version, ssl.arch, ssl.kind) == (
        "Debian:12", "3.0.15-1~deb12u1", "openssl", "3.0.15-1~deb12u1", "amd64", "os")
    assert ssl.purl == "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12"
    assert ssl.files == ("usr", "usr/lib/x86_64-linux-gnu/libssl.so.3", "usr/lib/x86_64-linux-gnu/libcrypto.so.3")
    # "Source: NAME (VERSION)": a source package with a version of its own.
    assert (pkgs["libgcc-s1"].source_name, pkgs["libgcc-s1"].source_version) == ("gcc-12", "12.2.0-14")
    assert pkgs["tzdata"].source_name == "tzdata" and pkgs["tzdata"].arch == "all"
    # The md5sums form is read when no .list exists (slimmed images may keep only md5sums).
    assert pkgs["tzdata"].files == ("usr/share/zoneinfo/UTC",)


def test_ubuntu_ecosystem_and_purl():
    c = DpkgCataloger()
    [p] = c.parse(CatalogFile("var/lib/dpkg/status", STATUS.split("\n\n")[1].encode()), View({}))
    p = c.complete(p, OSRelease(id="ubuntu", version_id="22.04"))
    assert p.ecosystem == "Ubuntu:22.04"
    assert p.purl.startswith("pkg:deb/ubuntu/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=ubuntu-22.04")


def test_malformed_database_is_an_error_not_silence():
    with pytest.raises(ValueError, match="malformed"):
        list(parse_stanzas("Package: a\nthis line has no colon\n"))
