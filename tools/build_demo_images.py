#!/usr/bin/env python3
"""Build the demo images that ship inside the package, from real packages, reproducibly.

Usage: tools/build_demo_images.py [--out DIR] [NAME ...]    (DIR defaults to src/keelwatch/demo/images)

`make run` must work on a machine without ../shared, so the demo carries its own two small images:

  demo-web-v1   a minimal Debian 12 base (a few real bookworm packages, real dpkg database) plus an
                application of real PyPI and npm packages at old versions with published advisories;
  demo-web-v2   the same base layer (same bytes, same digest) with the application rebuilt on the
                patched versions: the "rebuild" of the demo.

Adapted from ../shared/tools/build_images.py (same techniques): Debian packages fetched with
`apt-get download` through a private apt directory, unpacked with dpkg-deb and given the database
dpkg itself would write (status, info/format, info/*.list, *.md5sums, *.conffiles); PyPI packages
installed with `pip install --no-deps --target` into /usr/local/lib/python3.11/dist-packages; npm
packages installed with `npm install` into /app (package.json, package-lock.json, node_modules).
Every layer is a gzip tar with fixed owners and times (EPOCH) and a zero gzip mtime, and every
package version is pinned (Debian ones too), so running this twice gives the same digests. When
bookworm drops a pinned Debian version (a point release replaced it), the download fails and
says so: bump the pin, rebuild, and update the digests in the README beside the images.

Needs: apt-get and dpkg-deb (Debian 12 sources are set here, not taken from the host), pip, npm.
The wheels are chosen for CPython 3.11 on manylinux x86_64 whatever Python runs this script.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

EPOCH = 1672531200  # 2023-01-01T00:00:00Z: every file, every layer and the config carry this time
CREATED = "2023-01-01T00:00:00Z"
BOOKWORM = "deb [trusted=yes] http://deb.debian.org/debian bookworm main\n"
ARCH = "amd64"
SITE = "usr/local/lib/python3.11/dist-packages"
REPO = Path(__file__).resolve().parent.parent

# A minimal Debian 12 base: small packages whose source packages have Debian security history
# (zlib, expat, bzip2). libc6 (2.7 MB packed) does not fit the size budget: the
# Depends: on it stays unmet, which a cataloger does not look at.
BASE_DEBS = {
    "base-files": "12.4+deb12u15",
    "netbase": "6.4",
    "zlib1g": "1:1.2.13.dfsg-1",
    "libexpat1": "2.5.0-1+deb12u2",
    "libbz2-1.0": "1.0.8-5+b1",
}

class Spec(NamedTuple):
    version: str
    pypi: list[str]
    npm: list[str]


IMAGES = {
    # The "before": dependencies with published advisories (PYSEC and GHSA).
    "demo-web-v1": Spec(version="1", pypi=[
        "requests==2.25.1", "urllib3==1.26.4", "idna==2.10", "chardet==4.0.0", "certifi==2020.12.5",
        "Jinja2==2.11.2", "MarkupSafe==2.1.3",
    ], npm=[
        "minimist@1.2.0", "node-fetch@2.6.0", "path-to-regexp@0.1.7", "cookie@0.4.0",
    ]),
    # The "after": the same application rebuilt on patched versions, clean against ../shared/data/feeds
    # (PyPA's database of October 2024, the npm GHSA subset).
    "demo-web-v2": Spec(version="2", pypi=[
        "requests==2.32.3", "urllib3==1.26.20", "idna==3.10", "charset-normalizer==3.3.2", "certifi==2024.8.30",
        "Jinja2==3.1.4", "MarkupSafe==2.1.5",
    ], npm=[
        # node-fetch is dropped, not upgraded: GHSA-r683-j2x4-v87g as published covers 1.0 to 3.1.1, and
        # 3.x brings web-streams-polyfill (too big here). Node 18+ has fetch built in.
        "minimist@1.2.8", "path-to-regexp@0.1.13", "cookie@0.7.2",
    ]),
}

# Wheels for the image's Python, not the builder's (CPython 3.11, glibc x86_64). A project's pure-Python
# wheel is taken when it publishes one (charset-normalizer's compiled wheel is three times the size).
PIP_PURE = ["--only-binary=:all:", "--implementation", "py", "--python-version", "3.11", "--abi", "none",
            "--platform", "any"]
PIP_CP311 = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
             "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
             "--platform", "manylinux_2_5_x86_64", "--platform", "manylinux1_x86_64"]


def run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()}")


class Apt:
    """apt-get with its own sources, lists, cache and (empty) status: nothing from the host's apt."""

    def __init__(self, sources: str, work: Path, arch: str = ARCH):
        self.dir = work / f"apt-{arch}"
        (self.dir / "lists" / "partial").mkdir(parents=True)
        (self.dir / "cache" / "archives" / "partial").mkdir(parents=True)
        (self.dir / "sources.list").write_text(sources)
        (self.dir / "status").write_text("")
        self.opts = [f"-oDir::Etc::SourceList={self.dir}/sources.list", "-oDir::Etc::SourceParts=/dev/null",
                     f"-oDir::State::Lists={self.dir}/lists", f"-oDir::State::status={self.dir}/status",
                     f"-oDir::Cache={self.dir}/cache", f"-oAPT::Architecture={arch}",
                     f"-oAPT::Architectures::={arch}", "-oDebug::NoLocking=1"]
        run("apt-get", *self.opts, "update")

    def candidate(self, name: str) -> str:
        out = subprocess.run(["apt-cache", *self.opts, "policy", name], capture_output=True, text=True).stdout
        return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Candidate:" in ln), "?")

    def download(self, pinned: dict[str, str], into: Path) -> list[Path]:
        into.mkdir(parents=True, exist_ok=True)
        for name, version in pinned.items():
            r = subprocess.run(["apt-get", *self.opts, "download", f"{name}={version}"], cwd=into,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode:
                sys.exit(f"{name}={version} is no longer in bookworm (candidate now: {self.candidate(name)}).\n"
                         f"Bump BASE_DEBS in {Path(__file__).name}, rebuild, and update the digests in the README.\n"
                         f"{r.stderr.strip()}")
        return sorted(into.glob("*.deb"))


def field(control: str, name: str) -> str:
    for line in control.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def install_debs(debs: list[Path], root: Path, work: Path) -> None:
    """Unpack each .deb and write the dpkg database as dpkg would leave it."""
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    stanzas = {}
    for deb in debs:
        ctl = work / "ctl" / deb.stem
        ctl.mkdir(parents=True)
        run("dpkg-deb", "-x", str(deb), str(root))
        run("dpkg-deb", "-e", str(deb), str(ctl))
        control = (ctl / "control").read_text()
        name, arch = field(control, "Package"), field(control, "Architecture")
        key = f"{name}:{arch}" if field(control, "Multi-Arch") == "same" else name
        fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
        paths = []
        with tarfile.open(fileobj=io.BytesIO(fsys)) as t:
            for m in t.getmembers():
                p = "/" + m.name.lstrip("./")
                paths.append("/." if p == "/" else p.rstrip("/"))
        (info / f"{key}.list").write_text("\n".join(paths) + "\n")
        if (ctl / "md5sums").exists():
            shutil.copy(ctl / "md5sums", info / f"{key}.md5sums")
        lines = control.rstrip("\n").splitlines()
        lines.insert(1, "Status: install ok installed")
        if (ctl / "conffiles").exists():
            # dpkg keeps each conffile's md5 in the status file (not in *.md5sums).
            shutil.copy(ctl / "conffiles", info / f"{key}.conffiles")
            conf = ["Conffiles:"]
            for path in (ctl / "conffiles").read_text().split():
                data = (root / path.lstrip("/")).read_bytes()
                conf.append(f" {path} {hashlib.md5(data).hexdigest()}")
            at = next(i for i, ln in enumerate(lines) if ln.startswith("Description:"))
            lines[at:at] = conf
        stanzas[key] = "\n".join(lines)
    (root / "var/lib/dpkg/status").write_text("\n\n".join(stanzas[k] for k in sorted(stanzas)) + "\n")
    # Database format 1: info files of Multi-Arch: same packages are named NAME:ARCH.*. Without this
    # file dpkg reads format 0 and looks for zlib1g.list, not zlib1g:amd64.list.
    (info / "format").write_text("1\n")


def install_pypi(reqs: list[str], root: Path) -> None:
    target = root / SITE
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--no-compile", "--target", str(target)]
    for req in reqs:
        if subprocess.run([*pip, *PIP_PURE, req], capture_output=True).returncode:
            run(*pip, *PIP_CP311, req)
    # Console scripts name the builder's interpreter in their #! line and their text changes with pip's
    # version: leave them out, and their RECORD lines (../../bin/NAME) with them.
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in sorted(target.glob("*.dist-info/RECORD")):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(ln for ln in lines if not ln.startswith("../")))


def install_npm(pkgs: list[str], root: Path, name: str, version: str) -> None:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps(
        {"name": "keelwatch-demo-web", "version": f"{version}.0.0", "private": True}, indent=2) + "\n")
    run("npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", "--no-update-notifier",
        "--omit-lockfile-registry-resolved=false", "--lockfile-version=3", *pkgs, cwd=app)


def layer(root: Path) -> tuple[bytes, str]:
    """A gzip tar of root with fixed owners and times; returns (bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                p = Path(dirpath) / name
                ti = t.gettarinfo(str(p), arcname=str(p.relative_to(root)))
                ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = EPOCH, 0, 0, "root", "root"
                if ti.isfile():
                    with open(p, "rb") as f:
                        t.addfile(ti, f)
                else:
                    t.addfile(ti)
    data = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(data)
    return gz.getvalue(), "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(name: str, version: str, layers: list[tuple[bytes, str, str]], out: Path) -> str:
    """An OCI layout tar (index.json -> manifest) that also carries Docker's manifest.json."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media: str) -> dict:
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media, "digest": f"sha256:{d}", "size": len(data)}

    descs = [blob(data, "application/vnd.oci.image.layer.v1.tar+gzip") for data, _, _ in layers]
    repo = name.rsplit("-v", 1)[0]
    config = {"created": CREATED, "architecture": ARCH, "os": "linux",
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         "WorkingDir": "/app",
                         "Labels": {"org.opencontainers.image.title": repo,
                                    "org.opencontainers.image.version": version,
                                    "org.opencontainers.image.description": "keelwatch demo image"}},
              "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id, _ in layers]},
              "history": [{"created": CREATED, "created_by": how} for _, _, how in layers]}
    cdesc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cdesc, "layers": descs}
    mdesc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    top = dict(mdesc, platform={"architecture": ARCH, "os": "linux"},
               annotations={"org.opencontainers.image.ref.name": f"v{version}"})
    layout = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        def add(path: str, data: bytes) -> None:
            ti = tarfile.TarInfo(path)
            ti.size, ti.mtime, ti.mode = len(data), EPOCH, 0o644
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", json.dumps(layout, sort_keys=True).encode())
        # Docker 25+ `docker save` writes this too: the same file is also a docker-archive.
        add("manifest.json", json.dumps([{
            "Config": "blobs/sha256/" + cdesc["digest"].split(":")[1],
            "RepoTags": [f"keelwatch-demo/{repo}:v{version}"],
            "Layers": ["blobs/sha256/" + d["digest"].split(":")[1] for d in descs]}]).encode())
        for d in sorted(blobs):
            add(f"blobs/sha256/{d}", blobs[d])
    return mdesc["digest"]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "src/keelwatch/demo/images", help="default: %(default)s")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="images to build: " + ", ".join(IMAGES) + " (default: all)")
    args = ap.parse_args()
    if unknown := [n for n in args.names if n not in IMAGES]:
        ap.error("unknown image(s): " + ", ".join(unknown))
    args.out.mkdir(parents=True, exist_ok=True)
    os.umask(0o022)  # the modes of what pip, npm and this script write must not depend on the caller's umask
    with tempfile.TemporaryDirectory(prefix="kw-demo-") as tmp:
        work = Path(tmp)
        apt = Apt(BOOKWORM, work)
        base = work / "base"
        install_debs(apt.download(BASE_DEBS, work / "debs"), base, work)
        base_layer = (*layer(base), "debian bookworm: " + " ".join(f"{n}={v}" for n, v in BASE_DEBS.items()))
        for name in args.names or IMAGES:
            spec = IMAGES[name]
            py, node = work / name / "python", work / name / "node"
            install_pypi(spec.pypi, py)
            install_npm(spec.npm, node, name, spec.version)
            layers = [base_layer,
                      (*layer(py), f"pip install --no-deps --target /{SITE} " + " ".join(spec.pypi)),
                      (*layer(node), "cd /app && npm install --save-exact " + " ".join(spec.npm))]
            out = args.out / f"{name}.oci.tar"
            digest = oci_archive(name, spec.version, layers, out)
            sizes = " ".join(f"{len(data) / 1024:.0f}" for data, _, _ in layers)
            print(f"{name}: {digest} {out.stat().st_size / 1024:.0f} KiB (layers {sizes} KiB)", flush=True)


if __name__ == "__main__":
    main()
