"""The `keelwatch sbom` command as scripts use it: stdout is only the document, exit codes mean what they say."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEELWATCH = [sys.executable, "-m", "keelwatch"]


def run(args, home: Path, **kwargs):
    env = {**os.environ, "KEELWATCH_HOME": str(home), "KEELWATCH_CONFIG": str(home / "none.toml")}
    env.pop("KEELWATCH_DATABASE_URL", None)
    (home / "none.toml").write_text("")
    return subprocess.run([*KEELWATCH, *args], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_version(tmp_path):
    out = run(["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("keelwatch ")


def test_cyclonedx_on_stdout_with_a_versioned_purl_per_package(images_dir, tmp_path):
    out = run(["sbom", f"oci-archive:{images_dir}/debian12-python.oci.tar", "--format", "cyclonedx-json"], tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # nothing but the document on stdout
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    libraries = [c for c in doc["components"] if c["type"] == "library"]
    assert len(libraries) == 56  # 39 dpkg + 17 PyPI, as Trivy finds
    assert all("@" in c["purl"] and c["purl"].split("@", 1)[1] for c in libraries)
    purls = {c["purl"] for c in libraries}
    assert "pkg:pypi/django@3.2.12" in purls
    assert any(p.startswith("pkg:deb/debian/libssl3@") for p in purls)


def test_second_scan_of_a_digest_reuses_the_store(images_dir, tmp_path):
    ref = f"oci-archive:{images_dir}/go-tools.oci.tar"
    first = run(["-v", "sbom", ref, "--format", "json"], tmp_path)
    second = run(["-v", "sbom", ref, "--format", "json"], tmp_path)
    assert first.returncode == second.returncode == 0
    assert "reusing the stored catalog" not in first.stderr
    assert "reusing the stored catalog" in second.stderr
    assert json.loads(first.stdout)["packages"] == json.loads(second.stdout)["packages"]
    listed = run(["images", "--format", "json"], tmp_path)
    assert [i["digest"] for i in json.loads(listed.stdout)] == [
        "sha256:4ade824e8434f61cd51db4de32af98ea8d90ee1011cc94ec2cdf6d8ff5ac95f5"]


@pytest.mark.parametrize(("args", "message"), [
    (["sbom", "oci-archive:/does/not/exist.tar"], "no such file"),
    (["sbom", "NotAValidRef"], "invalid repository name"),
    (["sbom", "oci-dir:"], "needs a location"),
])
def test_failures_are_one_line_and_non_zero(tmp_path, args, message):
    out = run(args, tmp_path)
    assert out.returncode != 0
    assert out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr


def test_spdx_and_import_round_trip(images_dir, tmp_path):
    out = run(["sbom", f"oci-archive:{images_dir}/node-app.oci.tar", "-f", "spdx-json", "-o", str(tmp_path / "s.json")],
              tmp_path)
    assert out.returncode == 0, out.stderr
    imported = run(["sbom", "import", str(tmp_path / "s.json"), "-f", "json"], tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert len(json.loads(imported.stdout)["packages"]) == 73  # 3 dpkg + 70 npm
