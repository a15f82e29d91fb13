"""Ranking Distillation, RD (Tang & Wang, KDD 2018, "Ranking Distillation: Learning Compact Ranking Models
With High Performance for Recommender System").

The teacher's top-K items are extra, weighted positives for a point-wise (sigmoid) loss:

    L_RD = - sum_{r=1..K} w_r log sigmoid(s_{pi_r})  [ - sum_{j in negatives} log(1 - sigmoid(s_j)) ]

- position importance: w^a_r = exp(-r / lambda) / sum_{r'} exp(-r' / lambda), r = 1..K;
- optional dynamic rank-discrepancy weight, on when `mu` is given:
  w^b_r = max(tanh(mu * (rhat_r - r)), 0), rhat_r = the student's 1-based rank of pi_r among the columns of
  `student_logits` (exact, by counting), or given as `student_ranks` (e.g. exact ranks over the catalogue,
  computed in row chunks by `losses.student_scores`, or the paper's sampled estimate);
  the hybrid weight is w_r = w^a_r * w^b_r (the authors' code), renormalised to sum 1 if `renormalize`.
Weights are constants (detached). The negatives' term is the paper's L_R part for sampled negatives; it is
added only when `negative_items` is given (useful when no other loss pushes negatives down).

Inputs: student_logits (batch, n), teacher_topk_items (batch, K) best first, negative_items (batch, M),
mask (batch, K) bool (False = padding slot, weight 0), student_ranks (batch, K) float, 1-based.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillrec.losses.base import check_reduction, gather_columns, position_weights, reduce
from distillrec.losses.method import KDMethod, TopKBatch
from distillrec.losses.student_scores import catalogue_ranks, student_rank_of


class RankingDistillation(nn.Module):
    def __init__(
        self, lam: float = 1.0, mu: float | None = None, renormalize: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if lam <= 0 or (mu is not None and mu <= 0):
            raise ValueError(f"lam and mu must be > 0, got lam={lam}, mu={mu}")
        self.lam = lam
        self.mu = mu
        self.renormalize = renormalize
        self.reduction = check_reduction(reduction)

    def weights(
        self,
        student_logits: torch.Tensor,
        teacher_topk_items: torch.Tensor,
        mask: torch.Tensor | None = None,
        student_ranks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(batch, K) detached weights w_r."""
        batch, k = teacher_topk_items.shape
        w_pos = position_weights(k, self.lam, student_logits.device, student_logits.dtype)  # (K,)
        w = w_pos.expand(batch, k)  # (batch, K)
        if self.mu is not None:
            if student_ranks is None:
                student_ranks = student_rank_of(student_logits.detach(), teacher_topk_items)  # (batch, K)
            positions = torch.arange(1, k + 1, device=w.device, dtype=w.dtype)  # (K,)
            w = w * torch.tanh(self.mu * (student_ranks.to(w.dtype) - positions)).clamp(min=0.0)
        if mask is not None:
            w = w * mask.to(w.dtype)
        if self.renormalize:
            w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return w.detach()

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_topk_items: torch.Tensor,
        negative_items: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        student_ranks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        w = self.weights(student_logits, teacher_topk_items, mask, student_ranks)  # (batch, K)
        s_top = gather_columns(student_logits, teacher_topk_items, "teacher_topk_items")  # (batch, K)
        per_example = -(w * F.logsigmoid(s_top)).sum(dim=1)  # (batch,)
        if negative_items is not None:
            s_neg = gather_columns(student_logits, negative_items, "negative_items")  # (batch, M)
            # log(1 - sigmoid(x)) = logsigmoid(-x), stable for large |x|
            per_example = per_example - F.logsigmoid(-s_neg).sum(dim=1)
        return reduce(per_example, self.reduction)


def _inputs(batch: TopKBatch, spec) -> dict:
    inputs = {
        "student_logits": batch.student,
        "teacher_topk_items": batch.top,
        "negative_items": batch.negatives,
    }
    if (
        spec.loss_params.get("mu") is not None
    ):  # the rank-discrepancy weight reads the student's catalogue ranks
        inputs["student_ranks"] = catalogue_ranks(batch.hidden, batch.table, batch.top_items)
    return inputs


METHOD = KDMethod(
    "rd",
    reads="topk",
    loss=RankingDistillation,
    defaults={"weight": 1.0, "k": 10, "lam": 5.0, "negatives": 10},
    inputs=_inputs,
)
