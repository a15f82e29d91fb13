"""MostPop: score = number of training interactions of the item. The floor every model must clear."""

from __future__ import annotations

from typing import Self

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import MostPopParams


class MostPop(Recommender):
    params_model = MostPopParams

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        self.popularity_ = train.item_counts().astype(np.float32)  # (n_items,)
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), len(self.popularity_))).copy()

    def n_params(self) -> int:
        return len(self.popularity_)
