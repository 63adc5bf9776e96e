"""vouchers: compute vouchers (a share of the price, eligible centers or regions, a cap, an
expiry) and the ledger of their caps

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import suanli.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _money(scale: int = 2) -> suanli.store.types.Money:
    return suanli.store.types.Money(precision=18, scale=scale)


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("share", _money(4), nullable=False),
        sa.Column("centers", sa.Text(), nullable=False),
        sa.Column("regions", sa.Text(), nullable=False),
        sa.Column("cap", _money(), nullable=False),
        sa.Column("remaining", _money(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("remaining >= 0", name="ck_voucher_remaining"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vouchers_tenant_id", "vouchers", ["tenant_id"])
    op.create_table(
        "voucher_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("voucher_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["voucher_id"], ["vouchers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("voucher_id", "job_id", "kind", name="uq_voucher_job_kind"),
    )
    op.create_index("ix_voucher_ledger_voucher_id", "voucher_ledger", ["voucher_id"])
    op.create_index("ix_voucher_ledger_tenant_id", "voucher_ledger", ["tenant_id"])
    op.create_index("ix_voucher_ledger_job_id", "voucher_ledger", ["job_id"])


def downgrade() -> None:
    op.drop_table("voucher_ledger")
    op.drop_table("vouchers")
