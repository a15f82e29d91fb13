"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking (Rendle et al. 2009).

Input: training `Interactions`, read as the binary `user_items` matrix `(n_users, n_items)`.
Output: `user_factors_` and `item_factors_`, each with `factors + 1` columns; scores are
`user_factors_[users] @ item_factors_.T`. Wraps `implicit.cpu.bpr.BayesianPersonalizedRanking`.

SGD on sampled triples (u, i, j), i in u's items, j a random item, maximising
    ln sigmoid(x_ui - x_uj) - regularization (|w_u|^2 + |h_i|^2 + |h_j|^2).
implicit appends a bias column: the last item column is a learned item bias and the last user column is
fixed to 1, so the dot product includes the bias. Both columns are stored and counted in `n_params`.
`iterations` is the number of epochs (one epoch = as many samples as training interactions).
Training runs on one thread: implicit's multi-threaded BPR is Hogwild SGD, whose result depends on thread
timing even with a fixed seed; with one thread a seed gives the same model every time.

Each user has a learned vector: `refit_for_test = True` (see `models/base.py`).
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import BPRParams


class BPR(Recommender):
    refit_for_test: ClassVar[bool] = True
    reads_history: ClassVar[bool] = False

    params_model = BPRParams

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        bpr = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=1,
            random_state=self.seed,
        )
        bpr.fit(train.user_items.astype(np.float32), show_progress=False)
        self.user_factors_ = np.asarray(bpr.user_factors, dtype=np.float32)  # (n_users, factors + 1)
        self.item_factors_ = np.asarray(bpr.item_factors, dtype=np.float32)  # (n_items, factors + 1)
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T  # (batch, n_items)

    def n_params(self) -> int:
        # The user column fixed to 1 is stored too (it is what makes the dot product add the item bias).
        return int(self.user_factors_.size + self.item_factors_.size)
