"""Parameter distillation: the student's item embedding table learns from the teacher's item embeddings.

The teacher's table Z (n_items, dim_t) is first compressed to the student's width by PCA:

    C = (Z - mean(Z)) V_d                 V_d = top-d right singular vectors of Z - mean(Z); C: (n_items, d)

`layers.pca.pca_compress(Z, d)` returns C (each component's sign fixed so its largest-|.| loading is positive, for
determinism); with `whiten=True` each column is divided by its standard deviation. C also serves as an
initialiser: `student.item_emb.weight.data.copy_(scale * pca_compress(Z, d, whiten=True))`, with `scale` the
student's usual init std.

- "hard" (ParameterHardLoss): L = mean_{i in items} || e^s_i - c_i ||_2^2, over the given `items` (batch,)
  int64 rows (e.g. the batch's items) or over every row; per-example = per item.
- "soft" (ParameterSoftLoss): match the first two moments of the two embedding distributions (rows = samples):
      L = || mu_s - mu_c ||_2^2 + || Sigma_s - Sigma_c ||_F^2
      mu = (1/n) sum_i e_i,   Sigma = 1/(n-1) sum_i (e_i - mu)(e_i - mu)^T   (d x d)
  Unlike "hard" it leaves the student free to place each item anywhere that keeps the distribution's shape
  (invariant to permuting rows). Over `items` only, if given. It is one number per table: no per-example form.
Inputs: student_item_emb (n_items, d) (the student's parameter), teacher_compressed C (n_items, d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from distillrec.losses.base import check_reduction, reduce
from distillrec.losses.method import BindContext, KDMethod


def _rows(student: torch.Tensor, teacher: torch.Tensor, items: torch.Tensor | None):
    if student.shape != teacher.shape:
        raise ValueError(
            f"student_item_emb {tuple(student.shape)} and teacher_compressed {tuple(teacher.shape)} must match "
            "(compress the teacher with pca_compress(teacher_emb, student_dim))"
        )
    teacher = teacher.detach()
    return (student, teacher) if items is None else (student[items], teacher[items])


class ParameterHardLoss(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        student_item_emb: torch.Tensor,
        teacher_compressed: torch.Tensor,
        items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        student, teacher = _rows(student_item_emb, teacher_compressed, items)  # (n, d)
        return reduce((student - teacher).pow(2).sum(dim=1), self.reduction)  # per item (n,)


def _moments(emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = emb.mean(dim=0)  # (d,)
    centred = emb - mu  # (n, d)
    return mu, centred.T @ centred / (emb.shape[0] - 1)  # (d,), (d, d)


class ParameterSoftLoss(nn.Module):
    def forward(
        self,
        student_item_emb: torch.Tensor,
        teacher_compressed: torch.Tensor,
        items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        student, teacher = _rows(student_item_emb, teacher_compressed, items)  # (n, d)
        if student.shape[0] < 2:
            raise ValueError("the soft parameter loss needs at least 2 rows to estimate a covariance")
        mu_s, cov_s = _moments(student)
        mu_t, cov_t = _moments(teacher)
        return (mu_s - mu_t).pow(2).sum() + (cov_s - cov_t).pow(2).sum()


@dataclass(frozen=True)
class HardOptions:
    init: bool = False  # also start the student's item table at the compressed teacher table


def init_item_table(module: nn.Module, teacher: BindContext, spec) -> None:
    """`param_hard:init=true`: copy the compressed teacher table (n_items, dim) into the student's stored item
    table; a computed table (e.g. a text tower) cannot be initialised and is an error."""
    if not spec.init:
        return
    table = teacher.compressed_table
    target = module.item_table()
    stored = isinstance(target, nn.Parameter) or isinstance(getattr(target, "_base", None), nn.Parameter)
    if not stored or target.shape != table.shape:
        raise ValueError(
            f"param_hard:init=true needs a student whose item_table() is a stored (n_items, dim) parameter; "
            f"{type(module).__name__}'s is {'computed' if not stored else tuple(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(table.to(target.dtype))


HARD = KDMethod(
    "param_hard",
    reads="table",
    loss=ParameterHardLoss,
    defaults={"weight": 0.1},
    options=HardOptions,
    on_bind=init_item_table,
)
SOFT = KDMethod("param_soft", reads="table", loss=ParameterSoftLoss, defaults={"weight": 1.0})
