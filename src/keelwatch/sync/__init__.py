"""Keeping the knowledge base current: the sync engine (feeds → store, with a change journal) and
export/import of the whole knowledge base as one checksummed file for air-gapped installs."""

from keelwatch.sync.engine import SyncReport, sync_all, sync_feed

__all__ = ["SyncReport", "sync_all", "sync_feed"]
