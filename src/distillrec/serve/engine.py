"""One loaded model, ready to serve: its items (known and posted), their vectors, and top-k for a history.

Input: a `SavedModel` (`recommend.load`) and, optionally, the `TextKnowledge` of its teacher folder.
Items live in one row space: rows `0 .. n_known-1` are the model's catalogue, later rows the items posted by
text, in the order they were posted.

A *vector model* (the sequence models: SASRec, the teacher, the `sasrec`/`gru4rec`/`two_tower` students, an ONNX
export) scores a user as `item_table @ encode(history)`. For these the engine keeps the item table in an index
(`serve/index.py`: exact or faiss HNSW), and a posted item joins it at once: its text goes through the teacher's
text encoder and takes the vector of the known item nearest to it in the text space (`serve/placement.py`); a
history that holds a posted item is read as holding that known item (the model has no input vector for the new
one), while the posted item's own row is what the answer excludes. Other models (EASE, ItemKNN, MostPop; iALS/BPR/MF, which cannot read new feedback) are served through
`SavedModel.rank` and cannot place posted items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillrec.recommend import Request, SavedModel, as_interactions
from distillrec.serve.index import ExactIndex, make_index, recall_at_k
from distillrec.serve.knowledge import TextKnowledge
from distillrec.serve.placement import NearestPlacement, unit_rows
from distillrec.serve.store import PostedItem
from distillrec.train.loop import bf16_autocast

__all__ = ["Engine", "Ranked"]


@dataclass(frozen=True)
class Ranked:
    rows: np.ndarray  # item rows, best first
    scores: np.ndarray
    cold_start: bool = False  # no usable history: the most popular items


class Engine:
    """See the module docstring. `index_kind`: "auto", "exact" or "hnsw" (`serve/index.make_index`)."""

    def __init__(
        self,
        saved: SavedModel,
        knowledge: TextKnowledge | None = None,
        index_kind: str = "auto",
        exact_below: int = 200_000,
    ) -> None:
        self.saved = saved
        self.model = saved.model
        self.path = Path(saved.path)
        self.knowledge = knowledge
        self.item_ids = [str(i) for i in saved.catalog.item_ids]
        self.n_known = len(self.item_ids)
        self.row_of = {item: row for row, item in enumerate(self.item_ids)}
        self.user_of = {str(u): i for i, u in enumerate(saved.catalog.user_ids)}
        self.titles = list(knowledge.texts) if knowledge else list(self.item_ids)
        self.folded_titles = [_fold(t, i) for t, i in zip(self.titles, self.item_ids, strict=True)]  # search
        self._unit: ExactIndex | None = None  # unit item vectors, for `similar`
        self.item_counts = saved.catalog.history.item_counts().astype(np.float32)  # popularity, known rows
        self.is_vector_model = bool(
            self.model.reads_history
            and hasattr(self.model, "encode")
            and hasattr(self.model, "item_embeddings")
        )
        self.index: ExactIndex | None = None
        self.placement: NearestPlacement | None = None
        self.reads_as = np.arange(self.n_known, dtype=np.int64)  # row -> the known row a history reads it as
        self.text_vectors = (
            knowledge.text_vectors.copy() if knowledge else None
        )  # (n_rows, d_text), unit rows
        if self.is_vector_model:
            table = self.model.item_embeddings()  # (n_known, dim)
            self.index = make_index(table, index_kind, exact_below)
            if knowledge is not None:
                trained = self.item_counts > 0
                self.trained_rows = np.flatnonzero(trained)  # the items a posted one may be placed at
                self.placement = NearestPlacement().fit(knowledge.text_vectors[trained], table[trained])
        self.recall_at_10 = (
            self._measure_recall() if self.index is not None and self.index.kind != "exact" else 1.0
        )

    # ------------------------------------------------------------------------------------------- items

    @property
    def can_post_items(self) -> bool:
        return self.placement is not None

    def add_items(self, items: list[PostedItem], titles: list[str]) -> None:
        """Place posted items in the model's item space, after the rows there are."""
        if not self.can_post_items:
            raise ValueError(
                "this model cannot place new items (it needs a vector model and its teacher's text)"
            )
        if not items:
            return
        text = np.stack([item.text_vector for item in items]).astype(np.float32)  # (n, d_text)
        nearest = self.trained_rows[self.placement.nearest(text)]  # (n,) known rows
        vectors = self.placement.place(text)  # (n, dim): the nearest known item's vector
        # Requests read while items are added: every list grows before anything that hands out its rows (the
        # index returns rows, `row_of` maps ids to rows), so a row a reader gets is a row of every list.
        self.item_ids.extend(item.item_id for item in items)
        self.titles.extend(titles)
        self.folded_titles.extend(_fold(t, item.item_id) for t, item in zip(titles, items, strict=True))
        self.text_vectors = np.vstack([self.text_vectors, text])
        self.reads_as = np.concatenate([self.reads_as, nearest])
        self.index.add(vectors)
        self._unit = None  # after the add: a `similar` that rebuilds it sees the new rows
        first = len(self.item_ids) - len(items)
        self.row_of.update((item.item_id, first + i) for i, item in enumerate(items))

    def item_vectors(self) -> np.ndarray | None:
        """(n_rows, dim) item vectors of a vector model (known, then posted), else None."""
        return None if self.index is None else self.index.table

    # ------------------------------------------------------------------------------------------ ranking

    def user_vectors(self, histories: list[np.ndarray]) -> np.ndarray:
        """(len(histories), dim) the model's user vector after each history (rows, oldest first, non-empty)."""
        seqs = [self.reads_as[h] for h in histories]
        with bf16_autocast(self.saved.bf16):
            return np.asarray(
                self.model.encode(np.arange(len(seqs)), as_interactions(seqs, self.n_known)), dtype=np.float32
            )

    def rank(self, user: str | None, rows: np.ndarray, k: int, exclude_seen: bool = True) -> Ranked:
        """Top `k` rows for a history of item `rows`. Models that keep a learned vector per user (iALS, BPR, MF)
        score the known `user` by it and cannot read the rows (they are only excluded); for anybody else
        (`user` None) they answer with the most popular items."""
        if self.is_vector_model:
            if len(rows) == 0:
                return self._popular(k)
            vector = self.user_vectors([rows])[0]
            picked, scores = self.index.search(vector, k, rows if exclude_seen else np.zeros(0, np.int64))
            return Ranked(picked, scores)
        if self.model.reads_history:
            request = Request(None, tuple(self.item_ids[r] for r in rows), k)
        elif user is None:  # a learned vector per known user: nobody else can be read
            return self._popular(k, rows if exclude_seen else ())
        else:  # the user's vector; its items beyond the training ones are masked after ranking
            request = Request(user, (), k + len(rows))
        (result,) = self.saved.rank([request], exclude_seen=exclude_seen)
        picked = np.array([self.row_of[i] for i in result.items], dtype=np.int64)
        scores = np.array(result.scores, dtype=np.float32)
        if exclude_seen:
            keep = ~np.isin(picked, rows)
            picked, scores = picked[keep], scores[keep]
        return Ranked(picked[:k], scores[:k], result.cold_start)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """(n_rows,) every item's score after the history `rows` (vector models)."""
        return self.index.scores(self.user_vectors([rows])[0])

    def similar(self, row: int, k: int) -> Ranked:
        """The `k` items nearest to `row` by cosine in the model's item space (vector models) or else in the
        text space, itself excluded."""
        unit = self._unit
        if unit is None or len(unit) <= row:  # computed once, again after items are added
            table = self.item_vectors()
            if table is None:
                if self.text_vectors is None:
                    raise ValueError("this model has no item vectors and no teacher text to compare items by")
                table = self.text_vectors
            unit = self._unit = ExactIndex(unit_rows(table))
        picked, scores = unit.search(unit.table[row], k, np.array([row]))
        return Ranked(picked, scores)

    def search(self, query: str, limit: int) -> list[int]:
        """Rows whose title or id holds every word of `query` (case-insensitive, at most 10 words), most
        interactions first."""
        words = list(dict.fromkeys(query.casefold().split()))[:10]
        found = [row for row, title in enumerate(self.folded_titles) if all(w in title for w in words)]
        counts = np.array([self.item_counts[r] if r < self.n_known else 0.0 for r in found])
        return [found[i] for i in np.argsort(-counts, kind="stable")[:limit]]

    def _popular(self, k: int, exclude=()) -> Ranked:
        order = np.argsort(-self.item_counts, kind="stable")
        order = order[~np.isin(order, exclude)][:k]
        return Ranked(order.astype(np.int64), self.item_counts[order], cold_start=True)

    def _measure_recall(self, n_users: int = 200) -> float:
        """recall@10 of the approximate index against exact scoring, on up to `n_users` known users."""
        history = self.saved.catalog.history
        users = [u for u in range(history.n_users) if len(history.sequence(u))][:n_users]
        if not users:
            return 1.0
        vectors = self.user_vectors([history.sequence(u).astype(np.int64) for u in users])
        return recall_at_k(self.index, vectors, 10)


def _fold(title: str, item_id: str) -> str:
    return f"{title} {item_id}".casefold()
