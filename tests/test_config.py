"""Configuration: search path, defaults, file < environment, relative paths, and clear errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from keelwatch import config
from keelwatch.config import FeedSettings, Settings, load_settings
from keelwatch.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KEELWATCH_* or XDG variable from the machine, and a working directory of our own."""
    for var in list(os.environ):
        if var.startswith(("KEELWATCH_", "XDG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_any_file(isolated: Path) -> None:
    settings = load_settings()
    assert settings.source is None
    assert settings.store.url == f"sqlite:///{isolated / 'home/.local/share/keelwatch/keelwatch.db'}"
    assert settings.store.auto_migrate is True
    assert settings.feeds == []
    assert settings.scan.platform is None and settings.scan.insecure_registries == []
    assert (settings.scan.max_layer_bytes, settings.scan.max_file_bytes) == (8 << 30, 512 << 20)


def test_default_database_follows_keelwatch_home_then_xdg(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(isolated / "data"))
    assert load_settings().store.url == f"sqlite:///{isolated / 'data/keelwatch/keelwatch.db'}"
    monkeypatch.setenv("KEELWATCH_HOME", str(isolated / "kw"))
    assert load_settings().store.url == f"sqlite:///{isolated / 'kw/keelwatch.db'}"


def test_search_path_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = write(isolated / "home/.config/keelwatch/config.toml", '[scan]\nplatform = "linux/xdg"\n')
    assert load_settings().source == xdg
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated / "cfg"))
    assert load_settings().source is None  # $XDG_CONFIG_HOME replaces ~/.config
    xdg = write(isolated / "cfg/keelwatch/config.toml", '[scan]\nplatform = "linux/xdg"\n')
    assert load_settings().scan.platform == "linux/xdg"
    local = write(isolated / "work/keelwatch.toml", '[scan]\nplatform = "linux/cwd"\n')
    assert load_settings().source == local
    named = write(isolated / "named.toml", '[scan]\nplatform = "linux/env"\n')
    monkeypatch.setenv("KEELWATCH_CONFIG", str(named))
    assert load_settings().scan.platform == "linux/env"
    explicit = write(isolated / "explicit.toml", '[scan]\nplatform = "linux/explicit"\n')
    assert load_settings(explicit).scan.platform == "linux/explicit"
    assert config.config_search_path()[-1] == Path("/etc/keelwatch/config.toml")


def test_a_named_file_that_is_missing_is_an_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_settings(isolated / "nope.toml")
    monkeypatch.setenv("KEELWATCH_CONFIG", str(isolated / "gone.toml"))
    with pytest.raises(ConfigError, match=r"KEELWATCH_CONFIG names .*gone\.toml"):
        load_settings()


FULL = """
[store]
url = "postgresql+psycopg://keelwatch@db.internal/keelwatch"
auto_migrate = false

[scan]
platform = "linux/arm64/v8"
insecure_registries = ["localhost:5000", "registry.lab:5000"]
max_layer_bytes = "2 GiB"
max_file_bytes = 1048576

[[feeds]]
name = "osv-pypi"
kind = "osv"
url = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
ecosystems = ["PyPI"]
incremental = true

[[feeds]]
name = "kev"
kind = "kev"
url = "feeds/kev.json"
"""


def test_every_section_is_read(isolated: Path) -> None:
    path = write(isolated / "etc/keelwatch.toml", FULL)
    settings = load_settings(path)
    assert settings.source == path
    assert settings.store.url == "postgresql+psycopg://keelwatch@db.internal/keelwatch"
    assert settings.store.auto_migrate is False
    assert settings.scan.platform == "linux/arm64/v8"
    assert settings.scan.insecure_registries == ["localhost:5000", "registry.lab:5000"]
    assert (settings.scan.max_layer_bytes, settings.scan.max_file_bytes) == (2 << 30, 1 << 20)
    assert settings.feeds == [
        FeedSettings("osv-pypi", "osv", "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip",
                     {"ecosystems": ["PyPI"], "incremental": True}),
        FeedSettings("kev", "kev", str(isolated / "etc/feeds/kev.json"), {}),  # a local path, beside the file
    ]


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///data/keelwatch.db", "sqlite:///{dir}/data/keelwatch.db"),
    ("sqlite:///./k.db?timeout=5", "sqlite:///{dir}/k.db?timeout=5"),
    ("sqlite:////var/lib/keelwatch/k.db", "sqlite:////var/lib/keelwatch/k.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
])
def test_relative_sqlite_paths_mean_beside_the_config_file(isolated: Path, url: str, expected: str) -> None:
    path = write(isolated / "etc/keelwatch.toml", f'[store]\nurl = "{url}"\n')
    assert load_settings(path).store.url == expected.format(dir=isolated / "etc")


def test_sqlite_paths_expand_the_home_directory(isolated: Path) -> None:
    path = write(isolated / "k.toml", '[store]\nurl = "sqlite:///~/k.db"\n')
    assert load_settings(path).store.url == f"sqlite:///{isolated / 'home/k.db'}"


def test_the_environment_overrides_the_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "etc/keelwatch.toml", FULL)
    monkeypatch.setenv("KEELWATCH_STORE_URL", "sqlite:////ignored-because-database-url-wins.db")
    monkeypatch.setenv("KEELWATCH_DATABASE_URL", "sqlite:///relative.db")
    monkeypatch.setenv("KEELWATCH_STORE_AUTO_MIGRATE", "yes")
    monkeypatch.setenv("KEELWATCH_SCAN_PLATFORM", "linux/amd64")
    monkeypatch.setenv("KEELWATCH_SCAN_INSECURE_REGISTRIES", "a:5000, b:5000")
    monkeypatch.setenv("KEELWATCH_SCAN_MAX_LAYER_BYTES", "512MiB")
    monkeypatch.setenv("KEELWATCH_SCAN_MAX_FILE_BYTES", "1000")
    monkeypatch.setenv("KEELWATCH_SHARED", "/not/a/setting")  # other KEELWATCH_ variables are not settings
    settings = load_settings(path)
    # Relative to where the command runs: an environment variable has no file to be beside.
    assert settings.store.url == f"sqlite:///{isolated / 'work/relative.db'}"
    assert settings.store.auto_migrate is True
    assert settings.scan.platform == "linux/amd64"
    assert settings.scan.insecure_registries == ["a:5000", "b:5000"]
    assert (settings.scan.max_layer_bytes, settings.scan.max_file_bytes) == (512 << 20, 1000)
    assert len(settings.feeds) == 2


def test_an_empty_variable_clears_an_optional_key(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "k.toml", '[scan]\nplatform = "linux/arm64"\n')
    monkeypatch.setenv("KEELWATCH_SCAN_PLATFORM", "")
    assert load_settings(path).scan.platform is None


def test_database_url_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWATCH_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert load_settings().store.url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(("text", "message"), [
    ("[store\nurl = 1", r"k\.toml: not valid TOML: .*line 1"),
    ('[store]\nurl = 5', r"k\.toml: store\.url: expected a string, got an integer 5"),
    ('[store]\nauto_migrate = "no"', r"k\.toml: store\.auto_migrate: expected true or false, got a string 'no'"),
    ('[scan]\nmax_layer_bytes = "lots"', r"k\.toml: scan\.max_layer_bytes: not a size: 'lots'"),
    ('[scan]\nmax_file_bytes = true', r"k\.toml: scan\.max_file_bytes: expected an integer or a size"),
    ('[scan]\nmax_file_bytes = 0', r"k\.toml: scan\.max_file_bytes: must be a positive size"),
    ('[scan]\ninsecure_registries = "localhost:5000"', r"k\.toml: scan\.insecure_registries: expected a list"),
    ('[scan]\ninsecure_registries = ["a", 1]', r"k\.toml: scan\.insecure_registries\[1\]: expected a string"),
    ('[scan]\nplatform = "linux/arm64/v8/extra"', r"k\.toml: scan\.platform: not a platform"),
    ('[scan]\nmax_layer = 1', r"k\.toml: scan\.max_layer: unknown key \(known keys here: insecure_registries, "
                               r"max_file_bytes, max_layer_bytes, platform\)"),
    ('[bogus]\nchannel = "x"', r"k\.toml: bogus: unknown key \(known keys here: alerts, feeds, inventory, "
                               r"(runtime, )?scan, service, store\)"),
    ('[alerts]\nchannel = "x"', r"k\.toml: alerts\.channel: unknown key \(known keys here: alert_not_running, "),
    ('[alerts.policy.critical]\nnotify = "page"', r"alerts\.policy\.critical\.notify: unknown value 'page' "
                                                   r"\(one of: immediate, digest, none\)"),
    ('[alerts.policy.high]\ndue_days = 0', r"alerts\.policy\.high\.due_days: must be positive"),
    ('[[alerts.channels]]\nname = "w"\nkind = "webhook"', r"alerts\.channels\[0\]\.url: a webhook channel needs a url"),
    ('[[alerts.channels]]\nname = "w"\nkind = "pager"', r"alerts\.channels\[0\]\.kind: unknown channel kind 'pager'"),
    ('[[alerts.channels]]\nname = "f"\nkind = "jsonl"\npath = "a"\nmin_severity = "urgent"',
     r"alerts\.channels\[0\]\.min_severity: unknown severity 'urgent'"),
    ('[[alerts.overrides]]\nenvironment = "dev"', r"alerts\.overrides\[0\]: an override needs notify or due_days"),
    ('scan = 3', r"k\.toml: scan: expected a table, got an integer 3"),
    ('[[feeds]]\nname = "a"\nkind = "osv"', r"k\.toml: feeds\[0\]: missing required key: url"),
    ('[[feeds]]\nname = "a"\nkind = "rss"\nurl = "x"', r"k\.toml: feeds\[0\]\.kind: unknown feed kind 'rss' "
                                                        r"\(one of: osv, debian-tracker"),
    ('[[feeds]]\nname = "a"\nkind = "kev"\nurl = "x"\n[[feeds]]\nname = "a"\nkind = "epss"\nurl = "y"',
     r"k\.toml: feeds\[1\]\.name: duplicate feed name 'a'"),
    ('[feeds]\nname = "a"', r"k\.toml: feeds: expected a list, got a table"),
])
def test_bad_files_name_the_file_and_the_key(isolated: Path, text: str, message: str) -> None:
    path = write(isolated / "k.toml", text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("var", "value", "message"), [
    ("KEELWATCH_SCAN_MAX_LAYER_BYTES", "huge", r"KEELWATCH_SCAN_MAX_LAYER_BYTES: not a size: 'huge'"),
    ("KEELWATCH_STORE_AUTO_MIGRATE", "maybe", r"KEELWATCH_STORE_AUTO_MIGRATE: expected true or false"),
    ("KEELWATCH_SCAN_PLATFORMS", "linux/amd64", r"KEELWATCH_SCAN_PLATFORMS: \[scan\] has no key 'platforms' "
                                                r"\(known: KEELWATCH_SCAN_INSECURE_REGISTRIES, "),
])
def test_bad_environment_overrides_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                                     message: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=f"environment variable {message}"):
        load_settings()


def test_an_unreadable_file(isolated: Path) -> None:
    path = write(isolated / "k.toml", "")
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match=r"k\.toml: not valid TOML"):
        load_settings(path)


def test_sizes_and_durations() -> None:
    where = config._Where("test", "key")
    assert [config._parse_size(s, where) for s in ("1024", "1 KiB", "1kB", "1.5 GiB", "2G", "3 tb", "1b")] == [
        1024, 1024, 1000, 3 << 29, 2_000_000_000, 3_000_000_000_000, 1]
    assert config._parse_duration("30s", where) == timedelta(seconds=30)
    assert config._parse_duration("1h30m", where) == timedelta(minutes=90)
    assert config._parse_duration("250ms", where) == timedelta(milliseconds=250)
    assert config._parse_duration(45, where) == timedelta(seconds=45)
    with pytest.raises(ConfigError, match="test: key: expected a duration"):
        config._parse_duration("soon", where)


@dataclass
class ServiceSettings:
    roles: list[str] = field(default_factory=lambda: ["all"])
    lease_ttl: timedelta = timedelta(seconds=30)


@dataclass
class ExtendedSettings(Settings):
    service: ServiceSettings = field(default_factory=ServiceSettings)


def test_a_new_section_is_one_dataclass_and_one_field() -> None:
    """What a later area (inventory, alerts, serve) does to add its keys: nothing else in the loader."""
    doc = {"service": {"roles": ["scan", "sync"], "lease_ttl": "2m"}}
    settings = config._build(ExtendedSettings, doc, config._Where("k.toml", ""))
    assert settings.service == ServiceSettings(["scan", "sync"], timedelta(minutes=2))
    assert settings.scan.max_file_bytes == 512 << 20
    with pytest.raises(ConfigError, match=r"k\.toml: service\.lease_ttl: expected a duration"):
        config._build(ExtendedSettings, {"service": {"lease_ttl": "forever"}}, config._Where("k.toml", ""))
