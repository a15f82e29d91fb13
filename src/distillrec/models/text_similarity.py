"""Text-only recommender: how much the language model knows with no training at all.

Input: `text_embeddings` `(n_items, d_text)` (L2-normalised LM embeddings of item texts). Output: a `Recommender`
whose score for user u and item i is the cosine similarity between i's embedding and the recency-weighted mean
of the embeddings of u's last `max_history` history items:

    q_u = sum_j w_j z_{s_j} / ||.||,   w_j = decay^(age_j)  (age 0 = most recent),   score(u, i) = q_u . z_i

With `centre=True` every z is first moved by the mean of the table and normalised again, z <- (z - mean z) /
||.||: sentence embeddings share a common direction (their anisotropy; Ethayarajh 2019, Su et al. 2021's
whitening), which otherwise dominates every cosine. `fit` learns nothing from the interactions (it only checks
shapes), so `n_params` is the size of the text table.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import TextSimilarityParams


class TextSimilarity(Recommender):
    params_model = TextSimilarityParams
    array_params = ("text_embeddings",)

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        table = np.asarray(self.text_embeddings, dtype=np.float32)
        if table.shape[0] != train.n_items:
            raise ValueError(
                f"text_embeddings has {table.shape[0]} rows but the data has {train.n_items} items"
            )
        if self.centre:
            table = table - table.mean(axis=0, keepdims=True)
        norms = np.linalg.norm(table, axis=1, keepdims=True)
        self.table_ = table / np.maximum(norms, 1e-12)  # (n_items, d_text)
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        queries = np.zeros((len(users), self.table_.shape[1]), dtype=np.float32)  # (batch, d_text)
        for row, user in enumerate(users):
            seq = history.sequence(int(user))[-self.max_history :]
            if len(seq):
                weights = self.decay ** np.arange(len(seq) - 1, -1, -1, dtype=np.float32)  # (len,)
                queries[row] = weights @ self.table_[seq]
        return self._cosines(queries)

    def prefix_scores(self, sequence: np.ndarray, n: int) -> np.ndarray:
        """(n, n_items): row j is `score` of a user whose history is `sequence` up to and including its
        (len - n + j)-th item, i.e. the scores after each of the last `n` items (a teacher export's positions)."""
        sequence = np.asarray(sequence)[-(n + self.max_history - 1) :]  # the items any of those queries reads
        ends = np.arange(len(sequence) - n, len(sequence))  # (n,) the last item each query reads
        age = ends[:, None] - np.arange(len(sequence))[None, :]  # (n, len) steps back from that item
        inside = (age >= 0) & (age < self.max_history)
        weights = np.where(inside, self.decay ** np.maximum(age, 0).astype(np.float32), 0).astype(np.float32)
        return self._cosines(weights @ self.table_[sequence])  # (n, d_text) queries

    def _cosines(self, queries: np.ndarray) -> np.ndarray:
        """(batch, n_items) cosines of the un-normalised `queries` with every item (0 for an empty query)."""
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        return queries @ self.table_.T

    def n_params(self) -> int:
        return int(self.table_.size)
