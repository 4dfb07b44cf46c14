"""runtime verification: baselines, deviations, unattributed events, observations, image file lists

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('runtime_baselines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster', sa.String(), nullable=False),
    sa.Column('namespace', sa.String(), nullable=False),
    sa.Column('workload', sa.String(), nullable=False),
    sa.Column('container', sa.String(), nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('phase', sa.String(), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events_seen', sa.Integer(), nullable=False),
    sa.Column('inherited_from', sa.String(), nullable=False),
    sa.Column('state', JSON, nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runtime_baselines')),
    sa.UniqueConstraint('cluster', 'namespace', 'workload', 'container', 'image_digest',
                        name='uq_runtime_baselines_key')
    )
    with op.batch_alter_table('runtime_baselines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runtime_baselines_workload'), ['workload'], unique=False)

    op.create_table('runtime_deviations',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('severity', sa.String(), nullable=False),
    sa.Column('cluster', sa.String(), nullable=False),
    sa.Column('namespace', sa.String(), nullable=False),
    sa.Column('workload', sa.String(), nullable=False),
    sa.Column('container', sa.String(), nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('detail', sa.String(), nullable=False),
    sa.Column('item', JSON, nullable=False),
    sa.Column('evidence', JSON, nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_by', sa.String(), nullable=False),
    sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runtime_deviations'))
    )
    with op.batch_alter_table('runtime_deviations', schema=None) as batch_op:
        batch_op.create_index('ix_runtime_deviations_baseline',
                              ['cluster', 'namespace', 'workload', 'container', 'image_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_runtime_deviations_last_seen'), ['last_seen'], unique=False)

    op.create_table('runtime_image_files',
    sa.Column('digest', sa.String(), nullable=False),
    sa.Column('files', sa.LargeBinary(), nullable=False),
    sa.Column('links', JSON, nullable=False),
    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_runtime_image_files'))
    )
    op.create_table('runtime_observations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('container_key', sa.String(), nullable=False),
    sa.Column('cluster', sa.String(), nullable=False),
    sa.Column('namespace', sa.String(), nullable=False),
    sa.Column('workload', sa.String(), nullable=False),
    sa.Column('pod', sa.String(), nullable=False),
    sa.Column('container', sa.String(), nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('path', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runtime_observations')),
    sa.UniqueConstraint('container_key', 'path', name=op.f('uq_runtime_observations_container_key_path'))
    )
    with op.batch_alter_table('runtime_observations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runtime_observations_image_digest'), ['image_digest'], unique=False)

    op.create_table('runtime_unattributed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received', sa.DateTime(timezone=True), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('container_id', sa.String(), nullable=False),
    sa.Column('namespace', sa.String(), nullable=False),
    sa.Column('pod', sa.String(), nullable=False),
    sa.Column('event', JSON, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runtime_unattributed'))
    )
    with op.batch_alter_table('runtime_unattributed', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runtime_unattributed_container_id'), ['container_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_runtime_unattributed_namespace_pod'), ['namespace', 'pod'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runtime_unattributed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runtime_unattributed_namespace_pod'))
        batch_op.drop_index(batch_op.f('ix_runtime_unattributed_container_id'))

    op.drop_table('runtime_unattributed')
    with op.batch_alter_table('runtime_observations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runtime_observations_image_digest'))

    op.drop_table('runtime_observations')
    op.drop_table('runtime_image_files')
    with op.batch_alter_table('runtime_deviations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runtime_deviations_last_seen'))
        batch_op.drop_index('ix_runtime_deviations_baseline')

    op.drop_table('runtime_deviations')
    with op.batch_alter_table('runtime_baselines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runtime_baselines_workload'))

    op.drop_table('runtime_baselines')
