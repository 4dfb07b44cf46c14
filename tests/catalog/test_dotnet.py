"""The .NET cataloger: which files it reads, what it finds in a real deps.json (only what the app
loads at run time, as Trivy), variants of the layout, and files it cannot read as errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.dotnet import DotnetCataloger
from keelwatch.images.layers import TarEntry

DEPS = (Path(__file__).parent / "fixtures" / "dotnet" / "Python.Runtime.deps.json").read_bytes()


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "app/Python.Runtime.deps.json"):
    return list(DotnetCataloger().parse(CatalogFile(path, content), NoView()))


def names(content: bytes) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in parse(content)]


def test_selection_is_deps_json_files():
    c = DotnetCataloger()
    paths = [
        "app/MyApp.deps.json",
        "usr/lib/python3/dist-packages/pythonnet/runtime/Python.Runtime.deps.json",
        "usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.1/Microsoft.NETCore.App.deps.json",
        "app/MyApp.runtimeconfig.json",
        "app/MyApp.dll",
        "app/deps.json.bak",
        "app/packages.lock.json",
    ]
    wanted = {p for p in paths if c.wants(TarEntry(p, "file", 0o644, 5000)) is Want.PRIMARY}
    assert wanted == set(paths[:3])
    assert c.wants(TarEntry(paths[0], "symlink", 0o777, 0, linkname="x")) is Want.NO
    assert c.uses_companions is False


def test_real_deps_json_reports_what_the_app_loads():
    found = [(p.ecosystem, p.name, p.version, p.purl, p.kind) for p in parse(DEPS)]
    assert found == [
        ("NuGet", "Python.Runtime", "3.0.3", "pkg:nuget/Python.Runtime@3.0.3", "lang"),  # the project itself
        ("NuGet", "Microsoft.CSharp", "4.7.0", "pkg:nuget/Microsoft.CSharp@4.7.0", "lang"),
        ("NuGet", "System.Reflection.Emit", "4.3.0", "pkg:nuget/System.Reflection.Emit@4.3.0", "lang"),
        ("NuGet", "System.Reflection.Emit.ILGeneration", "4.3.0",
         "pkg:nuget/System.Reflection.Emit.ILGeneration@4.3.0", "lang"),
    ]


def test_without_the_runtime_target_every_library_is_reported():
    doc = json.loads(DEPS)
    doc["runtimeTarget"]["name"] = ".NETCoreApp,Version=v8.0"  # a target the file does not describe
    reported = names(json.dumps(doc).encode())
    assert len(reported) == len(doc["libraries"]) == 19
    assert ("Microsoft.Net.Compilers.Toolset", "4.0.1") in reported


def test_runtime_pack_reference_and_unlisted_libraries():
    doc = json.loads(DEPS)
    target = doc["targets"][".NETStandard,Version=v2.0/"]
    pack = "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.1"
    target[pack] = {"runtime": {"System.Private.CoreLib.dll": {}}, "native": {"libcoreclr.so": {}}}
    doc["libraries"][pack] = {"type": "runtimepack", "serviceable": False, "sha512": ""}
    doc["libraries"]["Legacy.Interop/1.0.0.0"] = {"type": "reference", "serviceable": False, "sha512": ""}
    doc["libraries"]["Not.In.Target/2.0.0"] = {"type": "package", "serviceable": True, "sha512": ""}
    reported = names(json.dumps(doc).encode())
    assert reported[4:] == [("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.1"), ("Not.In.Target", "2.0.0")]


@pytest.mark.parametrize("content", [
    b"",
    b"{not json",
    b"[]",
    b'{"libraries": []}',
    b'{"libraries": {"NoVersion": {"type": "package"}}}',
    b'{"libraries": {"A/1.0": "package"}}',
])
def test_unreadable_deps_json_is_an_error(content):
    with pytest.raises(ValueError):
        parse(content)


def test_deps_json_without_libraries_gives_nothing():
    assert parse(b'{"runtimeTarget": {"name": "x"}, "targets": {"x": {}}}') == []
