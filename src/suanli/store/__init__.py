"""The database of the live network: tenants, tokens, credits, jobs and their events.

SQLAlchemy 2 over SQLite (embedded default) or PostgreSQL; schema changes are Alembic
migrations packaged here and applied at start-up.
"""

from suanli.store.db import Database, connect

__all__ = ["Database", "connect"]
