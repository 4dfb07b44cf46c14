"""The event-source registry: every source module is listed once, under its module's name."""

import importlib
import pkgutil

import pytest

import keelwatch.runtime as runtime_pkg
from keelwatch.runtime import SOURCES, SOURCES_BY_NAME, get

# Modules of runtime/ that are machinery, not event sources.
NOT_SOURCES = {"base", "events", "baseline", "verify", "layerfiles", "ingest", "inuse"}


def test_every_source_module_is_registered_under_its_module_name():
    modules = {m.name for m in pkgutil.iter_modules(runtime_pkg.__path__)} - NOT_SOURCES
    assert modules == {s.name for s in SOURCES}
    for source in SOURCES:
        assert type(source).__module__ == importlib.import_module(f"keelwatch.runtime.{source.name}").__name__
        assert isinstance(source.version, int) and source.version >= 1
    assert len(SOURCES_BY_NAME) == len(SOURCES)


def test_unknown_sensor_is_an_error():
    with pytest.raises(ValueError, match="unknown sensor"):
        get("sysdig")
