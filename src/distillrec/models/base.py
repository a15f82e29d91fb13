"""The one interface every model (baseline, teacher, student) offers to evaluation and serving.

`fit(train, valid)` learns from training interactions (`valid` only for early stopping) and returns self.
`score(users, history)` returns a `(len(users), n_items)` float32 matrix of scores for the given user indices,
reading each user's history (time-ordered items, from `history.sequence(u)` or rows of
`history.user_items`). Evaluation masks the history items itself, so `score` need not.

Test-time protocol: every model sees train + validation as the user's history. Models that keep one learned
vector per user (iALS, BPR-MF) cannot read a new history, so they set `refit_for_test = True` and are fit
again on train + validation with their tuned hyperparameters before the test; the others read the longer
history directly (a sequence model as its input sequence, EASE / ItemKNN as the user's row).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

import numpy as np

from distillrec.data.interactions import Interactions


class Recommender(ABC):
    refit_for_test: ClassVar[bool] = False

    @abstractmethod
    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self: ...

    @abstractmethod
    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray: ...

    @abstractmethod
    def n_params(self) -> int:
        """Number of learned parameters (what must be stored to serve the model)."""

    def get_params(self) -> dict:
        """Constructor arguments (scikit-learn style): every public attribute not ending in `_`."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}
