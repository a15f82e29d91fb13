"""Relaxed Ranking Distillation, RRD (Kang, Hwang, Kweon & Yu, CIKM 2020, "DE-RRD: A Knowledge Distillation
Framework for Recommender System", Section 4.2).

The teacher's ranking is split into K "interesting" items pi_1..pi_K (its top-K, best first) and L
"uninteresting" items u_1..u_L (sampled from below the top-K). RRD maximises a relaxed Plackett-Luce
likelihood: the interesting items must appear in the teacher's order, and all of them above every
uninteresting item, whose order among themselves is ignored:

    p(pi | s) = prod_{k=1..K} exp(s_{pi_k}) / ( sum_{i=k..K} exp(s_{pi_i}) + sum_{j=1..L} exp(s_{u_j}) )
    L_RRD     = - log p(pi | s)
              = sum_{k=1..K} [ logsumexp({s_{pi_k}, ..., s_{pi_K}} U {s_{u_1}, ..., s_{u_L}}) - s_{pi_k} ]

computed stably with a reversed log-cumsum-exp, averaged over the batch. Without `uninteresting_items` it is
ListMLE on the top-K. The paper samples the K interesting items from a longer teacher list (rank-discounted)
and then sorts them by teacher rank; that sampling belongs to the data side: pass the sampled, sorted items as
`teacher_topk_items`.

Inputs: student_logits (batch, n), teacher_topk_items (batch, K) best first, uninteresting_items (batch, L).
The loss is minimal (not zero) when the student's scores follow the teacher's order with large margins.
"""

from __future__ import annotations

import torch
from torch import nn

from distillrec.losses.base import check_reduction, gather_columns, reduce
from distillrec.losses.method import KDMethod, TopKBatch


class RelaxedRankingDistillation(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_topk_items: torch.Tensor,
        uninteresting_items: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s_int = gather_columns(student_logits, teacher_topk_items, "teacher_topk_items")  # (batch, K)
        # tail[:, k] = logsumexp(s_int[:, k:]), the interesting items not yet placed
        tail = torch.logcumsumexp(s_int.flip(1), dim=1).flip(1)  # (batch, K)
        if uninteresting_items is not None:
            s_unint = gather_columns(student_logits, uninteresting_items, "uninteresting_items")  # (batch, L)
            tail = torch.logaddexp(tail, torch.logsumexp(s_unint, dim=1, keepdim=True))  # (batch, K)
        per_example = (tail - s_int).sum(dim=1)  # (batch,)
        return reduce(per_example, self.reduction)


def _inputs(batch: TopKBatch, spec) -> dict:
    return {
        "student_logits": batch.student,
        "teacher_topk_items": batch.top,
        "uninteresting_items": batch.negatives,
    }


# weight 0.1: the loss sums k log-terms
METHOD = KDMethod(
    "rrd",
    reads="topk",
    loss=RelaxedRankingDistillation,
    defaults={"weight": 0.1, "k": 10, "negatives": 50},
    inputs=_inputs,
)
