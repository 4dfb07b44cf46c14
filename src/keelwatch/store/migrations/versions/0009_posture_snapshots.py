"""posture snapshots

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('posture_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('grouping', sa.String(), nullable=False),
    sa.Column('keys', JSON, nullable=False),
    sa.Column('containers', sa.Integer(), nullable=False),
    sa.Column('counts', JSON, nullable=False),
    sa.Column('kev', sa.Integer(), nullable=False),
    sa.Column('fixable', sa.Integer(), nullable=False),
    sa.Column('risk', sa.Double(), nullable=False),
    sa.Column('unknown_posture', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posture_snapshots'))
    )
    with op.batch_alter_table('posture_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posture_snapshots_grouping_taken_at'), ['grouping', 'taken_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posture_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posture_snapshots_grouping_taken_at'))

    op.drop_table('posture_snapshots')
