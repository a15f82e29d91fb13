"""The KD methods by name: one line per method, each declared in its own file (`METHOD = KDMethod(...)`).

Adding a method: write its loss and its `KDMethod` in one file under `losses/`, then add it to `KD_METHODS`
below; `losses/spec.py` parses its options and `distill/objective.py` feeds it, with nothing else to change.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from distillrec.losses import (
    collaborative_embedding_kd,
    distillation_experts,
    hint,
    importance_ranking_kd,
    parameter,
    ranking_kd,
    relaxed_ranking_kd,
    soft_label_kd,
)
from distillrec.losses.method import KDMethod

__all__ = ["KD_METHODS", "ALIASES", "KD_LOSSES", "make_kd_loss"]

KD_METHODS: dict[str, KDMethod] = {
    m.name: m
    for m in (
        soft_label_kd.METHOD,  # Hinton et al. 2015: soft labels
        ranking_kd.METHOD,  # Tang & Wang 2018: RD
        relaxed_ranking_kd.METHOD,  # Kang et al. 2020: RRD (DE-RRD)
        importance_ranking_kd.METHOD,  # Cui et al. 2024: DLLM2Rec's importance-weighted ranking
        hint.METHOD,  # Romero et al. 2015: FitNets hints
        distillation_experts.METHOD,  # Kang et al. 2020: distillation experts (DE-RRD)
        parameter.HARD,  # the student's item table -> PCA of the teacher's
        parameter.SOFT,  # mean and covariance of the two tables
        collaborative_embedding_kd.METHOD,  # Cui et al. 2024: DLLM2Rec's collaborative embedding distillation
    )
}
# shorthand method names: alias -> (method, default options the user's options override)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {"param_init": ("param_hard", {"init": True, "weight": 0.0})}
# the registered loss modules (methods without a loss change the student instead)
KD_LOSSES: dict[str, type[nn.Module]] = {n: m.loss for n, m in KD_METHODS.items() if m.loss is not None}


def make_kd_loss(name: str, **params) -> nn.Module:
    """Build a registered distillation loss from its constructor hyperparameters."""
    if name not in KD_METHODS or KD_METHODS[name].loss is None:
        raise KeyError(f"unknown distillation loss {name!r}; choices: {sorted(KD_LOSSES)}")
    return KD_METHODS[name].loss(**params)
