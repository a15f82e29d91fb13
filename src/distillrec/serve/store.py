"""The event store: feedback events, posted items and erased users, kept durably.

`EventStore` is the interface the service writes through; `SQLStore` runs its SQL for two backends:
`SQLiteStore`, the embedded default, one file (WAL journal, `synchronous=FULL`), so an event whose write returned
survives a crash or a SIGKILL of the server; and `PostgresStore` (`serve/postgres.py`), for several server
processes sharing one store. Tables:

    events(id, user_id, item_id, event, value, timestamp)   one row per feedback event, in arrival order (`id`)
    items(item_id, fields, text_vector)                     items posted by text (`POST /items`)
    erased(user_id)                                         users whose data was erased (`DELETE /users/{id}`)

A user's history, as a sequence model reads it, is the items of their events ordered by timestamp (then arrival)
whose kind is not in `NOT_HISTORY` (an impression or a skip says the user saw an item, not that they chose it).
Connections are pooled (the server answers from a thread pool and its event loop); each write is one transaction.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = [
    "Event",
    "PostedItem",
    "EventStore",
    "SQLStore",
    "SQLiteStore",
    "DuplicateItem",
    "NOT_HISTORY",
    "open_store",
]

NOT_HISTORY = frozenset({"impression", "read", "skip", "dislike"})  # stored, but not read as history
HISTORY_LIMIT = (
    1000  # a user's latest events read as history (a sequence model reads its last max_len anyway)
)


@dataclass(frozen=True)
class Event:
    user_id: str
    item_id: str
    event: str  # click, purchase, rating, ... (free text)
    value: float | None  # e.g. the rating
    timestamp: float  # unix seconds


@dataclass(frozen=True)
class PostedItem:
    item_id: str
    fields: dict[str, str]  # the text fields it was posted with
    text_vector: np.ndarray  # (d_text,) float32, the text encoder's vector of its rendered text


class EventStore(Protocol):
    def add_events(self, events: Sequence[Event]) -> None:
        """Store all of `events` durably (all or none) before returning."""

    def events(self, user_id: str) -> list[Event]:
        """The user's stored events, oldest first."""

    def history(self, user_id: str, limit: int = HISTORY_LIMIT) -> list[str]:
        """The item ids of the user's latest `limit` events that count as history (see `NOT_HISTORY`), oldest
        first."""

    def ping(self) -> None:
        """Raise unless the store answers."""

    def erase_user(self, user_id: str) -> int:
        """Delete the user's events and remember the id as erased; return how many events were deleted."""

    def erased(self) -> set[str]:
        """The user ids erased so far: the service no longer reads or shows the history the model was trained
        with for them (events stored after the erasure are theirs as any user's)."""

    def add_item(self, item: PostedItem) -> None:
        """Store a posted item; `DuplicateItem` when its id was posted already (by any process)."""

    def item_ids(self) -> list[str]:
        """The ids of the posted items, in the order they were posted."""

    def items(self, item_ids: Sequence[str] | None = None) -> list[PostedItem]:
        """The posted items (those of `item_ids` only, when given), in the order they were posted."""

    def close(self) -> None: ...


class DuplicateItem(Exception):
    pass


class SQLStore:
    """The SQL every backend runs (see the module docstring); a backend opens connections (`_connect`), gives its
    parameter marker and its schema. Connections are per thread; `serial_writes` puts one lock around writes
    (SQLite has one writer at a time)."""

    marker = "?"
    begin = "BEGIN"
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    schema: tuple[str, ...] = ()
    serial_writes = False

    def __init__(self) -> None:
        self._pool: queue.LifoQueue = queue.LifoQueue()  # idle connections
        self._write = threading.Lock() if self.serial_writes else contextlib.nullcontext()
        with self._transaction() as db:
            self._create(db)

    def _connect(self):
        raise NotImplementedError

    def _create(self, db) -> None:
        for statement in self.schema:
            db.execute(statement)

    @contextlib.contextmanager
    def _connection(self):
        """An idle connection (a new one when none is idle), returned to the pool after use; one that saw an
        error is closed instead, so a broken connection (a restarted database) is replaced by the next use."""
        try:
            db = self._pool.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            yield db
        except BaseException:
            with contextlib.suppress(Exception):
                db.close()
            raise
        self._pool.put(db)

    def _sql(self, text: str) -> str:
        return text.replace("?", self.marker)

    @contextlib.contextmanager
    def _transaction(self):
        with self._write, self._connection() as db:
            db.execute(self.begin)
            try:
                yield db
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")  # on disk when it returns

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._connection() as db:
            return list(db.execute(self._sql(sql), params).fetchall())

    def add_events(self, events: Sequence[Event]) -> None:
        rows = [(e.user_id, e.item_id, e.event, e.value, e.timestamp) for e in events]
        with self._transaction() as db:
            db.cursor().executemany(
                self._sql(
                    "INSERT INTO events (user_id, item_id, event, value, timestamp) VALUES (?, ?, ?, ?, ?)"
                ),
                rows,
            )

    def events(self, user_id: str) -> list[Event]:
        rows = self._rows(
            "SELECT user_id, item_id, event, value, timestamp FROM events WHERE user_id = ? ORDER BY timestamp, id",
            (user_id,),
        )
        return [Event(*row) for row in rows]

    def history(self, user_id: str, limit: int = HISTORY_LIMIT) -> list[str]:
        marks = ",".join("?" * len(NOT_HISTORY))
        rows = self._rows(
            f"SELECT item_id FROM events WHERE user_id = ? AND event NOT IN ({marks}) "
            "ORDER BY timestamp DESC, id DESC LIMIT ?",
            (user_id, *sorted(NOT_HISTORY), limit),
        )
        return [row[0] for row in reversed(rows)]

    def ping(self) -> None:
        self._rows("SELECT 1")

    def erase_user(self, user_id: str) -> int:
        with self._transaction() as db:
            deleted = db.execute(self._sql("DELETE FROM events WHERE user_id = ?"), (user_id,)).rowcount
            db.execute(
                self._sql("INSERT INTO erased (user_id) VALUES (?) ON CONFLICT DO NOTHING"), (user_id,)
            )
        return deleted

    def erased(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT user_id FROM erased")}

    def add_item(self, item: PostedItem) -> None:
        vector = np.ascontiguousarray(item.text_vector, dtype=np.float32)
        try:
            with self._transaction() as db:
                db.execute(
                    self._sql("INSERT INTO items (item_id, fields, text_vector) VALUES (?, ?, ?)"),
                    (item.item_id, json.dumps(item.fields), vector.tobytes()),
                )
        except self.integrity_errors:
            raise DuplicateItem(f"item {item.item_id!r} was posted already") from None

    def item_ids(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT item_id FROM items ORDER BY n")]

    def items(self, item_ids: Sequence[str] | None = None) -> list[PostedItem]:
        if item_ids is None:
            rows = self._rows("SELECT item_id, fields, text_vector, n FROM items")
        else:
            rows = []
            for start in range(0, len(item_ids), 500):  # a bounded number of parameters a query
                chunk = tuple(item_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows += self._rows(
                    f"SELECT item_id, fields, text_vector, n FROM items WHERE item_id IN ({marks})", chunk
                )
        return [
            PostedItem(item_id, json.loads(fields), np.frombuffer(bytes(vector), dtype=np.float32).copy())
            for item_id, fields, vector, _ in sorted(rows, key=lambda row: row[3])
        ]

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


class SQLiteStore(SQLStore):
    """`EventStore` in one SQLite file (see the module docstring)."""

    serial_writes = True
    begin = "BEGIN IMMEDIATE"  # take the write lock at once: no deadlock between two upgrading readers
    schema = (
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
            event TEXT NOT NULL, value REAL, timestamp REAL NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS events_user ON events (user_id, timestamp, id)",
        """CREATE TABLE IF NOT EXISTS items (
            n INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL UNIQUE, fields TEXT NOT NULL,
            text_vector BLOB NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS erased (user_id TEXT PRIMARY KEY)",
    )

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path})"

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not an event database this server can open ({exc})") from None
        return db


def open_store(location: str | Path) -> EventStore:
    """The store at `location`: a `postgresql://` URL is a PostgreSQL database (`serve/postgres.py`), anything
    else a SQLite file (created when missing)."""
    if str(location).startswith(("postgresql://", "postgres://")):
        from distillrec.serve.postgres import PostgresStore

        return PostgresStore(str(location))
    return SQLiteStore(location)
