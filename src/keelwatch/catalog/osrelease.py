"""Which distribution and release an image is, from the files distributions use to say so."""

from __future__ import annotations

import posixpath
import shlex

from keelwatch.model import OSRelease

OS_RELEASE_PATHS = frozenset({
    "etc/os-release", "usr/lib/os-release", "etc/alpine-release", "etc/debian_version",
    "etc/redhat-release", "etc/centos-release", "etc/lsb-release",
})


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting, as os-release(5) specifies."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
    return values


def _resolve(path: str, files: dict[str, bytes], links: dict[str, str]) -> bytes | None:
    for _ in range(8):
        if path in files:
            return files[path]
        target = links.get(path)
        if target is None:
            return None
        path = posixpath.normpath(
            target.lstrip("/") if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
        )
    return None


def detect_os(files: dict[str, bytes], links: dict[str, str]) -> OSRelease | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        data = _resolve(path, files, links)
        if data:
            values = parse_os_release(data.decode("utf-8", "replace"))
            if values.get("ID"):
                version = values.get("VERSION_ID", "")
                os_id = values["ID"].lower()
                if os_id == "debian" and not version:
                    # Debian testing/sid leave VERSION_ID out; debian_version says trixie/sid.
                    dv = _resolve("etc/debian_version", files, links)
                    version = (dv or b"").decode("utf-8", "replace").strip()
                    version = version if version[:1].isdigit() else ""
                return OSRelease(id=os_id, version_id=version,
                                 pretty_name=values.get("PRETTY_NAME", ""),
                                 version_codename=values.get("VERSION_CODENAME", ""))
    alpine = _resolve("etc/alpine-release", files, links)
    if alpine:
        return OSRelease(id="alpine", version_id=alpine.decode("utf-8", "replace").strip())
    debian = _resolve("etc/debian_version", files, links)
    if debian:
        version = debian.decode("utf-8", "replace").strip()
        return OSRelease(id="debian", version_id=version if version[:1].isdigit() else "")
    return None
