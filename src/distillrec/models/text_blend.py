"""Text blend: a trained model's scores plus a weight times the text-only model's, each standardised per user.

A model that learns one vector per item ranks the rare items by the little it saw of them, while the text-only
model (`TextSimilarity`) ranks them by what the language model knows of their text, as well as it ranks any
item. Adding the two views' scores lets the text vote on every item (the late-fusion counterpart of LLM-ESR's
frozen semantic view beside the collaborative one), for each user u and item i:

    s'_ui = z(s)_ui + weight * z(t)_ui,     z(x)_ui = (x_ui - mean_u(x)) / std_u(x)

with s the model's scores, t the text model's, and the mean and standard deviation over the user's finite
scores (a score of -inf stays -inf; a user whose scores hardly vary gets z = 0). Standardising makes the weight
mean the same on every user and every model: weight 0 is the model's ranking, a large weight the text's.

Input: a fitted `model` and a fitted `text` model (not refit here). `fit(train, valid)` with `weight=None` picks
the weight from `weights` by validation NDCG@10 over every validation user; with `tail_floor` (the default) only
among the weights whose validation NDCG@10 on tail targets (`evaluate/slices.py`: outside the most popular
items) is at least the text model's own there, so the blend keeps what the text knows of rare items by
construction (where no weight reaches it, the one with the best tail). With `drift`, both means weight each
validation user by `evaluate/drift.drift_weights`, so the targets weigh as rare as the later test targets are
expected to be (estimated from the training histories one step earlier). Picking holds both models' scores of every
validation user in memory at once (2 x users x items float32). Output: a `Recommender`; `validation_` maps each
tried weight to its validation NDCG@10 overall and on the tail, and `weight_curve(history, targets)` evaluates
every weight on other targets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Self

import numpy as np

from distillrec.data.interactions import Interactions
from distillrec.evaluate.drift import drift_weights, weighted_summary
from distillrec.evaluate.ranking import Evaluation, evaluate
from distillrec.evaluate.slices import slice_summaries
from distillrec.models.base import Recommender
from distillrec.models.precomputed import Precomputed, scores_of

__all__ = ["TextBlend", "blend_in_model_units", "blend_scores", "pick_weight", "standardise"]

_FLAT = 1e-6  # a spread of scores below this is no signal (z = 0)
DEFAULT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


def _moments(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and standard deviation over its finite entries, (rows, 1) each (0 where none is)."""
    values = np.where(np.isfinite(scores), scores, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no finite score: mean of nothing
        return np.nan_to_num(np.nanmean(values, axis=1, keepdims=True)), np.nan_to_num(
            np.nanstd(values, axis=1, keepdims=True)
        )


def standardise(scores: np.ndarray, moments: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Each row as z-scores over its finite entries (-inf stays -inf; a flat row becomes 0); `moments`: the rows'
    `_moments`, when the caller has them already."""
    finite = np.isfinite(scores)
    mean, std = _moments(scores) if moments is None else moments
    flat = std < _FLAT
    z = np.where(flat, 0.0, (np.where(finite, scores, 0.0) - mean) / np.where(flat, 1.0, std))
    return np.where(finite, z, -np.inf).astype(np.float32)


def blend_scores(scores: np.ndarray, text_scores: np.ndarray, weight: float) -> np.ndarray:
    """(users, n_items) blended scores as in the module docstring."""
    return standardise(scores) + np.float32(weight) * standardise(text_scores)


def blend_in_model_units(scores: np.ndarray, text_scores: np.ndarray, weight: float) -> np.ndarray:
    """`blend_scores` mapped back to the model's own scale, row by row: times the row's standard deviation of
    `scores`, plus its mean. The ranking is the blend's; weight 0 gives back `scores` (up to rounding), so a
    teacher export of the blend (`teachers/export.py`) has soft labels as sharp as the teacher's own logits."""
    mean, std = _moments(scores)
    blended = standardise(scores, (mean, std)) + np.float32(weight) * standardise(text_scores)
    return (blended * std + mean).astype(np.float32)


def pick_weight(validation: dict[float, dict[str, float]], floor: float | None = None) -> float:
    """The weight of `validation` (weight -> {"NDCG@10", "tail"}) with the best NDCG@10, of ties the first listed
    (the smaller, in the default order); with a `floor`, only among the weights whose tail reaches it (where
    none does, the weight with the best tail)."""
    candidates = list(validation)
    if floor is not None:
        reach = [w for w in candidates if validation[w]["tail"] >= floor]
        candidates = reach or [max(candidates, key=lambda w: validation[w]["tail"])]
    return max(candidates, key=lambda w: validation[w]["NDCG@10"])


class TextBlend(Recommender):
    def __init__(
        self,
        model: Recommender,
        text: Recommender,
        weight: float | None = None,
        weights: tuple[float, ...] = DEFAULT_WEIGHTS,
        tail_floor: bool = True,
        drift: bool = False,
    ) -> None:
        if weight is not None and weight < 0:
            raise ValueError(f"TextBlend: weight must be >= 0, got {weight}")
        if any(w < 0 for w in weights):
            raise ValueError(f"TextBlend: every weight to pick from must be >= 0, got {weights}")
        if weight is None and not weights:
            raise ValueError("TextBlend: weights to pick from is empty; give some, or a weight")
        self.model = model
        self.text = text
        self.weight = weight
        self.weights = weights
        self.tail_floor = tail_floor
        self.drift = drift

    def fit(self, train: Interactions, valid: Interactions | None = None, batch_size: int = 1024) -> Self:
        if self.weight is not None:
            self.weight_ = float(self.weight)
            return self
        if valid is None:
            raise ValueError(
                "weight=None picks the weight on validation: pass `valid` to fit, or give a weight"
            )
        curve = self.weight_curve(train, valid, batch_size)
        summary = self._validation_summary(train, valid)
        self.validation_ = {w: summary(e) for w, e in curve.items()}
        floor = None
        if self.tail_floor and next(iter(self.validation_.values()))["tail"] is not None:
            self.text_tail_ = floor = summary(evaluate(self.text, train, valid))["tail"]
        self.weight_ = pick_weight(self.validation_, floor)
        return self

    def _validation_summary(
        self, train: Interactions, valid: Interactions
    ) -> Callable[[Evaluation], dict[str, float | None]]:
        """Evaluation -> {"NDCG@10", "tail"} on `valid`: plain means, or with `drift` means over the validation
        users weighted by `evaluate/drift.drift_weights`."""
        if self.drift:
            return partial(weighted_summary, targets=valid, train=train, weights=drift_weights(train, valid))

        def plain(evaluation: Evaluation) -> dict[str, float | None]:
            tail = slice_summaries(evaluation, valid, train).get("tail", {}).get("NDCG@10")
            return {"NDCG@10": evaluation.summary["NDCG@10"], "tail": tail}

        return plain

    def weight_curve(
        self, history: Interactions, targets: Interactions, batch_size: int = 1024
    ) -> dict[float, Evaluation]:
        """The evaluation on `targets` at every weight of `weights` (or the fixed weight), each model scoring
        each user once; see the module docstring for the memory this takes."""
        users = targets.active_users()
        scores = scores_of([self.model, self.text], users, history, batch_size)  # 2 x (n_users, n_items)
        weights = self.weights if self.weight is None else (self.weight,)
        return {
            float(w): evaluate(Precomputed(users, scores, partial(blend_scores, weight=w)), history, targets)
            for w in weights
        }

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        scores = self.model.score(users, history)
        if self.weight_ == 0:
            return standardise(scores)
        return blend_scores(scores, self.text.score(users, history), self.weight_)

    def n_params(self) -> int:
        """The model's parameters plus the text model's (a model that reads the same table, as the teacher
        does, has it counted twice)."""
        return self.model.n_params() + self.text.n_params()
