"""suppressions: VEX statements and risk acceptances

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_acceptances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vulnerability', sa.String(), nullable=False),
    sa.Column('image', sa.String(), nullable=False),
    sa.Column('package', sa.String(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_acceptances'))
    )
    with op.batch_alter_table('risk_acceptances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_acceptances_vulnerability'), ['vulnerability'], unique=False)

    op.create_table('vex_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document', sa.String(), nullable=False),
    sa.Column('format', sa.String(), nullable=False),
    sa.Column('vulnerability', sa.String(), nullable=False),
    sa.Column('product', sa.String(), nullable=False),
    sa.Column('subcomponent', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('justification', sa.String(), nullable=False),
    sa.Column('detail', sa.String(), nullable=False),
    sa.Column('issued', sa.DateTime(timezone=True), nullable=True),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vex_statements')),
    sa.UniqueConstraint('document', 'vulnerability', 'product', 'subcomponent',
                        name=op.f('uq_vex_statements_document_vulnerability_product_subcomponent'))
    )
    with op.batch_alter_table('vex_statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vex_statements_vulnerability'), ['vulnerability'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vex_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vex_statements_vulnerability'))

    op.drop_table('vex_statements')
    with op.batch_alter_table('risk_acceptances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_acceptances_vulnerability'))

    op.drop_table('risk_acceptances')
