"""Conventions shared by every distillation loss, and the few helpers they all use.

Inputs (the same names in every loss):
- `student_logits`: (batch, n_items) student scores over the full catalogue, OR (batch, n_cand) scores over a
  candidate set. Item indices given to a loss always index the columns of `student_logits`: with a candidate
  set, the caller maps item ids to candidate columns first.
- `teacher_logits`: (batch, n_items) or (batch, n_cand) teacher scores over the same columns (soft-label KD).
- `teacher_topk_items`: (batch, K) int64 item indices of the teacher's top-K, best first.
- `teacher_topk_scores`: (batch, K) float teacher scores (logits) of those items.
- `negative_items`: (batch, M) int64 sampled items outside the teacher's top-K (their scores are the student's).
- `targets`: (batch,) int64 ground-truth next items.
- `mask`: (batch, K) bool, True = keep that top-K slot (padding / invalid slots are False).
Teacher tensors are treated as constants (detached): no gradient reaches the teacher.

Output: a scalar, the mean over the batch of the per-example loss (`reduction="mean"`), or the (batch,)
per-example losses (`reduction="none"`, used for per-example weights in `composite.CompositeLoss`).
Loss weights never live in a loss: `composite.CompositeLoss` is the only place where terms are mixed.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {list(REDUCTIONS)}")
    return reduction


def reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    """(batch,) per-example losses -> scalar mean ("mean") or unchanged ("none")."""
    return per_example.mean() if check_reduction(reduction) == "mean" else per_example


def gather_columns(scores: torch.Tensor, items: torch.Tensor, name: str = "items") -> torch.Tensor:
    """scores (batch, n_cols), items (batch, k) int64 column indices -> (batch, k) scores[b, items[b, j]]."""
    if scores.dim() != 2:
        raise ValueError(
            f"student/teacher scores must be 2-D (batch, n_cols), got shape {tuple(scores.shape)}"
        )
    if items.dim() != 2 or items.shape[0] != scores.shape[0]:
        raise ValueError(f"{name} must be (batch={scores.shape[0]}, k), got shape {tuple(items.shape)}")
    if items.dtype != torch.int64:
        raise TypeError(f"{name} must be int64 column indices, got {items.dtype}")
    if items.numel() and (int(items.min()) < 0 or int(items.max()) >= scores.shape[1]):
        raise IndexError(f"{name} has indices outside [0, {scores.shape[1]}) (the columns of the scores)")
    return scores.gather(1, items)


def position_weights(
    k: int, lam: float, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(k,) position importance w_r = exp(-r / lam) / sum_r' exp(-r' / lam), r = 1..k (Tang & Wang 2018)."""
    if lam <= 0:
        raise ValueError(f"position lambda must be > 0, got {lam}")
    ranks = torch.arange(1, k + 1, dtype=dtype, device=device)
    return torch.softmax(-ranks / lam, dim=0)
