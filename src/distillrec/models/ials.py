"""iALS: implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008).

Input: training `Interactions`, read as the binary `user_items` matrix R `(n_users, n_items)`.
Output: `user_factors_` `(n_users, factors)` and `item_factors_` `(n_items, factors)`; scores are
`user_factors_[users] @ item_factors_.T`. Wraps `implicit.cpu.als.AlternatingLeastSquares` (conjugate gradient).

Minimises  sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (|X|^2 + |Y|^2)  with p_ui = r_ui and
c_ui = 1 + alpha * r_ui (Hu et al.'s confidence). implicit 0.7.3 instead reads the matrix it is given as c_ui
itself (positives weigh `alpha * value`, unobserved entries 1, so `alpha=1` on a binary matrix would give
positives no extra weight at all); this class therefore passes the matrix 1 + alpha * R on the nonzeros with
implicit's own `alpha` left at 1. Rendle et al. 2022 ("Revisiting the performance of iALS") weigh unobserved
entries by alpha_0 instead, which matches alpha = 1 / alpha_0 here up to the scale of the regularization.

Each user has a learned vector, so a user's longer test-time history cannot be read without refitting:
`refit_for_test = True` (see `models/base.py`).
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import threadpoolctl
from implicit.cpu.als import AlternatingLeastSquares

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import IALSParams


class IALS(Recommender):
    refit_for_test: ClassVar[bool] = True
    reads_history: ClassVar[bool] = False

    params_model = IALSParams

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        confidence = train.user_items.astype(np.float32)  # (n_users, n_items) binary
        confidence.data = 1.0 + self.alpha * confidence.data  # c_ui = 1 + alpha r_ui
        # implicit's ALS runs its own threads; a multi-threaded BLAS underneath slows it down a lot.
        with threadpoolctl.threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                num_threads=2,
                random_state=self.seed,
            )
            als.fit(confidence, show_progress=False)
        self.user_factors_ = np.asarray(als.user_factors, dtype=np.float32)  # (n_users, factors)
        self.item_factors_ = np.asarray(als.item_factors, dtype=np.float32)  # (n_items, factors)
        return self

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T  # (batch, n_items)

    def n_params(self) -> int:
        return int(self.user_factors_.size + self.item_factors_.size)
