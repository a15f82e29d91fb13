"""Distillation experts (DE), the representation half of DE-RRD (Kang et al., CIKM 2020, "DE-RRD: A Knowledge
Distillation Framework for Recommender System").

A single projection (FitNets' hint, `hint.py`) must map the whole student space onto the teacher's at once.
DE gives the student M experts, each a small MLP from the student's width to the teacher's, and lets the
*teacher's* representation choose which expert reconstructs it, so that each expert serves one region of the
teacher's space (users of similar taste):

    E_m(h) = W2_m ReLU(W1_m h + b1_m) + b2_m       m = 1..M, hidden width (dim_s + dim_t) / 2 (the paper's)
    e      = softmax(S h^t)                        selection network S: dim_t -> M, read from the teacher
    a      = softmax((log e + g) / tau)            Gumbel-softmax, g ~ Gumbel(0, 1); a one-hot as tau -> 0
    L      = mean_b d( sum_m a_bm E_m(h^s_b), h^t_b )

`d` is the squared Euclidean distance (`distance="mse"`, the paper's) or 1 - cosine (`"cosine"`, the default
here, as for `hint`: the teacher's hidden states are not unit-scaled, and the cosine keeps the term of CE's
order). The temperature is annealed over training progress p in [0, 1] from `tau_start` to `tau_end`,
`tau = tau_start * (tau_end / tau_start) ** p` (the paper anneals exponentially from 1 towards 0; `tau_end`
defaults to 0.01). At evaluation (`module.eval()`) the choice is the arg-max expert, with no noise.

Inputs: student_hidden (batch, dim_s), teacher_hidden (batch, dim_t), progress (float). The experts and the
selection network are parameters of this loss (`CompositeLoss.parameters()` hands them to the optimiser); the
teacher side is detached, so only the student, the experts and the selection learn. DE-RRD applies DE to user
and item representations; here it reads the student's and teacher's hidden states at the same positions, as
`hint` does (the item tables are the parameter-distillation terms' ground).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillrec.losses.base import check_reduction, reduce
from distillrec.losses.hint import DISTANCES
from distillrec.losses.method import HiddenBatch, KDMethod


class DistillationExperts(nn.Module):
    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        n_experts: int = 5,
        distance: str = "cosine",
        tau_start: float = 1.0,
        tau_end: float = 0.01,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance={distance!r} is not one of {list(DISTANCES)}")
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        if not 0 < tau_end <= tau_start:
            raise ValueError(f"need 0 < tau_end <= tau_start, got tau_start={tau_start}, tau_end={tau_end}")
        self.distance = distance
        self.tau_start, self.tau_end = float(tau_start), float(tau_end)
        self.reduction = check_reduction(reduction)
        hidden = (student_dim + teacher_dim) // 2
        # the M experts as batched weights: one einsum each way instead of M small matmuls
        self.w1 = nn.Parameter(torch.empty(n_experts, student_dim, hidden))  # (M, dim_s, h)
        self.b1 = nn.Parameter(torch.empty(n_experts, hidden))  # (M, h)
        self.w2 = nn.Parameter(torch.empty(n_experts, hidden, teacher_dim))  # (M, h, dim_t)
        self.b2 = nn.Parameter(torch.empty(n_experts, teacher_dim))  # (M, dim_t)
        for m in range(n_experts):  # as nn.Linear's defaults, per expert
            for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
                nn.init.kaiming_uniform_(weight.data[m].T, a=5**0.5)
                bound = weight.shape[1] ** -0.5  # 1 / sqrt(fan_in)
                nn.init.uniform_(bias.data[m], -bound, bound)
        self.select = nn.Linear(teacher_dim, n_experts)  # S

    def temperature(self, progress: float) -> float:
        p = min(max(float(progress), 0.0), 1.0)
        return self.tau_start * (self.tau_end / self.tau_start) ** p

    def choice(self, teacher_hidden: torch.Tensor, progress: float) -> torch.Tensor:
        """(batch, dim_t) -> (batch, M) expert weights: Gumbel-softmax in training, one-hot arg-max in eval."""
        logits = self.select(teacher_hidden)  # (batch, M), log e up to a constant per row
        if not self.training:
            return F.one_hot(logits.argmax(dim=1), logits.shape[1]).to(logits.dtype)
        return F.gumbel_softmax(logits, tau=self.temperature(progress), hard=False, dim=1)

    def forward(
        self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, progress: float = 0.0
    ) -> torch.Tensor:
        if student_hidden.dim() != 2 or teacher_hidden.dim() != 2:
            raise ValueError(
                f"DE takes (batch, dim) states, got {tuple(student_hidden.shape)} and {tuple(teacher_hidden.shape)}"
            )
        teacher = teacher_hidden.detach()
        weights = self.choice(teacher, progress)  # (batch, M)
        inner = F.relu(torch.einsum("bs,msh->bmh", student_hidden, self.w1) + self.b1)  # (batch, M, h)
        outputs = torch.einsum("bmh,mht->bmt", inner, self.w2) + self.b2  # (batch, M, dim_t)
        mapped = (weights.unsqueeze(2) * outputs).sum(dim=1)  # (batch, dim_t)
        if mapped.shape != teacher.shape:
            raise ValueError(
                f"the experts map to {tuple(mapped.shape)} but teacher_hidden has {tuple(teacher.shape)}"
            )
        if self.distance == "mse":
            per_example = (mapped - teacher).pow(2).sum(dim=-1)  # (batch,)
        else:
            per_example = 1.0 - F.cosine_similarity(mapped, teacher, dim=-1)  # (batch,)
        return reduce(per_example, self.reduction)


def _inputs(batch: HiddenBatch, spec) -> dict:
    # the experts' Gumbel temperature anneals over training
    return {
        "student_hidden": batch.student_hidden,
        "teacher_hidden": batch.teacher_hidden,
        "progress": batch.progress,
    }


METHOD = KDMethod("de", reads="hidden", loss=DistillationExperts, defaults={"weight": 1.0}, inputs=_inputs)
