"""The feed registry: every feed module is listed once, kinds agree with module names and config."""

import importlib
import pkgutil

import pytest

import keelwatch.feeds as feeds_pkg
from keelwatch.config import FEED_KINDS
from keelwatch.errors import ConfigError
from keelwatch.feeds import FEEDS, FEEDS_BY_KIND, _index, get

# Modules of feeds/ that are machinery, not feeds.
NOT_FEEDS = {"base", "fetch", "decode", "cvss"}


def test_every_feed_module_is_registered_under_its_module_name():
    modules = {m.name for m in pkgutil.iter_modules(feeds_pkg.__path__)} - NOT_FEEDS
    registered = {cls.kind.replace("-", "_") for cls in FEEDS}
    assert modules == registered, "a feed module is missing from FEEDS (or a helper module is unlisted in NOT_FEEDS)"
    for cls in FEEDS:
        module = importlib.import_module(f"keelwatch.feeds.{cls.kind.replace('-', '_')}")
        assert cls.__module__ == module.__name__


def test_registered_kinds_are_the_kinds_config_accepts():
    assert set(FEEDS_BY_KIND) == set(FEED_KINDS)


def test_duplicate_kind_fails():
    with pytest.raises(RuntimeError, match="registered twice"):
        _index((FEEDS[0], FEEDS[0]))


def test_get_configures_and_refuses_unknowns():
    for kind in FEEDS_BY_KIND:
        feed = get(kind)
        assert feed.kind == kind
        assert callable(feed.fetch) and callable(feed.parse)
    with pytest.raises(ConfigError, match="unknown feed kind"):
        get("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        get("osv", {"max_byts": 5})
    assert get("osv", {"max_bytes": "1 MiB"}).fetch_options.max_bytes == 1 << 20
