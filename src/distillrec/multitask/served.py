"""`MultiTaskStudent`: a trained multi-task (ESMM) student as a `Recommender`, so its model folder is read by
`distillrec.load` and served like any other model (`distillrec recommend`, `distillrec serve`).

It answers "top-k for this user" by ranking the whole catalogue by `rank_by`: `ctcvr` (the default: the chance of
a click followed by a conversion, pCTCVR = pCTR x pCVR, the ranking `conversion_ranking` evaluates), `ctr` (the
click) or `cvr` (a conversion given a click). The student reads ids only, one learned vector per user, so it
answers for the users it was trained on, with or without clicks (`reads_history = False`): a new user gets the
cold-start answer of `distillrec.load`, and a request that adds items to a history is refused. It is trained on
impressions by `distillrec multitask` (`stages/multitask.py` writes `students/<variant>-seed<s>/model/`), not by
`fit`.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field

from distillrec.data.interactions import Interactions
from distillrec.models.params import Params
from distillrec.models.torch_model import TorchRecommender
from distillrec.multitask.esmm import ESMM
from distillrec.multitask.params import MultiTaskParams
from distillrec.multitask.train import catalogue_scores

__all__ = ["MultiTaskStudent", "ServedMultiTaskParams"]


class ServedMultiTaskParams(Params):
    """What builds the student's module (the training settings stay in its stage's `result.json`)."""

    dim: int = Field(16, ge=1)
    hidden: int = Field(32, ge=2)
    bottom: Literal["shared", "mmoe"] = "mmoe"
    n_experts: int = Field(4, ge=1)
    rank_by: Literal["ctcvr", "ctr", "cvr"] = "ctcvr"


class MultiTaskStudent(TorchRecommender):
    params_model = ServedMultiTaskParams
    reads_history = False
    module_: ESMM

    @classmethod
    def from_trained(cls, model: ESMM, params: MultiTaskParams, rank_by: str = "ctcvr") -> MultiTaskStudent:
        """The served form of a student ESMM trained with `params` (its module is `model`, moved to the CPU)."""
        if model.has_text:
            raise ValueError(
                "a multi-task teacher reads the text tables of its stage; only students are served"
            )
        served = cls(
            dim=params.dim,
            hidden=params.hidden,
            bottom=params.bottom,
            n_experts=params.n_experts,
            rank_by=rank_by,
        )
        served.module_ = model.cpu().eval()
        return served

    def _build_module(self, train: Interactions) -> ESMM:
        return ESMM(train.n_users, train.n_items, self.dim, self.hidden, self.bottom, self.n_experts)

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        raise TypeError(
            "a multi-task student trains on impressions with a click and a conversion: train it with "
            "`distillrec multitask` and load its model folder (students/<variant>-seed<s>/model)"
        )

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return catalogue_scores(self.module_, users, history.n_items, self.rank_by)

    def n_params(self) -> int:
        return self.module_.n_params()
