"""Importance-aware ranking distillation of DLLM2Rec (Cui et al., RecSys 2024, "Distillation Matters:
Empowering Sequential Recommenders to Match the Performance of Large Language Models").

Each of the teacher's top-K items is a weighted positive (as in RD):

    L = - sum_{k=1..K} w_k log sigmoid(s_{pi_k})  [ - (1/M) sum_{j=1..M} log(1 - sigmoid(s_{n_j})) ]

    w_k = (g_p w^p_k + g_c w^c_k + g_o w^o_k) / sum_{k'} (g_p w^p_k' + g_c w^c_k' + g_o w^o_k')
    w^p_k = exp(-k / lam) / sum_k' exp(-k' / lam)                      position-aware (k = 1..K)
    w^c_k = exp(c_k / beta) / sum_k' exp(c_k' / beta)                  confidence-aware
    w^o_k = 1 if pi_k is in the student's own top-K else 0              consistency-aware

`confidence` c (batch, K) is higher-is-more-reliable. DLLM2Rec measures reliability by the distance d_k
between the LLM's generated description and item pi_k (smaller = better) with w^c ∝ exp(-d_k): pass
`confidence = -d`. Without `confidence` the confidence term is left out (g_c is ignored) rather than
replaced by uniform weights. As in the authors' code, w^o is a 0/1 indicator (not normalised) and the student's
top-K is read from the detached `student_logits` (whatever columns they cover), unless `in_student_topk`
(batch, K) bool gives w^o directly (e.g. from the student's top-K over the whole catalogue when
`student_logits` hold only some columns). The optional negatives' term
uses weight sum_k w_k = 1, as in the authors' per-candidate BCE (which writes sigmoid(1 - s) for
1 - sigmoid(s); we use the latter). Weights are constants (detached). mask (batch, K) bool: False = padding.
Defaults are the authors' (lam = 1, g_p = 0.3, g_c = 0.5, g_o = 0.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillrec.losses.base import check_reduction, gather_columns, position_weights, reduce
from distillrec.losses.method import KDMethod, TopKBatch
from distillrec.losses.student_scores import own_topk


class ImportanceRankingDistillation(nn.Module):
    def __init__(
        self,
        lam: float = 1.0,
        beta: float = 1.0,
        gamma_position: float = 0.3,
        gamma_confidence: float = 0.5,
        gamma_consistency: float = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if beta <= 0 or min(gamma_position, gamma_confidence, gamma_consistency) < 0:
            raise ValueError("beta must be > 0 and every gamma >= 0")
        self.lam = lam
        self.beta = beta
        self.gamma_position = gamma_position
        self.gamma_confidence = gamma_confidence
        self.gamma_consistency = gamma_consistency
        self.reduction = check_reduction(reduction)

    def weights(
        self,
        student_logits: torch.Tensor,
        teacher_topk_items: torch.Tensor,
        confidence: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        in_student_topk: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(batch, K) detached, normalised weights w_k."""
        batch, k = teacher_topk_items.shape
        w_pos = position_weights(k, self.lam, student_logits.device, student_logits.dtype)  # (K,)
        w = self.gamma_position * w_pos.expand(batch, k)  # (batch, K)
        if confidence is not None:
            if confidence.shape != teacher_topk_items.shape:
                raise ValueError(f"confidence must be (batch, K) = {tuple(teacher_topk_items.shape)}")
            w = w + self.gamma_confidence * torch.softmax(confidence.to(w.dtype) / self.beta, dim=1)
        if in_student_topk is None:
            student_topk = student_logits.detach().topk(min(k, student_logits.shape[1]), dim=1).indices
            # (batch, K): is pi_k among the student's own top-K?
            in_student_topk = (teacher_topk_items.unsqueeze(2) == student_topk.unsqueeze(1)).any(dim=2)
        elif in_student_topk.shape != teacher_topk_items.shape:
            raise ValueError(f"in_student_topk must be (batch, K) = {tuple(teacher_topk_items.shape)}")
        w = w + self.gamma_consistency * in_student_topk.to(w.dtype)
        if mask is not None:
            w = w * mask.to(w.dtype)
        return (w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)).detach()

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_topk_items: torch.Tensor,
        confidence: torch.Tensor | None = None,
        negative_items: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        in_student_topk: torch.Tensor | None = None,
    ) -> torch.Tensor:
        w = self.weights(student_logits, teacher_topk_items, confidence, mask, in_student_topk)  # (batch, K)
        s_top = gather_columns(student_logits, teacher_topk_items, "teacher_topk_items")  # (batch, K)
        per_example = -(w * F.logsigmoid(s_top)).sum(dim=1)  # (batch,)
        if negative_items is not None:
            s_neg = gather_columns(student_logits, negative_items, "negative_items")  # (batch, M)
            per_example = per_example - F.logsigmoid(-s_neg).mean(dim=1)
        return reduce(per_example, self.reduction)


def _inputs(batch: TopKBatch, spec) -> dict:
    own = own_topk(batch.hidden, batch.table, batch.top_items.shape[1])  # (m, k) the student's own top-k
    return {
        "student_logits": batch.student,
        "teacher_topk_items": batch.top,
        "confidence": batch.top_scores,
        "negative_items": batch.negatives,
        "in_student_topk": (batch.top_items.unsqueeze(2) == own.unsqueeze(1)).any(dim=2),
    }


METHOD = KDMethod(
    "dllm2rec",
    reads="topk",
    loss=ImportanceRankingDistillation,
    defaults={"weight": 1.0, "k": 10, "lam": 1.0, "negatives": 10},
    inputs=_inputs,
)
