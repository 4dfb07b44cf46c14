"""catalog: images, their references, layers, packages and warnings

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_digest", sa.String(), nullable=False),
        sa.Column("index_digest", sa.String(), nullable=True),
        sa.Column("config_digest", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("os_id", sa.String(), nullable=True),
        sa.Column("os_version_id", sa.String(), nullable=True),
        sa.Column("os_pretty_name", sa.String(), nullable=True),
        sa.Column("os_codename", sa.String(), nullable=True),
        sa.Column("ecosystem", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("repo_tags", JSON, nullable=False),
        sa.Column("created", TIME, nullable=True),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("source_kind", sa.String(), nullable=False),
        sa.Column("cataloged_at", TIME, nullable=False),
        sa.Column("catalogers", JSON, nullable=False),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("extra", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("manifest_digest", name="uq_images_manifest_digest"),
    )
    op.create_index("ix_images_ecosystem", "images", ["ecosystem"])
    op.create_index("ix_images_name", "images", ["name"])

    op.create_table(
        "image_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("manifest_digest", sa.String(), nullable=False),
        sa.Column("index_digest", sa.String(), nullable=True),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_references"),
        sa.UniqueConstraint("name", "manifest_digest", name="uq_image_references_name_manifest_digest"),
    )
    op.create_index("ix_image_references_manifest_digest", "image_references", ["manifest_digest"])

    op.create_table(
        "layers",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("diff_id", sa.String(), nullable=False),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_layers_image_id_images", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id", "index", name="pk_layers"),
    )
    op.create_index("ix_layers_digest", "layers", ["digest"])

    op.create_table(
        "packages",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ecosystem", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("purl", sa.String(), nullable=False),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_version", sa.String(), nullable=False),
        sa.Column("arch", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_packages"),
    )
    op.create_index("ix_packages_ecosystem_name", "packages", ["ecosystem", "name"])
    op.create_index("ix_packages_ecosystem_source_name", "packages", ["ecosystem", "source_name"])

    op.create_table(
        "image_packages",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.BigInteger(), nullable=False),
        sa.Column("layer_digest", sa.String(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("found_by", sa.String(), nullable=False),
        sa.Column("licenses", JSON, nullable=False),
        sa.Column("files", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_image_packages_image_id_images",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name="fk_image_packages_package_id_packages"),
        sa.PrimaryKeyConstraint("image_id", "position", name="pk_image_packages"),
    )
    op.create_index("ix_image_packages_package_id_image_id", "image_packages", ["package_id", "image_id"])

    op.create_table(
        "catalog_warnings",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("layer_digest", sa.String(), nullable=False),
        sa.Column("cataloger", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_catalog_warnings_image_id_images",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id", "position", name="pk_catalog_warnings"),
    )


def downgrade() -> None:
    op.drop_table("catalog_warnings")
    op.drop_table("image_packages")
    op.drop_table("packages")
    op.drop_table("layers")
    op.drop_table("image_references")
    op.drop_table("images")
