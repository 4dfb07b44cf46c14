"""alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('alert_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.String(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=False),
    sa.Column('sender', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_attempts'))
    )
    with op.batch_alter_table('alert_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_attempts_outbox_id'), ['outbox_id'], unique=False)

    op.create_table('alert_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(), nullable=False),
    sa.Column('alert_id', sa.String(), nullable=True),
    sa.Column('channel', sa.String(), nullable=False),
    sa.Column('event', sa.String(), nullable=False),
    sa.Column('body', JSON, nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_alert_outbox_idempotency_key'))
    )
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_outbox_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_outbox_delivered_at_next_attempt'), ['delivered_at', 'next_attempt'],
                              unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('advisory', sa.String(), nullable=False),
    sa.Column('advisory_ids', JSON, nullable=False),
    sa.Column('aliases', JSON, nullable=False),
    sa.Column('image_digest', sa.String(), nullable=False),
    sa.Column('severity', sa.String(), nullable=False),
    sa.Column('finding_severity', sa.String(), nullable=False),
    sa.Column('kev', sa.Boolean(), nullable=False),
    sa.Column('notify', sa.String(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('body', JSON, nullable=False),
    sa.Column('first_raised', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(), nullable=False),
    sa.Column('digested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_soon_sent', sa.Boolean(), nullable=False),
    sa.Column('breach_sent', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_advisory'), ['advisory'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_image_digest'), ['image_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_state'))
        batch_op.drop_index(batch_op.f('ix_alerts_image_digest'))
        batch_op.drop_index(batch_op.f('ix_alerts_advisory'))

    op.drop_table('alerts')
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_outbox_delivered_at_next_attempt'))
        batch_op.drop_index(batch_op.f('ix_alert_outbox_alert_id'))

    op.drop_table('alert_outbox')
    with op.batch_alter_table('alert_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_attempts_outbox_id'))

    op.drop_table('alert_attempts')
