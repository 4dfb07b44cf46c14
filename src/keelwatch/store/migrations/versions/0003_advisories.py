"""advisories: the knowledge base (advisories, affected, exploitability) and its sync bookkeeping
(feed_state, syncs, journal, problems)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "advisories",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("advisory_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("modified", TIME, nullable=True),
        sa.Column("published", TIME, nullable=True),
        sa.Column("withdrawn", TIME, nullable=True),
        sa.Column("aliases", JSON, nullable=False),
        sa.Column("related", JSON, nullable=False),
        sa.Column("upstream", JSON, nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("details", sa.String(), nullable=False),
        sa.Column("severity", JSON, nullable=False),
        sa.Column("references", JSON, nullable=False),
        sa.Column("database_specific", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_advisories"),
        sa.UniqueConstraint("source", "advisory_id", name="uq_advisories_source_advisory_id"),
    )
    op.create_index("ix_advisories_advisory_id", "advisories", ["advisory_id"])

    op.create_table(
        "affected",
        sa.Column("advisory", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ecosystem", sa.String(), nullable=False),
        sa.Column("ecosystem_base", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("match_name", sa.String(), nullable=False),
        sa.Column("ranges", JSON, nullable=False),
        sa.Column("versions", JSON, nullable=False),
        sa.Column("purl", sa.String(), nullable=False),
        sa.Column("severity", JSON, nullable=False),
        sa.Column("ecosystem_specific", sa.String(), nullable=False),
        sa.Column("database_specific", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["advisory"], ["advisories.id"], name="fk_affected_advisory_advisories",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("advisory", "position", name="pk_affected"),
    )
    op.create_index("ix_affected_ecosystem_match_name", "affected", ["ecosystem", "match_name"])
    op.create_index("ix_affected_ecosystem_base_match_name", "affected", ["ecosystem_base", "match_name"])

    op.create_table(
        "exploitability",
        sa.Column("cve", sa.String(), nullable=False),
        sa.Column("kev_date_added", sa.String(), nullable=False),
        sa.Column("kev_due_date", sa.String(), nullable=False),
        sa.Column("kev_ransomware", sa.String(), nullable=False),
        sa.Column("kev_source", sa.String(), nullable=True),
        sa.Column("epss", sa.Double(), nullable=True),
        sa.Column("epss_percentile", sa.Double(), nullable=True),
        sa.Column("epss_date", sa.String(), nullable=False),
        sa.Column("epss_source", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("cve", name="pk_exploitability"),
    )
    op.create_index("ix_exploitability_kev_source", "exploitability", ["kev_source"])
    op.create_index("ix_exploitability_epss_source", "exploitability", ["epss_source"])

    op.create_table(
        "feed_state",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=True),
        sa.Column("last_attempt", TIME, nullable=True),
        sa.Column("last_success", TIME, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("last_sync", sa.Integer(), nullable=True),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Integer(), nullable=False),
        sa.Column("exploitability", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_feed_state"),
    )

    op.create_table(
        "syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("started", TIME, nullable=False),
        sa.Column("finished", TIME, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("exploitability", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_syncs"),
    )
    op.create_index("ix_syncs_feed", "syncs", ["feed"])
    op.create_index("ix_syncs_finished", "syncs", ["finished"])

    op.create_table(
        "journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("advisory_id", sa.String(), nullable=False),
        sa.Column("change", sa.String(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("packages", JSON, nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.ForeignKeyConstraint(["sync"], ["syncs.id"], name="fk_journal_sync_syncs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
    )
    op.create_index("ix_journal_sync", "journal", ["sync"])

    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["sync"], ["syncs.id"], name="fk_problems_sync_syncs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_problems"),
    )
    op.create_index("ix_problems_sync", "problems", ["sync"])


def downgrade() -> None:
    op.drop_table("problems")
    op.drop_table("journal")
    op.drop_table("syncs")
    op.drop_table("feed_state")
    op.drop_table("exploitability")
    op.drop_table("affected")
    op.drop_table("advisories")
