"""money: placement price and spend per job, one refund per job

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import suanli.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("price_per_chip_hour",
                                   suanli.store.types.Money(precision=18, scale=4),
                                   nullable=True))
        batch.add_column(sa.Column("spent", suanli.store.types.Money(precision=18, scale=6),
                                   server_default="0", nullable=False))
    # A database written before this revision may hold a job refunded twice (the bug this
    # index prevents): keep those rows (the balance is their sum) but detach the extra ones
    # from the job, saying so.
    op.execute(
        "UPDATE ledger SET note = note || ' [second refund of job ' || job_id || "
        "', detached by migration 0002]', job_id = NULL "
        "WHERE kind = 'refund' AND job_id IS NOT NULL AND id NOT IN "
        "(SELECT MIN(id) FROM ledger WHERE kind = 'refund' AND job_id IS NOT NULL "
        "GROUP BY job_id)")
    op.create_index("uq_ledger_job_refund", "ledger", ["job_id"], unique=True,
                    sqlite_where=sa.text("kind = 'refund'"),
                    postgresql_where=sa.text("kind = 'refund'"))


def downgrade() -> None:
    op.drop_index("uq_ledger_job_refund", table_name="ledger")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("spent")
        batch.drop_column("price_per_chip_hour")
