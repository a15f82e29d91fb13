"""The event store: feedback events, posted items and erased users, kept durably.

`EventStore` is the interface the service writes through; `SQLiteStore` is the embedded default: one file
(WAL journal, `synchronous=FULL`), so an event whose write returned survives a crash or a SIGKILL of the server.
Tables:

    events(id, user_id, item_id, event, value, timestamp)   one row per feedback event, in arrival order (`id`)
    items(item_id, fields, text_vector)                     items posted by text (`POST /items`)
    erased(user_id)                                         users whose data was erased (`DELETE /users/{id}`)

A user's history, as a sequence model reads it, is the items of their events ordered by timestamp (then arrival)
whose kind is not in `NOT_HISTORY` (an impression or a skip says the user saw an item, not that they chose it).
Connections are per thread (the server answers from a thread pool); writes are serialised by one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["Event", "PostedItem", "EventStore", "SQLiteStore", "NOT_HISTORY", "open_store"]

NOT_HISTORY = frozenset({"impression", "read", "skip", "dislike"})  # stored, but not read as history


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

    def history(self, user_id: str) -> list[str]:
        """The item ids of the user's events that count as history (see `NOT_HISTORY`), oldest first."""

    def ping(self) -> None:
        """Raise unless the store answers."""

    def erase_user(self, user_id: str) -> int:
        """Delete the user's events and remember the id as erased; return how many events were deleted."""

    def erased(self) -> set[str]:
        """The user ids erased so far: the service no longer reads or shows the history the model was trained
        with for them (events stored after the erasure are theirs as any user's)."""

    def add_item(self, item: PostedItem) -> None: ...

    def items(self) -> list[PostedItem]:
        """The posted items, in the order they were posted."""

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    value REAL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, timestamp, id);
CREATE TABLE IF NOT EXISTS items (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL UNIQUE,
    fields TEXT NOT NULL,
    text_vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS erased (user_id TEXT PRIMARY KEY);
"""


class SQLiteStore:
    """`EventStore` in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        with self._write:
            self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{self.path}: not an event database this server can open ({exc})") from None
            self._local.db = db
            self._connections.append(db)
        return db

    def add_events(self, events: Sequence[Event]) -> None:
        rows = [(e.user_id, e.item_id, e.event, e.value, e.timestamp) for e in events]
        with self._write:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO events (user_id, item_id, event, value, timestamp) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def events(self, user_id: str) -> list[Event]:
        rows = self._db().execute(
            "SELECT user_id, item_id, event, value, timestamp FROM events WHERE user_id = ? "
            "ORDER BY timestamp, id",
            (user_id,),
        )
        return [Event(*row) for row in rows]

    def history(self, user_id: str) -> list[str]:
        marks = ",".join("?" * len(NOT_HISTORY))
        rows = self._db().execute(
            f"SELECT item_id FROM events WHERE user_id = ? AND event NOT IN ({marks}) ORDER BY timestamp, id",
            (user_id, *sorted(NOT_HISTORY)),
        )
        return [row[0] for row in rows]

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()

    def erase_user(self, user_id: str) -> int:
        with self._write:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                deleted = db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
                db.execute("INSERT OR IGNORE INTO erased (user_id) VALUES (?)", (user_id,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return deleted

    def erased(self) -> set[str]:
        return {row[0] for row in self._db().execute("SELECT user_id FROM erased")}

    def add_item(self, item: PostedItem) -> None:
        vector = np.ascontiguousarray(item.text_vector, dtype=np.float32)
        with self._write:
            self._db().execute(
                "INSERT INTO items (item_id, fields, text_vector) VALUES (?, ?, ?)",
                (item.item_id, json.dumps(item.fields), vector.tobytes()),
            )

    def items(self) -> list[PostedItem]:
        rows = self._db().execute("SELECT item_id, fields, text_vector FROM items ORDER BY n")
        return [
            PostedItem(item_id, json.loads(fields), np.frombuffer(vector, dtype=np.float32).copy())
            for item_id, fields, vector in rows
        ]

    def close(self) -> None:
        for db in self._connections:
            db.close()
        self._connections.clear()
        self._local = threading.local()


def open_store(location: str | Path) -> EventStore:
    """The store at `location`: a path is a SQLite file (created when missing)."""
    return SQLiteStore(location)
