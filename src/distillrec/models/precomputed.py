"""Scores computed once for a fixed set of users, combined on demand: how a wrapper tries each of its settings
on validation without asking its models again (`ColdStartFallback`, `TextBlend`).

Input: the user indices, one `(len(users), n_items)` matrix per model (in that order of users) and
`combine(*rows) -> scores`, which turns the rows of one batch of users into their scores. Output: a
`Recommender` that scores only those users; changing `combine` between evaluations tries another setting.
`scores_of(models, users, history)` computes those matrices, each model scoring the users once, in batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender


def scores_of(
    models: list[Recommender], users: np.ndarray, history: Interactions, batch_size: int = 1024
) -> list[np.ndarray]:
    """One `(len(users), n_items)` score matrix per model, in the order of `users`."""
    batches = [users[i : i + batch_size] for i in range(0, len(users), batch_size)]
    return [np.concatenate([model.score(b, history) for b in batches]) for model in models]


class Precomputed(Recommender):
    def __init__(
        self,
        users: np.ndarray,
        matrices: list[np.ndarray],
        combine: Callable[..., np.ndarray],
    ) -> None:
        self.row = {int(u): r for r, u in enumerate(users)}
        self.matrices = matrices
        self.combine = combine

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        rows = [self.row[int(u)] for u in users]
        return self.combine(*(m[rows] for m in self.matrices))

    def n_params(self) -> int:
        return 0
