"""One TOML file plus environment overrides → one typed ``Settings`` object.

Every key is a dataclass field with its default, so the schema, the defaults and the type checks
live in one place. A later area adds its section as one dataclass and one field on ``Settings``;
the loader converts and checks it from the annotations, and rejects keys nobody declared, so a
typo in a config file is an error naming the key, never a silently ignored setting.

Documented for users in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from keelwatch.errors import ConfigError
from keelwatch.model import Platform

#: The feed kinds keelwatch knows; ``[[feeds]] kind`` must be one of them.
FEED_KINDS = ("osv", "debian-tracker", "alpine-secdb", "nvd", "kev", "epss")
#: The inventory source kinds; ``[[inventory.sources]] kind`` must be one of them.
INVENTORY_KINDS = ("kubernetes", "docker", "static")

# A field whose integer counts bytes also accepts "8 GiB", "512MB", "1.5 GiB".
BYTES: dict[str, Any] = {"unit": "bytes"}

ENV_PREFIX = "KEELWATCH_"
# Kept as a documented alias of KEELWATCH_STORE_URL: the name other tools and issues already use.
DATABASE_URL_ENV = "KEELWATCH_DATABASE_URL"


def keelwatch_home() -> Path:
    """Where keelwatch keeps its data by default: ``$KEELWATCH_HOME``, else ``$XDG_DATA_HOME/keelwatch``."""
    home = os.environ.get("KEELWATCH_HOME")
    if home:
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data).expanduser() / "keelwatch"


def default_database_url() -> str:
    return f"sqlite:///{(keelwatch_home() / 'keelwatch.db').resolve()}"


@dataclass(slots=True)
class StoreSettings:
    url: str = field(default_factory=default_database_url)
    # Opening a store upgrades its schema; fleets that migrate as a deploy step turn this off.
    auto_migrate: bool = True


@dataclass(slots=True)
class FeedSettings:
    name: str
    kind: str
    url: str
    #: Every other key of the ``[[feeds]]`` table, for the feed of that kind to read.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ScanSettings:
    platform: str | None = None  # None: this machine's
    insecure_registries: list[str] = field(default_factory=list)
    max_layer_bytes: int = field(default=8 << 30, metadata=BYTES)
    max_file_bytes: int = field(default=512 << 20, metadata=BYTES)


@dataclass(slots=True)
class InventorySourceSettings:
    """One ``[[inventory.sources]]`` table; which keys apply depends on ``kind`` (docs/configuration.md)."""

    name: str
    kind: str  # kubernetes, docker, static
    cluster: str | None = None  # the cluster name recorded on every container (static: rows may say)
    # static: a CSV/JSON/YAML file, or an http(s) URL serving one
    path: str | None = None
    url: str | None = None  # static: http(s) URL; docker: unix:///run/docker.sock, tcp://host:2376
    format: str | None = None  # static: csv, json or yaml; None: from the file name or Content-Type
    # kubernetes
    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config
    context: str | None = None  # None: the kubeconfig's current context
    in_cluster: bool = False  # use the pod's service account instead of a kubeconfig
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    page_size: int = 500  # list pagination (limit / continue)
    timeout: timedelta = field(default_factory=lambda: timedelta(seconds=30))
    # every kind: who owns what, first rule that answers wins (label:K, annotation:K,
    # namespace-label:K, namespace:GLOB=VALUE)
    owner: list[str] = field(default_factory=list)
    team: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    platform: str | None = None  # assumed where the source does not say (static rows, a docker host)
    resolve: bool = True  # resolve tags and index digests through the registry
    # kubernetes: a watch request's server-side timeout; the watch then resumes from its resourceVersion
    watch_timeout: timedelta = field(default_factory=lambda: timedelta(minutes=5))


@dataclass(slots=True)
class InventorySettings:
    sources: list[InventorySourceSettings] = field(default_factory=list)
    # How long a tag → digest answer from a registry is trusted before it is asked again.
    resolve_ttl: timedelta = field(default_factory=lambda: timedelta(minutes=10))
    # Most seconds a watch holds changes before writing them (it writes sooner under load).
    watch_flush: timedelta = field(default_factory=lambda: timedelta(seconds=1))
    # How often `inventory watch` takes a new snapshot of a source that cannot be watched (docker, static).
    poll_interval: timedelta = field(default_factory=lambda: timedelta(minutes=5))


#: Alert channel kinds (``[[alerts.channels]] kind``), one module each in ``keelwatch.alerts.channels``.
CHANNEL_KINDS = ("webhook", "apprise", "jsonl", "stdout")
NOTIFY = ("immediate", "digest", "none")


@dataclass(slots=True)
class SeverityPolicy:
    """``[alerts.policy.SEVERITY]``: page now, queue into the next digest, or stay quiet; and the SLA."""

    notify: str = "immediate"
    due_days: float | None = None  # None: no deadline


def _policy(notify: str, due_days: float | None) -> Any:
    return field(default_factory=lambda: SeverityPolicy(notify, due_days))


@dataclass(slots=True)
class AlertPolicy:
    # The seeds' defaults: Critical → now, due in 72 h; High → now, 30 days; Medium/Low → the digest.
    # An unrated advisory pages like High: unrated is not harmless.
    critical: SeverityPolicy = _policy("immediate", 3)
    high: SeverityPolicy = _policy("immediate", 30)
    medium: SeverityPolicy = _policy("digest", 90)
    low: SeverityPolicy = _policy("digest", 180)
    unknown: SeverityPolicy = _policy("immediate", 30)


@dataclass(slots=True)
class AlertOverride:
    """``[[alerts.overrides]]``: for containers matching every given glob, another notify / due_days."""

    namespace: str | None = None
    owner: str | None = None
    team: str | None = None
    environment: str | None = None
    cluster: str | None = None
    severity: str | None = None  # only findings of this severity; None: all
    notify: str | None = None
    due_days: float | None = None


@dataclass(slots=True)
class ChannelSettings:
    """``[[alerts.channels]]``: where alerts go, and which ones."""

    name: str
    kind: str  # webhook, apprise, jsonl, stdout
    url: str | None = None  # webhook: http(s) URL; apprise: an Apprise URL (slack://…, mailto://…)
    path: str | None = None  # jsonl: the file appended to
    secret: str | None = None  # webhook: HMAC-SHA256 key of X-Keelwatch-Signature
    min_severity: str = "unknown"  # the least severe alert this channel takes
    owners: list[str] = field(default_factory=list)  # only alerts for these owners/teams (empty: all)
    environments: list[str] = field(default_factory=list)  # only these environments (empty: all)
    send_resolved: bool = False  # also say when an alert is resolved
    timeout: timedelta = field(default_factory=lambda: timedelta(seconds=10))


@dataclass(slots=True)
class AlertSettings:
    channels: list[ChannelSettings] = field(default_factory=list)
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    overrides: list[AlertOverride] = field(default_factory=list)
    kev_as_critical: bool = True  # a KEV-listed finding is handled as Critical
    epss_threshold: float = 0.5  # an open alert whose EPSS rises past this is announced again ("updated")
    alert_not_running: bool = False  # also alert for images no inventory shows running
    due_soon: timedelta = field(default_factory=lambda: timedelta(hours=24))  # "SLA near" warning
    max_attempts: int = 20  # after this many failures an outbox entry is parked as failed
    retry_max: timedelta = field(default_factory=lambda: timedelta(minutes=30))  # longest backoff
    # How long a sender holds a claimed message before another may take it (plus the channel timeout).
    lease: timedelta = field(default_factory=lambda: timedelta(seconds=60))


@dataclass(slots=True)
class ServiceSettings:
    """``[service]``: the cadences of ``keelwatch serve``'s loops."""

    feed_interval: timedelta = field(default_factory=lambda: timedelta(hours=1))  # sync + re-match + alerts
    inventory_interval: timedelta = field(default_factory=lambda: timedelta(minutes=2))  # one pass per source
    scan_interval: timedelta = field(default_factory=lambda: timedelta(minutes=1))  # pull and scan new digests
    deliver_interval: timedelta = field(default_factory=lambda: timedelta(seconds=5))  # the alert outbox
    snapshot_interval: timedelta = field(default_factory=lambda: timedelta(hours=24))  # posture history
    digest_interval: timedelta = field(default_factory=lambda: timedelta(hours=24))  # Medium/Low digest
    scans_per_turn: int = 20  # most new digests one turn of the scan queue pulls
    lease_ttl: timedelta = field(default_factory=lambda: timedelta(seconds=30))  # a dead holder's lease outlives it
    roles: list[str] = field(default_factory=lambda: ["all"])  # what `keelwatch worker` runs without --role


@dataclass(slots=True)
class RuntimeSettings:
    """``[runtime]``: behavioural baselines learned from runtime events (``keelwatch runtime ingest``)."""

    # A baseline learns for this long after its first event, or for ``learning_events`` events when
    # that is set (whichever comes first), then freezes: what it has not seen is a deviation.
    learning_period: timedelta = field(default_factory=lambda: timedelta(hours=24))
    learning_events: int | None = None
    # The peer grouping rule: an outbound peer counts as its address's /prefix (cloud endpoints rotate
    # within a block), or as one of ``peer_networks`` (CIDRs, e.g. the pod and service ranges) when
    # it falls in one; ``peer_ports = false`` ignores the port.
    peer_ipv4_prefix: int = 24
    peer_ipv6_prefix: int = 64
    peer_networks: list[str] = field(default_factory=list)
    peer_ports: bool = True
    # A new image digest of a container starts from the previous digest's baseline (and learns again).
    inherit_baseline: bool = False

    def __post_init__(self) -> None:
        import ipaddress

        if self.learning_period <= timedelta(0):
            raise ConfigError("runtime.learning_period: must be positive")
        if self.learning_events is not None and self.learning_events <= 0:
            raise ConfigError("runtime.learning_events: must be positive")
        if not 0 <= self.peer_ipv4_prefix <= 32:
            raise ConfigError("runtime.peer_ipv4_prefix: must be 0-32")
        if not 0 <= self.peer_ipv6_prefix <= 128:
            raise ConfigError("runtime.peer_ipv6_prefix: must be 0-128")
        for i, network in enumerate(self.peer_networks):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"runtime.peer_networks[{i}]: not a CIDR: {network!r}") from None


@dataclass(slots=True)
class Settings:
    store: StoreSettings = field(default_factory=StoreSettings)
    feeds: list[FeedSettings] = field(default_factory=list)
    scan: ScanSettings = field(default_factory=ScanSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    #: The file these settings came from; None when only defaults and the environment apply.
    source: Path | None = field(default=None, metadata={"internal": True})


def config_search_path() -> list[Path]:
    """Where ``load_settings`` looks when it is given no path, first match wins."""
    paths = []
    explicit = os.environ.get("KEELWATCH_CONFIG")
    if explicit:
        paths.append(Path(explicit).expanduser())
    paths.append(Path.cwd() / "keelwatch.toml")
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    paths.append(Path(config_home).expanduser() / "keelwatch" / "config.toml")
    paths.append(Path("/etc/keelwatch/config.toml"))
    return paths


def find_config() -> Path | None:
    explicit = os.environ.get("KEELWATCH_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        # Asked for by name: a missing file is a mistake to report, not a reason to fall through.
        if not path.is_file():
            raise ConfigError(f"KEELWATCH_CONFIG names {path}, which is not a file")
        return path
    for path in config_search_path():
        if path.is_file():
            return path
    return None


def load_settings(path: str | Path | None = None) -> Settings:
    """Settings from ``path`` (or the first file of the search path), then environment overrides."""
    source = Path(path).expanduser() if path is not None else find_config()
    if path is not None and source is not None and not source.is_file():
        raise ConfigError(f"config file {source} does not exist or is not a file")
    doc: dict[str, Any] = {}
    if source is not None:
        doc = _read_toml(source)
    settings = _build(Settings, doc, _Where(str(source) if source else "defaults", ""))
    settings.source = source.resolve() if source else None
    if source is not None:
        _resolve_relative_paths(settings, source.resolve().parent)
    _apply_environment(settings, os.environ)
    settings.store.url = _absolute_sqlite_url(settings.store.url, Path.cwd())
    _validate(settings, str(source) if source else "defaults")
    return settings


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a value came from, for error messages: a file and a dotted key, or an env variable."""

    origin: str
    key: str

    def child(self, key: str | int) -> _Where:
        if isinstance(key, int):
            return _Where(self.origin, f"{self.key}[{key}]")
        return _Where(self.origin, f"{self.key}.{key}" if self.key else key)

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self.key}: {problem}" if self.key else f"{self.origin}: {problem}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _public_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _build(cls: type, table: Any, where: _Where) -> Any:
    if not isinstance(table, dict):
        raise where.error(f"expected a table, got {_describe(table)}")
    hints = typing.get_type_hints(cls)
    # [[feeds]] tables are open: what the feed kind reads beyond name, kind and url goes to options.
    extra_key = "options" if cls is FeedSettings else None
    fields = {f.name: f for f in _public_fields(cls) if f.name != extra_key}
    values: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in table.items():
        f = fields.get(key)
        if f is not None:
            values[key] = _convert(value, hints[key], f, where.child(key), from_env=False)
        elif extra_key is not None:
            extras[key] = value
        else:
            known = ", ".join(sorted(fields)) or "none"
            raise where.child(key).error(f"unknown key (known keys here: {known})")
    if extra_key is not None:
        values[extra_key] = extras
    missing = [
        f.name for f in fields.values()
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise where.error(f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    return cls(**values)


def _convert(value: Any, tp: Any, f: dataclasses.Field[Any], where: _Where, *, from_env: bool) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if from_env and value == "":
            return None
        if len(args) != 1:
            raise TypeError(f"config field {where.key}: only `X | None` unions are supported")
        return _convert(value, args[0], f, where, from_env=from_env)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_env and isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise where.error(f"expected true or false, got {_describe(value)}")
    if tp is int:
        if f.metadata.get("unit") == "bytes" and isinstance(value, str):
            return _parse_size(value, where)
        if from_env and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer or a size like \"8 GiB\"" if f.metadata.get("unit") == "bytes" else "an integer"
        raise where.error(f"expected {expected}, got {_describe(value)}")
    if tp is float:
        if from_env and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise where.error(f"expected a number, got {_describe(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise where.error(f"expected a string, got {_describe(value)}")
    if tp is timedelta:
        return _parse_duration(value, where)
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if from_env and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise where.error(f"expected a list, got {_describe(value)}")
        if isinstance(item_type, type) and dataclasses.is_dataclass(item_type):
            return [_build(item_type, item, where.child(i)) for i, item in enumerate(value)]
        return [_convert(item, item_type, f, where.child(i), from_env=from_env) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise where.error(f"expected a table, got {_describe(value)}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)  # type: ignore[arg-type]
    raise TypeError(f"config field {where.key}: unsupported type {tp!r}")


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
                 "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


def _parse_size(text: str, where: _Where) -> int:
    match = _SIZE.match(text)
    if not match:
        raise where.error(f"not a size: {text!r} (write bytes, or e.g. \"512 MiB\", \"8 GiB\")")
    number, unit = match.groups()
    unit = (unit or "").lower()
    unit = unit[:-1] if unit.endswith("b") and unit != "b" else unit
    return int(float(number) * _SIZE_FACTORS[unit])


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(value: Any, where: _Where) -> timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.replace(" ", "").lower()
        if text and _DURATION_PART.sub("", text) == "":
            return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text)))
    raise where.error(f"expected a duration like \"30s\", \"5m\" or \"1h30m\", or seconds, got {_describe(value)}")


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


# --- environment -------------------------------------------------------------------------------------


def _apply_environment(settings: Settings, environ: typing.Mapping[str, str]) -> None:
    """``KEELWATCH_<SECTION>_<KEY>`` overrides a scalar key of a ``[section]`` table.

    Only sections that are single tables take overrides; lists of tables (``[[feeds]]``) cannot be
    spelled in one variable and stay file-only. Variables whose section is unknown are someone
    else's (``KEELWATCH_HOME``, ``KEELWATCH_CONFIG``) and are left alone.
    """
    sections = {
        f.name: f for f in _public_fields(Settings) if dataclasses.is_dataclass(typing.get_type_hints(Settings)[f.name])
    }
    overrides: list[tuple[str, str, str]] = []
    for var in environ:
        if var == DATABASE_URL_ENV:
            overrides.append((var, "store", "url"))
            continue
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, key = var[len(ENV_PREFIX):].lower().partition("_")
        if section in sections and key:
            overrides.append((var, section, key))
    # KEELWATCH_DATABASE_URL wins over KEELWATCH_STORE_URL: it is the name users are told about.
    overrides.sort(key=lambda o: o[0] == DATABASE_URL_ENV)
    for var, section, key in overrides:
        target = getattr(settings, section)
        cls = type(target)
        where = _Where(f"environment variable {var}", "")
        fields = {f.name: f for f in _public_fields(cls)}
        if key not in fields:
            known = ", ".join(f"{ENV_PREFIX}{section.upper()}_{k.upper()}" for k in sorted(fields))
            raise where.error(f"[{section}] has no key {key!r} (known: {known})")
        setattr(target, key, _convert(environ[var], typing.get_type_hints(cls)[key], fields[key], where, from_env=True))


# --- paths --------------------------------------------------------------------------------------------


def _absolute_sqlite_url(url: str, base: Path) -> str:
    """A SQLite URL whose file path is relative is made absolute against ``base``; others unchanged.

    Relative to the config file, not to wherever the command happens to run: a config that says
    ``url = "sqlite:///keelwatch.db"`` means the database beside it.
    """
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return url
    path, q, query = rest.partition("?")
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = base / resolved
    return f"{scheme}:///{resolved}{q}{query}"


def _resolve_relative_paths(settings: Settings, base: Path) -> None:
    settings.store.url = _absolute_sqlite_url(settings.store.url, base)
    for feed in settings.feeds:
        # A feed URL may be a plain local path; relative ones mean beside the config file too.
        if "://" not in feed.url and feed.url:
            path = Path(feed.url).expanduser()
            feed.url = str(path if path.is_absolute() else base / path)
    _resolve_inventory_paths(settings.inventory, base)
    for channel in settings.alerts.channels:
        if channel.path and not Path(channel.path).expanduser().is_absolute():
            channel.path = str(base / channel.path)


def _resolve_inventory_paths(inventory: InventorySettings, base: Path) -> None:
    for source in inventory.sources:
        for key in ("path", "kubeconfig"):
            value = getattr(source, key)
            if value:
                path = Path(value).expanduser()
                setattr(source, key, str(path if path.is_absolute() else base / path))


# --- checks that span keys ----------------------------------------------------------------------------


def _validate(settings: Settings, origin: str) -> None:
    where = _Where(origin, "")
    if not settings.store.url.strip():
        raise where.child("store").child("url").error("must not be empty")
    seen: set[str] = set()
    for i, feed in enumerate(settings.feeds):
        item = where.child("feeds").child(i)
        if not feed.name:
            raise item.child("name").error("must not be empty")
        if feed.name in seen:
            raise item.child("name").error(f"duplicate feed name {feed.name!r}")
        seen.add(feed.name)
        if feed.kind not in FEED_KINDS:
            raise item.child("kind").error(f"unknown feed kind {feed.kind!r} (one of: {', '.join(FEED_KINDS)})")
        if not feed.url:
            raise item.child("url").error("must not be empty")
    scan = where.child("scan")
    for key in ("max_layer_bytes", "max_file_bytes"):
        if getattr(settings.scan, key) <= 0:
            raise scan.child(key).error("must be a positive size")
    if settings.scan.platform is not None:
        try:
            Platform.parse(settings.scan.platform)
        except ValueError as exc:
            raise scan.child("platform").error(str(exc)) from None
    _validate_inventory(settings.inventory, where.child("inventory"))
    _validate_alerts(settings.alerts, where.child("alerts"))


def _validate_alerts(alerts: AlertSettings, where: _Where) -> None:
    labels = ("critical", "high", "medium", "low", "unknown")
    for label in labels:
        rule: SeverityPolicy = getattr(alerts.policy, label)
        if rule.notify not in NOTIFY:
            raise where.child("policy").child(label).child("notify").error(
                f"unknown value {rule.notify!r} (one of: {', '.join(NOTIFY)})")
        if rule.due_days is not None and rule.due_days <= 0:
            raise where.child("policy").child(label).child("due_days").error("must be positive")
    for i, override in enumerate(alerts.overrides):
        item = where.child("overrides").child(i)
        if override.notify is not None and override.notify not in NOTIFY:
            raise item.child("notify").error(f"unknown value {override.notify!r} (one of: {', '.join(NOTIFY)})")
        if override.severity is not None and override.severity not in labels:
            raise item.child("severity").error(f"unknown severity {override.severity!r}")
        if override.notify is None and override.due_days is None:
            raise item.error("an override needs notify or due_days")
    seen: set[str] = set()
    for i, channel in enumerate(alerts.channels):
        item = where.child("channels").child(i)
        if not channel.name or channel.name in seen:
            raise item.child("name").error(f"must be a unique, non-empty name (got {channel.name!r})")
        seen.add(channel.name)
        if channel.kind not in CHANNEL_KINDS:
            known = ", ".join(CHANNEL_KINDS)
            raise item.child("kind").error(f"unknown channel kind {channel.kind!r} (one of: {known})")
        if channel.kind in ("webhook", "apprise") and not channel.url:
            raise item.child("url").error(f"a {channel.kind} channel needs a url")
        if channel.kind == "webhook" and channel.url and not channel.url.startswith(("http://", "https://")):
            raise item.child("url").error("must be an http:// or https:// URL")
        if channel.kind == "jsonl" and not channel.path:
            raise item.child("path").error("a jsonl channel needs a path")
        if channel.min_severity not in labels:
            raise item.child("min_severity").error(f"unknown severity {channel.min_severity!r}")


def _validate_inventory(inventory: InventorySettings, where: _Where) -> None:
    from keelwatch.inventory.base import OwnershipRule

    seen: set[str] = set()
    for i, source in enumerate(inventory.sources):
        item = where.child("sources").child(i)
        if not source.name:
            raise item.child("name").error("must not be empty")
        if source.name in seen:
            raise item.child("name").error(f"duplicate source name {source.name!r}")
        seen.add(source.name)
        if source.kind not in INVENTORY_KINDS:
            known = ", ".join(INVENTORY_KINDS)
            raise item.child("kind").error(f"unknown source kind {source.kind!r} (one of: {known})")
        if source.kind == "static":
            if bool(source.path) == bool(source.url):
                raise item.error("a static source needs exactly one of path or url")
            if source.url and not source.url.startswith(("http://", "https://")):
                raise item.child("url").error("must be an http:// or https:// URL (use path for a file)")
            if source.format not in (None, "csv", "json", "yaml"):
                raise item.child("format").error(f"unknown format {source.format!r} (csv, json or yaml)")
        if source.kind == "kubernetes" and source.in_cluster and (source.kubeconfig or source.context):
            raise item.error("in_cluster uses the service account; it takes no kubeconfig or context")
        if source.page_size <= 0:
            raise item.child("page_size").error("must be positive")
        for key in ("owner", "team", "environment"):
            for j, rule in enumerate(getattr(source, key)):
                try:
                    OwnershipRule.parse(rule)
                except ValueError as exc:
                    raise item.child(key).child(j).error(str(exc)) from None
        if source.platform is not None:
            try:
                Platform.parse(source.platform)
            except ValueError as exc:
                raise item.child("platform").error(str(exc)) from None
