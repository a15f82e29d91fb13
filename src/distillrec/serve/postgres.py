"""`PostgresStore`: the event store in a PostgreSQL database, so several server processes share one store.

    distillrec serve MODEL_DIR --db postgresql://user:password@host:5432/dbname

The tables and queries are `SQLStore`'s (`serve/store.py`); a commit returns once PostgreSQL has it durably
(its default `synchronous_commit`). The first process creates the tables, under an advisory lock so two processes
starting together do not both create them. Needs the `postgres` extra (`pip install -e '.[postgres]'`: psycopg).
"""

from __future__ import annotations

import re

from distillrec.serve.store import SQLStore

__all__ = ["PostgresStore"]

_LOCK = 7_302_113  # the advisory lock id that serialises table creation


class PostgresStore(SQLStore):
    marker = "%s"
    schema = (
        """CREATE TABLE IF NOT EXISTS events (
            id BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
            event TEXT NOT NULL, value DOUBLE PRECISION, timestamp DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS events_user ON events (user_id, timestamp, id)",
        """CREATE TABLE IF NOT EXISTS items (
            n BIGSERIAL PRIMARY KEY, item_id TEXT NOT NULL UNIQUE, fields TEXT NOT NULL, text_vector BYTEA NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS erased (user_id TEXT PRIMARY KEY)",
    )

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise ImportError("a PostgreSQL store needs psycopg: pip install -e '.[postgres]'") from exc
        self._psycopg = psycopg
        self.integrity_errors = (psycopg.IntegrityError,)
        self.url = url
        super().__init__()

    def __repr__(self) -> str:
        return f"PostgresStore({_without_password(self.url)})"

    def _connect(self):
        try:
            return self._psycopg.connect(self.url, autocommit=True)
        except self._psycopg.OperationalError as exc:
            raise ValueError(f"{_without_password(self.url)}: cannot connect ({str(exc).strip()})") from None

    def _create(self, db) -> None:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        super()._create(db)


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
