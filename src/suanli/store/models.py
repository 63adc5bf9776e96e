"""ORM models: the schema of the live network. Migrations in `migrations/` must match these."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from suanli.store.types import Money

LEDGER_KINDS = ("grant", "reserve", "settle", "refund")
JOB_STATES = (
    "pending", "queued", "staging", "starting", "running", "checkpointing", "preempted",
    "succeeded", "failed", "cancelled",
)
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A team with its own jobs, a credit balance (CNY) and chip quotas."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Kept equal to sum(ledger.amount) and to the open reservations, in the same transaction.
    balance: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    reserved: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    created_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """An API token, stored as the sha256 of the secret; only the prefix is kept in clear."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Quota(Base):
    """At most `max_chips` chips of one accelerator held by a tenant's active jobs."""

    __tablename__ = "quotas"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    accelerator: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_chips: Mapped[int] = mapped_column(Integer)


class LedgerEntry(Base):
    """One credit movement. grant +, reserve - (estimate held), refund + (hold released),
    settle - (actual charge). balance = sum(amount); spent = -sum(settle)."""

    __tablename__ = "ledger"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('grant', 'reserve', 'settle', 'refund')", name="ck_ledger_kind"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class Meta(Base):
    """Key/value facts about this database (which network seeded it, ...)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CenterRow(Base):
    __tablename__ = "centers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    region: Mapped[str] = mapped_column(String(100))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    electricity_price_per_kwh: Mapped[float] = mapped_column(Float)
    pue: Mapped[float] = mapped_column(Float, default=1.3)
    carbon_g_per_kwh: Mapped[float] = mapped_column(Float, default=550.0)
    position: Mapped[int] = mapped_column(Integer, default=0)


class PoolRow(Base):
    __tablename__ = "pools"
    center_id: Mapped[str] = mapped_column(
        ForeignKey("centers.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    accelerator: Mapped[str] = mapped_column(String(64))
    nodes: Mapped[int] = mapped_column(Integer)
    chips_per_node: Mapped[int] = mapped_column(Integer)
    price_per_chip_hour: Mapped[Decimal] = mapped_column(Money(scale=4))
    spot_price_per_chip_hour: Mapped[Decimal | None] = mapped_column(Money(scale=4), nullable=True)
    reserved_chips: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Job(Base):
    """A submitted job: its spec, state, placement, money and the backend's handle."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
        Index("ix_jobs_tenant_state", "tenant_id", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    center: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    accelerator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    est_accelerator: Mapped[str | None] = mapped_column(String(64), nullable=True)
    est_count: Mapped[int] = mapped_column(Integer, default=1)
    est_run_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimate_cost: Mapped[Decimal] = mapped_column(Money())
    reserved: Mapped[Decimal] = mapped_column(Money())
    charged: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    run_s: Mapped[float] = mapped_column(Float, default=0.0)
    running_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    done_work: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    handle: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Billing (store.billing): the price of the current placement (spot if the job may use
    # it), and the spend of its finished run segments, each at its own placement's price.
    price_per_chip_hour: Mapped[Decimal | None] = mapped_column(Money(scale=4), nullable=True)
    spent: Mapped[Decimal] = mapped_column(Money(scale=6), default=Decimal("0"),
                                           server_default="0")
    # A mixed-chip gang's parts (JSON list of center/pool/accelerator/count/price per part);
    # center/pool/accelerator above are then its primary part's and count the whole gang.
    placement_parts: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobEvent(Base):
    """A state change, written before the backend acts on it."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[float] = mapped_column(Float)
    old_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    new_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    placement: Mapped[str | None] = mapped_column(Text, nullable=True)


# A job's hold is released once: at most one refund row per job, whoever settles it.
Index("uq_ledger_job_refund", LedgerEntry.__table__.c.job_id, unique=True,
      sqlite_where=text("kind = 'refund'"), postgresql_where=text("kind = 'refund'"))


class LeaderLease(Base):
    """The scheduler's lease: one row (id 1). The replica named in `holder` leads until
    `expires_at` (the database's clock, epoch seconds); `token` grows by one at each new
    leadership and fences every write the scheduler makes."""

    __tablename__ = "leader"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    acquired_at: Mapped[float] = mapped_column(Float, default=0.0)
    renewed_at: Mapped[float] = mapped_column(Float, default=0.0)


class Voucher(Base):
    """A compute voucher (算力券) a city issues to a tenant: it pays `share` of a job's charge
    at the eligible centers or regions (none listed: anywhere), up to `cap` in all, for jobs
    that start before `expires_at`. `remaining` is a balance of its own, always equal to the
    sum of its rows in `voucher_ledger` (see `store.vouchers`)."""

    __tablename__ = "vouchers"
    __table_args__ = (CheckConstraint("remaining >= 0", name="ck_voucher_remaining"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    issuer: Mapped[str] = mapped_column(String(200))
    share: Mapped[Decimal] = mapped_column(Money(scale=4))  # 0 < share <= 1
    centers: Mapped[str] = mapped_column(Text, default="")  # comma-separated center ids
    regions: Mapped[str] = mapped_column(Text, default="")  # comma-separated region names
    cap: Mapped[Decimal] = mapped_column(Money())
    remaining: Mapped[Decimal] = mapped_column(Money())
    expires_at: Mapped[float] = mapped_column(Float)
    issued_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class VoucherEntry(Base):
    """A movement of a voucher's cap: `issue` (+cap), `pay` (-what it paid of a job's charge),
    `revoke` (-what was left). One `pay` row per voucher and job."""

    __tablename__ = "voucher_ledger"
    __table_args__ = (UniqueConstraint("voucher_id", "job_id", "kind",
                                       name="uq_voucher_job_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id", ondelete="CASCADE"),
                                            index=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class Upload(Base):
    """A job's code (`workdir:`), a tar.gz kept by its sha256 in the database every replica
    shares, so the leader can unpack it whichever replica took the submission."""

    __tablename__ = "uploads"
    digest: Mapped[str] = mapped_column(String(71), primary_key=True)  # "sha256:<64 hex>"
    archive: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
