"""Alembic migrations of the keelwatch schema, run by ``keelwatch.store.migrate`` (no alembic.ini)."""
