"""image risk

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('image_scans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('epss_over', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('risk', sa.Double(), server_default='0', nullable=False))
    # Existing images get their sums from their stored findings (the same formula as keelwatch.risk).
    op.execute(
        "UPDATE image_scans SET "
        "epss_over = (SELECT COUNT(*) FROM findings f WHERE f.image_digest = image_scans.image_digest "
        "AND COALESCE(f.epss, 0) >= 0.1), "
        "risk = COALESCE((SELECT SUM("
        "(CASE f.severity WHEN 'critical' THEN 10.0 WHEN 'high' THEN 5.0 WHEN 'medium' THEN 2.0 "
        "WHEN 'low' THEN 0.5 ELSE 3.0 END) * (CASE WHEN f.kev THEN 3.0 ELSE 1.0 END) "
        "* (1.0 + 4.0 * COALESCE(f.epss, 0)) * (CASE WHEN f.fix_available THEN 1.25 ELSE 1.0 END)) "
        "FROM findings f WHERE f.image_digest = image_scans.image_digest), 0)")



def downgrade() -> None:
    with op.batch_alter_table('image_scans', schema=None) as batch_op:
        batch_op.drop_column('risk')
        batch_op.drop_column('epss_over')

