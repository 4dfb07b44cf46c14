"""file_lists: each package's owned files stored once per distinct list, not once per image

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import hashlib
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The shapes this migration moves data between, frozen here: the models will move on.
image_packages = sa.table(
    "image_packages", sa.column("image_id", sa.Integer()), sa.column("position", sa.Integer()),
    sa.column("files", sa.LargeBinary()), sa.column("files_id", sa.LargeBinary()),
)
file_lists = sa.table("file_lists", sa.column("id", sa.LargeBinary()), sa.column("files", sa.LargeBinary()))


def upgrade() -> None:
    op.create_table(
        "file_lists",
        sa.Column("id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("files", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_file_lists"),
    )
    with op.batch_alter_table("image_packages") as batch:
        batch.add_column(sa.Column("files_id", sa.LargeBinary(length=16), nullable=True))
        batch.create_foreign_key("fk_image_packages_files_id_file_lists", "file_lists", ["files_id"], ["id"])

    # Lists already stored move over, keyed by the hash of their uncompressed content.
    connection = op.get_bind()
    seen: set[bytes] = set()
    rows = connection.execute(sa.select(image_packages.c.image_id, image_packages.c.position, image_packages.c.files)
                              .where(image_packages.c.files.is_not(None))).all()
    for image_id, position, blob in rows:
        list_id = hashlib.sha256(zlib.decompress(blob)).digest()[:16]
        if list_id not in seen:
            connection.execute(sa.insert(file_lists).values(id=list_id, files=blob))
            seen.add(list_id)
        connection.execute(sa.update(image_packages).values(files_id=list_id)
                           .where(image_packages.c.image_id == image_id, image_packages.c.position == position))

    with op.batch_alter_table("image_packages") as batch:
        batch.drop_column("files")


def downgrade() -> None:
    with op.batch_alter_table("image_packages") as batch:
        batch.add_column(sa.Column("files", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.update(image_packages).values(
        files=sa.select(file_lists.c.files).where(file_lists.c.id == image_packages.c.files_id).scalar_subquery()))
    with op.batch_alter_table("image_packages") as batch:
        batch.drop_constraint("fk_image_packages_files_id_file_lists", type_="foreignkey")
        batch.drop_column("files_id")
    op.drop_table("file_lists")
