"""The Alembic migrations build exactly the schema the ORM models describe, and money columns
keep exact cents on every database."""

from __future__ import annotations

from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from suanli.store import tenants
from suanli.store.db import connect
from suanli.store.models import Base


def test_migrated_schema_matches_the_models(db_url):
    db = connect(db_url)
    try:
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == [], diff
        assert set(Base.metadata.tables) <= tables
        db.migrate()  # a second start-up is a no-op
    finally:
        db.dispose()


def test_money_is_exact_through_the_database(db_url):
    db = connect(db_url)
    try:
        with db.write() as conn:
            tid, _token = tenants.create_tenant(conn, "t", credits=Decimal("0.10"))
            for _ in range(9):
                tenants.grant(conn, tid, Decimal("0.20"))
            for job_id in range(1, 4):
                tenants.reserve(conn, tid, job_id, Decimal("0.33"))
        with db.read() as conn:
            balance, reserved = tenants.balance_of(conn, tid)
            sums = tenants.ledger_sums(conn, tid)
        # 0.1 + 9 x 0.2 - 3 x 0.33 in binary floating point is 0.9100000000000003
        assert balance == Decimal("0.91") and reserved == Decimal("0.99")
        assert sum(sums.values()) == balance
        assert all(isinstance(v, Decimal) for v in sums.values())
    finally:
        db.dispose()


def test_tokens_are_stored_hashed(db_url):
    db = connect(db_url)
    try:
        with db.write() as conn:
            _tid, token = tenants.create_tenant(conn, "t")
        with db.read() as conn:
            rows = conn.exec_driver_sql("SELECT prefix, token_hash FROM api_tokens").all()
            assert tenants.principal_for_token(conn, token).name == "t"
            assert tenants.principal_for_token(conn, token + "x") is None
        assert token.startswith("sl_")
        assert all(token not in (p, h) for p, h in rows)
        assert rows[0].token_hash == tenants.hash_token(token)
    finally:
        db.dispose()
