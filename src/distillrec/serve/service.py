"""The recommendation service without HTTP: users' live histories, feedback, posted items, explanations, erasure.

A `Service` joins an `Engine` (the loaded model, `serve/engine.py`) and an `EventStore` (`serve/store.py`).
A user's history is what the model was trained with for them (unless erased) followed by the items of their
stored feedback, so an event changes the user's next answer at once: a sequence model reads its last items,
no retraining. Ids are the dataset's own strings. Every answer is a plain dict (the HTTP layer returns it as
JSON). Errors: `NotFound` (an unknown user or item id), `Conflict` (an item id that exists; a model that cannot
do what was asked), `ValueError` (anything else wrong with a request).

`reload(model_dir)` builds a new engine beside the one serving (posted items placed again) and swaps it in one
assignment: a request holds the engine it started with, so none fails during the swap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from distillrec.recommend import as_interactions, load
from distillrec.serve.engine import Engine, Ranked
from distillrec.serve.knowledge import TextKnowledge, find_teacher
from distillrec.serve.placement import unit_rows
from distillrec.serve.store import DuplicateItem, Event, EventStore, PostedItem
from distillrec.train.loop import bf16_autocast

__all__ = ["Service", "NotFound", "Conflict", "build_engine"]

EXPLAIN_ITEMS = 5  # history items an explanation lists
SYNC_SECONDS = 1.0  # how often a server reads what other processes wrote to a shared store


class NotFound(LookupError):
    pass


class Conflict(Exception):
    pass


def build_engine(
    model_dir: str | Path,
    teacher: str | Path | None = None,
    use_teacher: bool = True,
    index: str = "auto",
    exact_below: int = 200_000,
    knowledge: TextKnowledge | None = None,
) -> Engine:
    """The engine of a model folder, with the text of its teacher folder (`teacher`, else found beside the model:
    `knowledge.find_teacher`; none with `use_teacher=False`). `knowledge` reuses one already read when it is the
    teacher of the same items."""
    saved = load(model_dir)
    item_ids = [str(i) for i in saved.catalog.item_ids]
    if use_teacher:
        folder = Path(teacher) if teacher is not None else find_teacher(Path(model_dir), saved.info)
        if folder is not None and (knowledge is None or knowledge.folder.resolve() != folder.resolve()):
            knowledge = TextKnowledge(folder)
        if knowledge is not None:
            knowledge.check_items(item_ids, Path(model_dir))
    else:
        knowledge = None
    return Engine(saved, knowledge, index, exact_below)


class Service:
    def __init__(self, engine: Engine, store: EventStore) -> None:
        self.store = store
        self._erased = store.erased()
        self._lock = threading.Lock()  # placing posted items, erasing and swapping engines, one at a time
        self._place_posted(engine)
        self._synced = time.monotonic()
        self.engine = engine  # read once per request; `reload` swaps it

    def _place_posted(self, engine: Engine) -> None:
        """Place the store's posted items that the engine lacks (posted through another process, or before a
        restart or reload)."""
        if not engine.can_post_items:
            return
        missing = [i for i in self.store.item_ids() if i not in engine.row_of]
        if missing:
            items = self.store.items(missing)
            engine.add_items(items, [engine.knowledge.render(item.fields) for item in items])

    def _fresh(self) -> Engine:
        """The serving engine, with what other server processes wrote to a shared store (posted items,
        erasures) at most about `SYNC_SECONDS` ago; skipped while another request holds the lock (it never
        waits for a reload or a posting)."""
        if time.monotonic() - self._synced > SYNC_SECONDS and self._lock.acquire(blocking=False):
            try:
                self._synced = time.monotonic()
                self._place_posted(self.engine)
                self._erased = self.store.erased()
            finally:
                self._lock.release()
        return self.engine

    # --------------------------------------------------------------------------------------------- users

    def _is_known(self, engine: Engine, user_id: str | None) -> bool:
        """Known to the model (and not erased)."""
        return user_id is not None and user_id in engine.user_of and user_id not in self._erased

    def _history(
        self, engine: Engine, user_id: str | None, extra: Sequence[str] = ()
    ) -> tuple[np.ndarray, list[str], bool]:
        """(item rows oldest first, unknown ids of `extra`, whether the user has any history): the known
        history, the latest stored feedback (`store.HISTORY_LIMIT` events), then `extra`."""
        rows: list[int] = []
        has_history = False
        if user_id is not None:
            if self._is_known(engine, user_id):
                rows.extend(engine.saved.catalog.history.sequence(engine.user_of[user_id]).tolist())
                has_history = True
            stored = self.store.history(user_id)
            has_history = has_history or bool(stored)
            rows.extend(engine.row_of[i] for i in stored if i in engine.row_of)
        unknown = [i for i in extra if i not in engine.row_of]
        rows.extend(engine.row_of[i] for i in extra if i in engine.row_of)
        return np.asarray(rows, dtype=np.int64), unknown, has_history

    def recommend(
        self, user_id: str | None = None, history: Sequence[str] = (), k: int = 10, exclude_seen: bool = True
    ) -> dict:
        engine = self._fresh()
        rows, unknown, has_history = self._history(engine, user_id, history)
        known = user_id if self._is_known(engine, user_id) else None
        ranked = engine.rank(known, rows, k, exclude_seen)
        answer = {
            "user_id": user_id,
            "items": self._items(engine, ranked),
            "cold_start": ranked.cold_start,
        }
        if unknown:
            answer["unknown_items"] = unknown
        if user_id is not None and not has_history:
            answer["unknown_user"] = True
        return answer

    def user(self, user_id: str) -> dict:
        engine = self._fresh()
        known = self._is_known(engine, user_id)
        events = self.store.events(user_id)
        if not known and not events:
            raise NotFound(f"user {user_id!r} has no known history and no stored events")
        trained = engine.saved.catalog.history.sequence(engine.user_of[user_id]) if known else []
        return {
            "user_id": user_id,
            "known_history": [engine.item_ids[r] for r in trained],
            "events": [
                {"item_id": e.item_id, "event": e.event, "value": e.value, "timestamp": e.timestamp}
                for e in events
            ],
            "erased": user_id in self._erased,
        }

    def erase(self, user_id: str) -> dict:
        """Delete the user's events and stop reading or showing their known history."""
        engine = self._fresh()
        known = self._is_known(engine, user_id)
        if not known and not self.store.events(user_id):
            raise NotFound(f"user {user_id!r} has no known history and no stored events")
        with self._lock:  # not overwritten by a sync that read the store before this erasure
            deleted = self.store.erase_user(user_id)
            self._erased = self._erased | {user_id}
        return {"user_id": user_id, "events_deleted": deleted, "known_history_hidden": known}

    # ---------------------------------------------------------------------------------------- feedback

    def feedback(self, events: Sequence[Event]) -> int:
        """Store `events` (all or none; every item id must be known or posted); return how many were stored."""
        engine = self._fresh()
        for i, event in enumerate(events):
            if event.item_id not in engine.row_of:
                raise NotFound(
                    f"event {i}: item {event.item_id!r} is not in the catalogue (post it to /items first)"
                )
        self.store.add_events(events)
        return len(events)

    # ------------------------------------------------------------------------------------------- items

    def post_item(self, item_id: str, fields: dict[str, str]) -> dict:
        """Encode a new item's text and make it recommendable at once."""
        engine = self._fresh()
        if item_id in engine.row_of:
            raise Conflict(f"item {item_id!r} is already in the catalogue")
        if not engine.can_post_items:
            raise Conflict(
                f"{type(engine.model).__name__} cannot place new items: that needs a sequence model with "
                "item vectors and its teacher folder's text encoder (start the server with --teacher)"
            )
        text = engine.knowledge.render(fields)
        if not text:
            raise ValueError(
                f"item {item_id!r}: its fields render to an empty text with the template "
                f"{engine.knowledge.template.template!r}"
            )
        item = PostedItem(item_id, dict(fields), engine.knowledge.encode(text))  # the slow part: no lock held
        with self._lock:
            try:
                self.store.add_item(item)
            except DuplicateItem as exc:  # posted meanwhile, here or by another server process
                raise Conflict(str(exc)) from None
            self._place_posted(self.engine)  # the serving engine (a reload may have swapped it)
        return {"item_id": item_id, "title": text}

    def item(self, item_id: str) -> dict:
        engine = self._fresh()
        row = self._row(engine, item_id)
        return {
            "item_id": item_id,
            "title": engine.titles[row],
            "posted": row >= engine.n_known,
            "interactions": float(engine.item_counts[row]) if row < engine.n_known else 0.0,
        }

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Items whose title (or id) holds every word of `query`, case-insensitively, most popular first."""
        engine = self._fresh()
        return [
            {"item_id": engine.item_ids[r], "title": engine.titles[r]} for r in engine.search(query, limit)
        ]

    def similar(self, item_id: str, k: int = 10) -> dict:
        engine = self._fresh()
        row = self._row(engine, item_id)
        try:
            ranked = engine.similar(row, k)
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        return {"item_id": item_id, "items": self._items(engine, ranked)}

    # --------------------------------------------------------------------------------------- explain

    def explain(self, user_id: str, item_id: str) -> dict:
        """Why `item_id` for `user_id`: its rank for the user, the history items nearest to it in the model's
        item space and in the language model's text space, and the teacher's rank of it."""
        engine = self._fresh()
        row = self._row(engine, item_id)
        if not self._is_known(engine, user_id) and not self.store.events(user_id):
            raise NotFound(f"user {user_id!r} has no known history and no stored events")
        rows, _, _ = self._history(engine, user_id)
        answer: dict = {
            "user_id": user_id,
            "item_id": item_id,
            "title": engine.titles[row],
            "in_history": bool(row in rows),
        }
        answer["rank"] = self._rank_of(engine, user_id, rows, row)
        answer["because"] = self._because(engine, rows, row)
        answer["teacher"] = self._teacher_rank(engine, rows, row)
        return answer

    def _rank_of(self, engine: Engine, user_id: str, rows: np.ndarray, row: int) -> int | None:
        """The item's 1-based place in the user's answer (seen items excluded); None when it is seen."""
        if row in rows or len(rows) == 0:
            return None
        if engine.is_vector_model:
            scores = engine.scores(rows)
            scores[rows] = -np.inf
            return int(1 + np.sum(scores > scores[row]))
        ranked = engine.rank(user_id if self._is_known(engine, user_id) else None, rows, len(engine.item_ids))
        places = np.flatnonzero(ranked.rows == row)
        return int(places[0]) + 1 if len(places) else None

    def _because(self, engine: Engine, rows: np.ndarray, row: int) -> list[dict]:
        seen = list(dict.fromkeys(rows[::-1].tolist()))[:200]  # distinct, the latest 200
        if not seen:
            return []
        sims: dict[str, np.ndarray] = {}
        for name, table in (
            ("model_similarity", engine.item_vectors()),
            ("text_similarity", engine.text_vectors),
        ):
            if table is not None:
                unit = unit_rows(table[[*seen, row]])
                sims[name] = unit[:-1] @ unit[-1]
        if not sims:
            return []
        total = sum(sims.values())
        order = np.argsort(-total, kind="stable")[:EXPLAIN_ITEMS]
        return [
            {
                "item_id": engine.item_ids[seen[i]],
                "title": engine.titles[seen[i]],
                **{name: round(float(values[i]), 4) for name, values in sims.items()},
            }
            for i in order
        ]

    def _teacher_rank(self, engine: Engine, rows: np.ndarray, row: int) -> dict | None:
        teacher = engine.knowledge.teacher if engine.knowledge else None
        if teacher is None or len(rows) == 0 or row >= engine.n_known or row in rows:
            return None
        history = as_interactions([engine.reads_as[rows]], engine.n_known)  # posted items read as known ones
        with bf16_autocast(teacher.bf16):
            scores = np.array(teacher.model.score(np.arange(1), history)[0], dtype=np.float32)
        scores[rows[rows < engine.n_known]] = -np.inf  # the items the user has, as the student excludes them
        rank = int(1 + np.sum(scores > scores[row]))
        return {"rank": rank, "in_top_10": rank <= 10}

    # ----------------------------------------------------------------------------------------- reload

    def reload(self, model_dir: str | Path | None = None, **engine_options) -> dict:
        """Load `model_dir` (default: the folder serving now) beside the serving engine and swap it in."""
        old = self.engine
        folder = Path(model_dir) if model_dir is not None else old.path
        engine = build_engine(folder, knowledge=old.knowledge, **engine_options)  # slow: no lock held
        with self._lock:
            self._place_posted(engine)
            self.engine = engine
        return {"model_dir": str(folder), "model": type(engine.model).__name__, "items": len(engine.item_ids)}

    # ------------------------------------------------------------------------------------------ helpers

    def _row(self, engine: Engine, item_id: str) -> int:
        if item_id not in engine.row_of:
            raise NotFound(f"item {item_id!r} is not in the catalogue")
        return engine.row_of[item_id]

    @staticmethod
    def _items(engine: Engine, ranked: Ranked) -> list[dict]:
        return [
            {"item_id": engine.item_ids[r], "score": float(s), "title": engine.titles[r]}
            for r, s in zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True)
        ]
