"""Cold-start fallback: a trained model's scores, with its cold items scored by their text instead.

A cold item has no training interaction, so a model that learned one vector per item knows nothing reliable
about it, while the language model's embedding of its text is as good as anyone's. The wrapper keeps the model's
scores for every item it was trained on and replaces those of the cold items by the text-only score
(`TextSimilarity`: cosine between the item's text and the user's recent history) mapped into the model's score
scale, for each user u:

    s'_ui = s_ui                                          i trained (a training interaction)
    s'_ui = mean_u(s) + std_u(s) * (z_ui + shift)         i cold,   z_ui = (t_ui - mean_u(t)) / std_u(t)

with s the model's scores, t the text scores, and the means and standard deviations taken over every trained
item of the catalogue (the user's history included, which evaluation masks afterwards; a score of -inf is left
out). Where the text scores of a user hardly vary (no history: all zero), z is 0. So a cold item whose text is as far above the user's typical item as a model's top pick is
above the model's typical item lands among the top picks; `shift` (in standard deviations) sets how far cold
items are trusted: large and negative, never shown; `-inf` turns the fallback off (the model alone).

Input: a fitted `model` (not refit here) and the item `text_embeddings` (n_items, d_text). `fit(train, valid)`
marks the items without a training interaction as cold and, with `shift=None`, picks the shift from `shifts`
(and `-inf`) by validation NDCG@10 over all validation users, since placing cold items costs warm targets their
places. Picking holds the model's and the text's scores of every validation user in memory at once
(2 x users x items float32: 2.2 GB for Amazon Beauty's 22k users x 12k items) to score each shift once.
Output: a `Recommender`; `validation_ndcg_` maps each tried shift to its validation NDCG@10, and
`shift_curve(history, targets)` evaluates every shift on other targets (the test: what each shift would have
given, beside the one validation picked).
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Self

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import Evaluation, evaluate
from distillrec.models.base import Recommender
from distillrec.models.precomputed import Precomputed, scores_of
from distillrec.models.text_similarity import TextSimilarity

__all__ = ["ColdStartFallback", "fallback_scores"]

_FLAT_TEXT = 1e-6  # a spread of text cosines below this is no signal (z = 0)
DEFAULT_SHIFTS = tuple(float(s) for s in np.arange(-1.0, 5.01, 0.5))


def fallback_scores(
    scores: np.ndarray, text_scores: np.ndarray, cold: np.ndarray, shift: float
) -> np.ndarray:
    """(users, n_items) scores with the `cold` columns (bool mask over items) replaced as in the module
    docstring; `shift=-inf` returns the model's scores unchanged. Needs at least two trained items."""
    out = np.array(scores, dtype=np.float32, copy=True)
    if not cold.any() or shift == -np.inf:
        return out
    warm = ~cold
    # a masked (-inf) score is no evidence: left out of the mean and spread (a row with none finite gets 0)
    warm_scores = np.where(np.isfinite(out[:, warm]), out[:, warm], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(warm_scores, axis=1, keepdims=True))  # (users, 1)
        std = np.nan_to_num(np.nanstd(warm_scores, axis=1, keepdims=True))
    text_warm = text_scores[:, warm]
    text_mean, text_std = text_warm.mean(axis=1, keepdims=True), text_warm.std(axis=1, keepdims=True)
    flat = text_std < _FLAT_TEXT  # (users, 1)
    safe_std = np.where(flat, 1.0, text_std)
    z = np.where(flat, 0.0, (text_scores[:, cold] - text_mean) / safe_std)  # (users, n_cold)
    out[:, cold] = mean + std * (z + shift)
    return out


class ColdStartFallback(Recommender):
    def __init__(
        self,
        model: Recommender,
        text_embeddings: np.ndarray,
        shift: float | None = None,
        shifts: tuple[float, ...] = DEFAULT_SHIFTS,
        max_history: int = 20,
        decay: float = 0.9,
    ) -> None:
        self.model = model
        self.text_embeddings = text_embeddings
        self.shift = shift
        self.shifts = shifts
        self.max_history = max_history
        self.decay = decay

    def fit(self, train: Interactions, valid: Interactions | None = None, batch_size: int = 1024) -> Self:
        self.cold_ = train.item_counts() == 0  # (n_items,)
        if (~self.cold_).sum() < 2:
            raise ValueError("ColdStartFallback needs at least two items with a training interaction")
        self.text_ = TextSimilarity(self.text_embeddings, max_history=self.max_history, decay=self.decay)
        self.text_.fit(train)
        if self.shift is not None:
            self.shift_ = float(self.shift)
            return self
        if valid is None:
            raise ValueError("shift=None picks the shift on validation: pass `valid` to fit, or give a shift")
        curve = self.shift_curve(train, valid, batch_size)
        self.validation_ndcg_ = {shift: float(e.summary["NDCG@10"]) for shift, e in curve.items()}
        # the first best: off (-inf, tried first) wins a tie
        self.shift_ = max(self.validation_ndcg_, key=self.validation_ndcg_.__getitem__)
        return self

    def shift_curve(
        self, history: Interactions, targets: Interactions, batch_size: int = 1024
    ) -> dict[float, Evaluation]:
        """The evaluation on `targets` at every shift of `shifts`, and off (-inf, first), after `fit` (which
        calls it on validation). The model and the text score each user once; see the module docstring for
        the memory this takes."""
        users = targets.active_users()
        scores = scores_of([self.model, self.text_], users, history, batch_size)  # 2 x (n_users, n_items)
        curve = {}
        for shift in (-np.inf, *self.shifts):
            fixed = Precomputed(users, scores, partial(fallback_scores, cold=self.cold_, shift=shift))
            curve[shift] = evaluate(fixed, history, targets)
        return curve

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        scores = self.model.score(users, history)
        if self.shift_ == -np.inf:
            return scores
        return fallback_scores(scores, self.text_.score(users, history), self.cold_, self.shift_)

    def n_params(self) -> int:
        """The model's parameters plus the text table the fallback reads (a model that reads the same table,
        as the teacher does, has it counted twice)."""
        return self.model.n_params() + self.text_.n_params()
