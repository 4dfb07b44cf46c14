"""The database: SQLAlchemy 2 tables, queries and Alembic migrations, on SQLite or PostgreSQL.

Knows no HTTP and no CLI. Other areas use ``Store``'s methods, or run their own queries inside
``Store.session()`` against the tables in ``keelwatch.store.tables``.
"""

from keelwatch.store.catalog import ImagePackage, ImageSummary, ReferenceRecord, package_key
from keelwatch.store.database import Store

__all__ = ["ImagePackage", "ImageSummary", "ReferenceRecord", "Store", "package_key"]
