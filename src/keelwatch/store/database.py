"""``Store``: the one door to the database for every area of keelwatch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from keelwatch.config import Settings, StoreSettings
from keelwatch.errors import StoreError
from keelwatch.model import Advisory, CatalogResult, Exploitability
from keelwatch.store import advisories, catalog
from keelwatch.store import migrate as migrations
from keelwatch.store.engine import WRITE_OPTION, create_engine, display_url, parse_url, translate_errors


class Store:
    """A keelwatch database, SQLite or PostgreSQL, at the current schema.

    ``Store(settings)`` or ``Store.open(url)``; opening upgrades the schema unless told not to.
    Each method is one transaction. Other areas run their own queries in ``session()``.
    """

    def __init__(self, settings: Settings, *, migrate: bool | None = None) -> None:
        self.url = parse_url(settings.store.url)
        with translate_errors(self.url):
            self.engine: Engine = create_engine(self.url)
        # Writes go through an engine whose transactions take SQLite's write lock up front.
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        try:
            if settings.store.auto_migrate if migrate is None else migrate:
                self.migrate()
            else:
                self._check_schema()
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        return cls(Settings(store=StoreSettings(url=url)), migrate=migrate)

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: for the few queries that must differ."""
        return self.engine.dialect.name

    # --- schema -----------------------------------------------------------------------------------

    def migrate(self) -> bool:
        """Upgrade the schema to the newest migration; True when anything was applied."""
        with translate_errors(self.url):
            return migrations.upgrade(self.engine)

    def _check_schema(self) -> None:
        with translate_errors(self.url):
            behind = migrations.needs_upgrade(self.engine)
        if behind:
            raise StoreError(f"the database {display_url(self.url)} is not at the current schema",
                             hint="run `keelwatch db migrate`, or set [store] auto_migrate = true")

    # --- transactions -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``write=False`` for read-only work: on SQLite it does not wait for (or hold) the write lock.
        Database failures come out as ``StoreError``; the caller's own exceptions pass unchanged.
        """
        with translate_errors(self.url), Session(self._write_engine if write else self.engine,
                                                  expire_on_commit=False) as session, session.begin():
            yield session

    # --- catalogs ---------------------------------------------------------------------------------

    def save_catalog(self, result: CatalogResult) -> int:
        """Store an image's catalog, atomically replacing the one of the same digest; the image id."""
        with self.session() as session:
            return catalog.save_catalog(session, result)

    def load_catalog(self, manifest_digest: str) -> CatalogResult | None:
        with self.session(write=False) as session:
            return catalog.load_catalog(session, manifest_digest)

    def has_catalog(self, manifest_digest: str, catalogers: dict[str, int]) -> bool:
        """True only if this digest is stored as cataloged by exactly these cataloger versions."""
        with self.session(write=False) as session:
            return catalog.has_catalog(session, manifest_digest, catalogers)

    def record_reference(self, reference: str, name: str, manifest_digest: str, index_digest: str | None,
                         *, seen: datetime | None = None) -> None:
        """Note that ``name`` (given as ``reference``) resolved to ``manifest_digest``, now or at ``seen``."""
        with self.session() as session:
            catalog.record_reference(session, reference, name, manifest_digest, index_digest, seen=seen)

    def reference_history(self, name: str) -> list[catalog.ReferenceRecord]:
        """What ``name`` resolved to over time, most recently seen first."""
        with self.session(write=False) as session:
            return catalog.reference_history(session, name)

    def list_images(self) -> list[catalog.ImageSummary]:
        with self.session(write=False) as session:
            return catalog.list_images(session)

    def images_with_package(self, ecosystem: str, name: str, *, by_source: bool = False) -> list[catalog.ImagePackage]:
        """Images carrying package ``name`` of ``ecosystem`` (or built from source package ``name``)."""
        with self.session(write=False) as session:
            return catalog.images_with_package(session, ecosystem, name, by_source=by_source)

    # --- the knowledge base (written by keelwatch.sync) --------------------------------------------

    def advisories_for(self, ecosystem: str, names: Iterable[str], *,
                       include_withdrawn: bool = False) -> list[Advisory]:
        """Advisories naming any of ``names`` in ``ecosystem`` (``Debian:12`` exactly; ``Debian``: any release)."""
        with self.session(write=False) as session:
            return advisories.advisories_for(session, ecosystem, names, include_withdrawn=include_withdrawn)

    def ecosystems(self) -> set[str]:
        """Every ecosystem some stored advisory names: "no data for Debian:13" is then visible."""
        with self.session(write=False) as session:
            return advisories.ecosystems(session)

    def get_advisory(self, advisory_id: str, source: str | None = None) -> Advisory | None:
        with self.session(write=False) as session:
            return advisories.get_advisory(session, advisory_id, source)

    def exploitability(self, cves: Iterable[str]) -> dict[str, Exploitability]:
        """KEV and EPSS facts by CVE; CVEs nobody says anything about are absent."""
        with self.session(write=False) as session:
            return advisories.exploitability(session, cves)

    def changes_since(self, since: int | datetime | None) -> list[advisories.JournalEntry]:
        """Journal entries of the syncs after sync id ``since``, or finished at or after a time."""
        with self.session(write=False) as session:
            return advisories.changes_since(session, since)

    def feed_status(self) -> list[advisories.FeedStatus]:
        with self.session(write=False) as session:
            return advisories.feed_status(session)

    def latest_sync_id(self) -> int | None:
        with self.session(write=False) as session:
            return advisories.latest_sync_id(session)
