"""findings: package search keys, findings, aliases, unknowns, image scans (severity counts),
finding events, rematch watermark

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('package_search_keys',
    sa.Column('package_id', sa.BigInteger(), nullable=False),
    sa.Column('ecosystem', sa.String(), nullable=False),
    sa.Column('match_name', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_package_search_keys_package_id_packages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('package_id', 'ecosystem', 'match_name', name=op.f('pk_package_search_keys'))
    )
    with op.batch_alter_table('package_search_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_package_search_keys_ecosystem_match_name'), ['ecosystem', 'match_name'],
                              unique=False)

    op.create_table('finding_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(), nullable=False),
    sa.Column('finding_key', sa.String(), nullable=False),
    sa.Column('advisory_id', sa.String(), nullable=False),
    sa.Column('aliases', JSON, nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('package_ecosystem', sa.String(), nullable=False),
    sa.Column('package_name', sa.String(), nullable=False),
    sa.Column('package_version', sa.String(), nullable=False),
    sa.Column('severity', sa.String(), nullable=False),
    sa.Column('sync', sa.Integer(), nullable=True),
    sa.Column('time', TIME, nullable=False),
    sa.Column('changes', JSON, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding_events'))
    )
    with op.batch_alter_table('finding_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_events_finding_key'), ['finding_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_events_image_digest'), ['image_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_events_sync'), ['sync'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_events_time'), ['time'], unique=False)

    op.create_table('findings',
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('advisory_id', sa.String(), nullable=False),
    sa.Column('advisory_ids', JSON, nullable=False),
    sa.Column('aliases', JSON, nullable=False),
    sa.Column('upstream', JSON, nullable=False),
    sa.Column('summary', sa.String(), nullable=False),
    sa.Column('package_uid', sa.String(), nullable=False),
    sa.Column('package_ecosystem', sa.String(), nullable=False),
    sa.Column('package_name', sa.String(), nullable=False),
    sa.Column('package_version', sa.String(), nullable=False),
    sa.Column('package_purl', sa.String(), nullable=False),
    sa.Column('package_kind', sa.String(), nullable=False),
    sa.Column('package_source_name', sa.String(), nullable=False),
    sa.Column('package_source_version', sa.String(), nullable=False),
    sa.Column('package_arch', sa.String(), nullable=False),
    sa.Column('package_location', sa.String(), nullable=False),
    sa.Column('installed_version', sa.String(), nullable=False),
    sa.Column('fixed_versions', JSON, nullable=False),
    sa.Column('fix_available', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.String(), nullable=False),
    sa.Column('severity_source', sa.String(), nullable=False),
    sa.Column('cvss_score', sa.Double(), nullable=True),
    sa.Column('cvss_vector', sa.String(), nullable=False),
    sa.Column('cvss_source', sa.String(), nullable=False),
    sa.Column('kev', sa.Boolean(), nullable=False),
    sa.Column('kev_date_added', sa.String(), nullable=False),
    sa.Column('epss', sa.Double(), nullable=True),
    sa.Column('epss_percentile', sa.Double(), nullable=True),
    sa.Column('layer_digest', sa.String(), nullable=False),
    sa.Column('details', JSON, nullable=False),
    sa.Column('sources', JSON, nullable=False),
    sa.Column('first_seen', TIME, nullable=False),
    sa.Column('last_seen', TIME, nullable=False),
    sa.Column('updated', TIME, nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_findings'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_findings_advisory_id'), ['advisory_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_image_digest_package_uid'), ['image_digest', 'package_uid'],
                              unique=False)

    op.create_table('image_scans',
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('scanned_at', TIME, nullable=False),
    sa.Column('sync', sa.Integer(), nullable=True),
    sa.Column('critical', sa.Integer(), nullable=False),
    sa.Column('high', sa.Integer(), nullable=False),
    sa.Column('medium', sa.Integer(), nullable=False),
    sa.Column('low', sa.Integer(), nullable=False),
    sa.Column('unknown', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('kev', sa.Integer(), nullable=False),
    sa.Column('fixable', sa.Integer(), nullable=False),
    sa.Column('unknowns', sa.Integer(), nullable=False),
    sa.Column('no_data', JSON, nullable=False),
    sa.PrimaryKeyConstraint('image_digest', name=op.f('pk_image_scans'))
    )
    op.create_table('image_unknowns',
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('ecosystem', sa.String(), nullable=False),
    sa.Column('package_uid', sa.String(), nullable=True),
    sa.Column('package_name', sa.String(), nullable=False),
    sa.Column('package_version', sa.String(), nullable=False),
    sa.Column('advisory_ids', JSON, nullable=False),
    sa.Column('package_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('image_digest', 'position', name=op.f('pk_image_unknowns'))
    )
    op.create_table('rematch_state',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('last_sync', sa.Integer(), nullable=False),
    sa.Column('updated', TIME, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_rematch_state'))
    )
    op.create_table('finding_aliases',
    sa.Column('finding_key', sa.String(), nullable=False),
    sa.Column('alias', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['finding_key'], ['findings.key'], name=op.f('fk_finding_aliases_finding_key_findings'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('finding_key', 'alias', name=op.f('pk_finding_aliases'))
    )
    with op.batch_alter_table('finding_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_aliases_alias'), ['alias'], unique=False)



def downgrade() -> None:
    op.drop_table('package_search_keys')
    with op.batch_alter_table('finding_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_aliases_alias'))

    op.drop_table('finding_aliases')
    op.drop_table('rematch_state')
    op.drop_table('image_unknowns')
    op.drop_table('image_scans')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_image_digest_package_uid'))
        batch_op.drop_index(batch_op.f('ix_findings_advisory_id'))

    op.drop_table('findings')
    with op.batch_alter_table('finding_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_events_time'))
        batch_op.drop_index(batch_op.f('ix_finding_events_sync'))
        batch_op.drop_index(batch_op.f('ix_finding_events_image_digest'))
        batch_op.drop_index(batch_op.f('ix_finding_events_finding_key'))

    op.drop_table('finding_events')
