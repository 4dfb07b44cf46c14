"""The cataloger registry: every cataloger module is listed once, names agree with module names."""

import importlib
import pkgutil

import keelwatch.catalog as catalog_pkg
from keelwatch.catalog import CATALOGERS, CATALOGERS_BY_NAME, select

# Modules of catalog/ that are machinery, not catalogers.
NOT_CATALOGERS = {"base", "walker", "purl", "osrelease", "binfmt", "rpmdb"}


def test_every_cataloger_module_is_registered_under_its_module_name():
    modules = {m.name for m in pkgutil.iter_modules(catalog_pkg.__path__)} - NOT_CATALOGERS
    registered = {c.name for c in CATALOGERS}
    assert modules == registered, "a cataloger module is missing from CATALOGERS (or a helper module is unlisted)"
    for c in CATALOGERS:
        module = importlib.import_module(f"keelwatch.catalog.{c.name}")
        assert type(c).__module__ == module.__name__
        assert isinstance(c.version, int) and c.version >= 1
        assert isinstance(c.uses_companions, bool)


def test_names_are_unique_and_selectable():
    assert len(CATALOGERS_BY_NAME) == len(CATALOGERS)
    assert [c.name for c in select(["dpkg"])] == ["dpkg"]
    try:
        select(["nope"])
    except ValueError as exc:
        assert "unknown cataloger" in str(exc)
    else:
        raise AssertionError("an unknown cataloger name must be an error")
