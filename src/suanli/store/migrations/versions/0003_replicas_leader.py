"""replicas: the scheduler's leader lease and the network version counter

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    leader = op.create_table(
        "leader",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(leader, [{"id": 1, "holder": "", "token": 0, "expires_at": 0.0,
                             "acquired_at": 0.0, "renewed_at": 0.0}])
    meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.bulk_insert(meta, [{"key": "network_version", "value": "0"}])


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'network_version'")
    op.drop_table("leader")
