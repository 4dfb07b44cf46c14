"""inventory: inventory sources (last sync, watch resourceVersion) and container records

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('containers',
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('cluster', sa.String(), nullable=False),
    sa.Column('namespace', sa.String(), nullable=False),
    sa.Column('workload_kind', sa.String(), nullable=False),
    sa.Column('workload', sa.String(), nullable=False),
    sa.Column('pod', sa.String(), nullable=False),
    sa.Column('instance', sa.String(), nullable=False),
    sa.Column('container', sa.String(), nullable=False),
    sa.Column('container_type', sa.String(), nullable=False),
    sa.Column('image', sa.String(), nullable=False),
    sa.Column('reference', sa.String(), nullable=True),
    sa.Column('image_id', sa.String(), nullable=False),
    sa.Column('digest', sa.String(), nullable=True),
    sa.Column('index_digest', sa.String(), nullable=True),
    sa.Column('tag_digest', sa.String(), nullable=True),
    sa.Column('platform', sa.String(), nullable=True),
    sa.Column('node', sa.String(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('labels', JSON, nullable=False),
    sa.Column('annotations', JSON, nullable=False),
    sa.Column('owner', sa.String(), nullable=False),
    sa.Column('team', sa.String(), nullable=False),
    sa.Column('environment', sa.String(), nullable=False),
    sa.Column('resolution_error', sa.String(), nullable=True),
    sa.Column('problem', sa.String(), nullable=True),
    sa.Column('fingerprint', sa.String(), nullable=False),
    sa.Column('first_seen', TIME, nullable=False),
    sa.Column('last_seen', TIME, nullable=False),
    sa.Column('ended_at', TIME, nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_containers'))
    )
    with op.batch_alter_table('containers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_containers_digest'), ['digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_containers_namespace'), ['namespace'], unique=False)
        batch_op.create_index(batch_op.f('ix_containers_reference'), ['reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_containers_source_ended_at'), ['source', 'ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_containers_source_namespace_pod_instance'),
                              ['source', 'namespace', 'pod', 'instance'], unique=False)

    op.create_table('inventory_sources',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('error', sa.String(), nullable=False),
    sa.Column('last_attempt', TIME, nullable=True),
    sa.Column('last_success', TIME, nullable=True),
    sa.Column('resource_version', sa.String(), nullable=True),
    sa.Column('containers', sa.Integer(), nullable=False),
    sa.Column('problems', JSON, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_inventory_sources'))
    )


def downgrade() -> None:
    op.drop_table('inventory_sources')
    op.drop_table('containers')
