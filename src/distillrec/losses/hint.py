"""Hint (feature) distillation, FitNets (Romero et al., ICLR 2015, "FitNets: Hints for Thin Deep Nets").

The student's hidden state is mapped to the teacher's width by a learned linear regressor W (no bias) and
pulled towards the teacher's hidden state:

    distance="mse":    L = mean_b || W h^s_b - h^t_b ||_2^2          (squared norm summed over the features)
    distance="cosine": L = mean_b ( 1 - cos(W h^s_b, h^t_b) )

Inputs: student_hidden (batch, ..., dim_s), teacher_hidden (batch, ..., dim_t) (e.g. (batch, dim) user states
or (batch, seq_len, dim) per-position states); extra middle axes are averaged into the per-example loss.
W is a parameter of this loss: the optimiser must include it (`CompositeLoss.parameters()` does). When
dim_s == dim_t, W starts as the identity, so a student that already equals the teacher has zero loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillrec.losses.base import check_reduction, reduce
from distillrec.losses.method import KDMethod

DISTANCES = ("mse", "cosine")


class HintLoss(nn.Module):
    def __init__(
        self, student_dim: int, teacher_dim: int, distance: str = "mse", reduction: str = "mean"
    ) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance={distance!r} is not one of {list(DISTANCES)}")
        self.distance = distance
        self.reduction = check_reduction(reduction)
        self.project = nn.Linear(student_dim, teacher_dim, bias=False)  # W: dim_s -> dim_t
        if student_dim == teacher_dim:
            nn.init.eye_(self.project.weight)

    def forward(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        mapped = self.project(student_hidden)  # (batch, ..., dim_t)
        if mapped.shape != teacher_hidden.shape:
            raise ValueError(
                f"W h_student has shape {tuple(mapped.shape)} but teacher_hidden has {tuple(teacher_hidden.shape)}"
            )
        teacher = teacher_hidden.detach()
        if self.distance == "mse":
            per_position = (mapped - teacher).pow(2).sum(dim=-1)  # (batch, ...)
        else:
            per_position = 1.0 - F.cosine_similarity(mapped, teacher, dim=-1)  # (batch, ...)
        per_example = per_position.reshape(per_position.shape[0], -1).mean(dim=1)  # (batch,)
        return reduce(per_example, self.reduction)


METHOD = KDMethod("hint", reads="hidden", loss=HintLoss, defaults={"weight": 1.0, "distance": "cosine"})
