"""The Java cataloger: which files it reads, what it finds in jars (nested, shaded, hostile), and
agreement with the pom.properties listed for the shared java-app image."""

import io
import json
import logging
import struct
import time
import zipfile
from pathlib import Path

import pytest

import keelwatch.catalog.java as java
from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.java import JavaCataloger, file_name_splits, from_manifest, parse_manifest, split_symbolic_name
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "java"
POM = {  # fixture directory → the path pom.properties has inside its jar
    "jackson-databind": "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
    "commons-lang3": "META-INF/maven/org.apache.commons/commons-lang3/pom.properties",
    "log4j-1.2-api": "META-INF/maven/org.apache.logging.log4j/log4j-1.2-api/pom.properties",
    "snakeyaml": "META-INF/maven/org.yaml/snakeyaml/pom.properties",
}


def entry(path):
    return TarEntry(path=path, type="file", mode=0o644, size=10)


class View:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def test_selection():
    c = JavaCataloger()
    expected = {
        "app/lib/log4j-core-2.19.0.jar": Want.PRIMARY,
        "usr/local/tomcat/webapps/app.war": Want.PRIMARY,
        "opt/app/app.ear": Want.PRIMARY,
        "var/jenkins_home/plugins/git.jpi": Want.PRIMARY,
        "var/jenkins_home/plugins/credentials.hpi": Want.PRIMARY,
        "usr/share/java/snakeyaml.jar": Want.PRIMARY,
        "app/lib/log4j-core-2.19.0.jar.sha1": Want.NO,
        "app/pom.xml": Want.NO,
        "app/META-INF/maven/org.yaml/snakeyaml/pom.properties": Want.NO,  # only inside an archive
        "app/META-INF/MANIFEST.MF": Want.NO,
        "app/classes/Main.class": Want.NO,
        "usr/lib/jvm/java-17/lib/modules": Want.NO,
        "app/lib/archive.zip": Want.NO,
    }
    assert {p: c.wants(entry(p)) for p in expected} == expected


def jar(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def real(name, *, pom=True, manifest=True) -> dict[str, bytes]:
    files = {}
    if manifest:
        files["META-INF/MANIFEST.MF"] = (FIXTURES / name / "MANIFEST.MF").read_bytes()
    if pom:
        files[POM[name]] = (FIXTURES / name / "pom.properties").read_bytes()
    files["x/Placeholder.class"] = b"\xca\xfe\xba\xbe"
    return files


def parse(path, content):
    return [(p.name, p.version, p.purl, p.location) for p in
            JavaCataloger().parse(CatalogFile(path, content), View())]


def test_pom_properties_wins_over_the_manifest():
    content = jar(real("jackson-databind"))
    [p] = JavaCataloger().parse(CatalogFile("app/lib/jackson-databind.jar", content), View())
    assert (p.ecosystem, p.name, p.version, p.purl, p.kind) == (
        "Maven", "com.fasterxml.jackson.core:jackson-databind", "2.14.0",
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.14.0", "lang")
    assert p.files == ("app/lib/jackson-databind.jar",)


def test_shaded_jar_yields_each_pom_properties():
    files = real("log4j-1.2-api")
    files[POM["snakeyaml"]] = (FIXTURES / "snakeyaml" / "pom.properties").read_bytes()
    files["META-INF/maven/org.yaml/snakeyaml/copy/pom.properties"] = files[POM["snakeyaml"]]  # repackaged twice
    assert sorted(parse("app/lib/fat.jar", jar(files))) == [
        ("org.apache.logging.log4j:log4j-1.2-api", "2.19.0",
         "pkg:maven/org.apache.logging.log4j/log4j-1.2-api@2.19.0", "app/lib/fat.jar"),
        ("org.yaml:snakeyaml", "1.33", "pkg:maven/org.yaml/snakeyaml@1.33", "app/lib/fat.jar"),
    ]


@pytest.mark.parametrize(("fixture", "file_name", "expected"), [
    ("jackson-databind", "jackson-databind.jar", ("com.fasterxml.jackson.core:jackson-databind", "2.14.0")),
    # Prose titles; the symbolic name org.apache.commons.lang3 drops the artifact's "commons-".
    ("commons-lang3", "commons-lang3.jar", ("org.apache.commons:commons-lang3", "3.12.0")),
    # Implementation-Vendor-Id says org.apache; the symbolic name has the real group.
    ("log4j-1.2-api", "log4j-1.2-api-2.19.0.jar", ("org.apache.logging.log4j:log4j-1.2-api", "2.19.0")),
    # Only Bundle-*: the OSGi version is all there is, unless the file name has a better one.
    ("snakeyaml", "snakeyaml.jar", ("org.yaml:snakeyaml", "1.33.0")),
    ("snakeyaml", "snakeyaml-1.33.jar", ("org.yaml:snakeyaml", "1.33")),
])
def test_manifest_when_there_is_no_pom_properties(fixture, file_name, expected):
    [(name, version, _, _)] = parse(f"app/lib/{file_name}", jar(real(fixture, pom=False)))
    assert (name, version) == expected


def test_file_name_only_when_nothing_better():
    assert parse("app/lib/mystery-1.2.3.jar", jar({"a/B.class": b"x"})) == [
        ("mystery", "1.2.3", "pkg:maven/mystery@1.2.3", "app/lib/mystery-1.2.3.jar")]
    assert parse("app/lib/mystery.jar", jar({"a/B.class": b"x"})) == []  # no version anywhere: nothing to say


def test_manifest_parsing_details():
    manifest = parse_manifest((FIXTURES / "jackson-databind" / "MANIFEST.MF").read_bytes())
    assert manifest["Bundle-SymbolicName"] == "com.fasterxml.jackson.core.jackson-databind"
    assert manifest["Class-Path"] == "/usr/share/java/jackson-annotations.jar /usr/share/java/jackson-core.jar"
    # The main section ends at the first empty line: per-entry sections do not override it.
    crlf = b"Manifest-Version: 1.0\r\nImplementation-Version: 1.0\r\n\r\nName: a/b/\r\nImplementation-Version: 9\r\n"
    assert parse_manifest(crlf)["Implementation-Version"] == "1.0"
    # A localisation key is not a value.
    assert from_manifest({"Bundle-Name": "%bundleName", "Bundle-Version": "%v"}, "x.jar") is None


def test_file_name_and_symbolic_name_splitting():
    assert file_name_splits("guava-31.1-jre.jar") == [("guava", "31.1-jre"), ("guava-31.1-jre", "")]
    eclipse = "org.eclipse.jdt.core"  # Eclipse bundles: the artifact is the whole symbolic name
    assert split_symbolic_name(eclipse, [eclipse]) == ("org.eclipse.jdt", eclipse)
    assert split_symbolic_name("org.yaml.snakeyaml", ["yaml"]) == ("", "")


def test_nested_archives_with_locations():
    inner = jar(real("jackson-databind"))
    boot = jar({"BOOT-INF/lib/snakeyaml-1.33.jar": jar(real("snakeyaml")), **real("commons-lang3")},
               compression=zipfile.ZIP_STORED)  # Spring Boot stores nested jars uncompressed
    war = jar({"WEB-INF/lib/jackson-databind-2.14.0.jar": inner, "WEB-INF/lib/boot.jar": boot,
               "WEB-INF/lib/not-a-zip.jar": b"garbage", "WEB-INF/web.xml": b"<web-app/>"})
    ear = jar({"app.war": war})
    assert sorted((n, v, loc) for n, v, _, loc in parse("opt/app.ear", ear)) == [
        ("com.fasterxml.jackson.core:jackson-databind", "2.14.0",
         "opt/app.ear!app.war!WEB-INF/lib/jackson-databind-2.14.0.jar"),
        ("org.apache.commons:commons-lang3", "3.12.0", "opt/app.ear!app.war!WEB-INF/lib/boot.jar"),
        ("org.yaml:snakeyaml", "1.33", "opt/app.ear!app.war!WEB-INF/lib/boot.jar!BOOT-INF/lib/snakeyaml-1.33.jar"),
    ]


def test_nesting_stops_at_the_depth_limit(caplog):
    archive = jar(real("snakeyaml"))
    for level in range(java.MAX_DEPTH + 2):
        archive = jar({f"lib/level{level}.jar": archive, **real("commons-lang3")})
    with caplog.at_level(logging.WARNING, logger="keelwatch.catalog.java"):
        found = parse("app/deep.jar", archive)
    assert [loc.count("!") for _, _, _, loc in found] == list(range(java.MAX_DEPTH + 1))
    assert "org.yaml:snakeyaml" not in {n for n, *_ in found}  # below the limit: not read
    assert "nested deeper than" in caplog.text


def test_zip_bomb_member_is_skipped_unread(monkeypatch, caplog):
    monkeypatch.setattr(java, "MAX_EXPANDED", 1 << 20)
    bomb = jar({"lib/bomb.jar": b"\0" * (8 << 20), **real("commons-lang3")})  # 8 MiB of zeros, ~8 KiB packed
    assert len(bomb) < 64 << 10
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="keelwatch.catalog.java"):
        found = parse("app/bomb.jar", bomb)
    assert time.perf_counter() - start < 0.5
    assert [n for n, *_ in found] == ["org.apache.commons:commons-lang3"]  # what was found stays
    assert "over the" in caplog.text


def test_nested_bomb_stops_at_the_expanded_budget(monkeypatch, caplog):
    """42.zip-style: each level holds many copies of the level below; the budget ends the descent."""
    monkeypatch.setattr(java, "MAX_EXPANDED", 2 << 20)
    level = jar({"pad.bin": bytes(range(256)) * 1024, **real("snakeyaml")}, compression=zipfile.ZIP_STORED)  # 256 KiB
    for _ in range(2):
        level = jar({f"lib/copy{i}.jar": level for i in range(16)})
    with caplog.at_level(logging.WARNING, logger="keelwatch.catalog.java"):
        found = parse("app/42.jar", level)
    assert 0 < len(found) < 16 * 16  # some copies read, the rest refused
    assert caplog.text.count("budget of expanded bytes is spent") == 1  # said once, not per member


def test_member_that_lies_about_its_size_is_not_trusted(caplog):
    inner = jar(real("snakeyaml"))
    outer = bytearray(jar({"lib/inner.jar": inner, **real("commons-lang3")}))
    # Rewrite the central directory's uncompressed size of lib/inner.jar to 100 bytes.
    at = outer.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", outer, at + 28)[0]
        if outer[at + 46:at + 46 + name_len] == b"lib/inner.jar":
            struct.pack_into("<I", outer, at + 24, 100)
        at = outer.find(b"PK\x01\x02", at + 4)
    with caplog.at_level(logging.WARNING, logger="keelwatch.catalog.java"):
        found = parse("app/liar.jar", bytes(outer))
    assert [n for n, *_ in found] == ["org.apache.commons:commons-lang3"]
    assert "inner.jar" in caplog.text


def test_unreadable_archive_is_an_error():
    with pytest.raises(ValueError, match="not a readable zip"):
        parse("app/lib/broken.jar", b"PK\x03\x04 truncated")


# --- agreement with the shared image's ground truth -----------------------------------------------

# (name, version) → reason, for coordinates java-app.maven.json lists that keelwatch does not, and back.
TRUTH_ONLY: dict[tuple[str, str], str] = {}
KEELWATCH_ONLY: dict[tuple[str, str], str] = {}


def test_agrees_with_java_app_pom_properties(images_dir):
    opened = open_image(f"oci-archive:{images_dir / 'java-app.oci.tar'}")
    try:
        result = catalog_image(opened, CATALOGERS)
    finally:
        opened.close()
    ours = [p for p in result.packages if p.ecosystem == "Maven"]
    assert all(p.found_by == "java" for p in ours)
    truth = json.loads((images_dir / "java-app.maven.json").read_text())
    theirs = {(f"{t['groupId']}:{t['artifactId']}", t["version"]) for t in truth}
    found = {(p.name, p.version) for p in ours}
    assert {k: TRUTH_ONLY.get(k, "unexplained") for k in theirs - found} == TRUTH_ONLY
    assert {k: KEELWATCH_ONLY.get(k, "unexplained") for k in found - theirs} == KEELWATCH_ONLY
    # Same purl and same jar, one package per jar.
    assert sorted((p.purl, "/" + p.location) for p in ours) == sorted((t["purl"], t["path"]) for t in truth)
    assert not [w for w in result.warnings if w.cataloger == "java"]
