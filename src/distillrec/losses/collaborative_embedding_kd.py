"""Collaborative embedding distillation of DLLM2Rec (Cui et al., RecSys 2024, "Distillation Matters:
Empowering Sequential Recommenders to Match the Performance of Large Language Models").

Not a loss but an item-embedding layer: the student's own (collaborative) item embedding plus a learned
projection of the teacher's frozen semantic item embedding,

    e_i = e^s_i + gamma * f(z^t_i),   f = Linear(teacher_dim -> dim)       (hidden_dim=None, the authors' code)
                                      f = Linear -> ReLU -> Linear          (hidden_dim given)

so the teacher's knowledge enters through the student's inputs; the student's usual losses train e^s and f.

How a student uses it: build `CollaborativeEmbedding(n_rows, dim, teacher_dim, ...)` in place of its
`nn.Embedding`, call `.set_teacher_embeddings(z)` once with the cached teacher table (n_rows, teacher_dim)
(a frozen buffer, saved in the state_dict), then `emb = self.item_emb(item_seq)` for (batch, seq_len) ->
(batch, seq_len, dim). A student that scores with its item table uses `self.item_emb.table()` (n_rows, dim).
The padding row (`padding_idx`) stays exactly zero. Output: (..., dim) for items of shape (...).
"""

from __future__ import annotations

from typing import Self

import torch
from torch import nn


class CollaborativeEmbedding(nn.Module):
    teacher_item_emb: torch.Tensor

    def __init__(
        self,
        n_rows: int,
        dim: int,
        teacher_dim: int,
        hidden_dim: int | None = None,
        gamma: float = 1.0,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        self.n_rows, self.dim, self.teacher_dim = n_rows, dim, teacher_dim
        self.gamma = gamma
        self.padding_idx = padding_idx
        self.student = nn.Embedding(n_rows, dim, padding_idx=padding_idx)
        nn.init.normal_(self.student.weight, std=0.01)
        if padding_idx is not None:
            with torch.no_grad():
                self.student.weight[padding_idx].zero_()
        if hidden_dim is None:
            self.project = nn.Linear(teacher_dim, dim)
        else:
            self.project = nn.Sequential(
                nn.Linear(teacher_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim)
            )
        self.register_buffer("teacher_item_emb", torch.zeros(n_rows, teacher_dim))

    def set_teacher_embeddings(self, teacher_item_emb: torch.Tensor) -> Self:
        if tuple(teacher_item_emb.shape) != (self.n_rows, self.teacher_dim):
            raise ValueError(
                f"teacher_item_emb must be (n_rows, teacher_dim) = ({self.n_rows}, {self.teacher_dim}), "
                f"got {tuple(teacher_item_emb.shape)}"
            )
        self.teacher_item_emb.copy_(teacher_item_emb.detach())
        return self

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        emb = self.student(items) + self.gamma * self.project(self.teacher_item_emb[items])  # (..., dim)
        if self.padding_idx is not None:
            emb = emb * (items != self.padding_idx).unsqueeze(-1).to(emb.dtype)
        return emb

    def table(self) -> torch.Tensor:
        """(n_rows, dim) combined embedding of every row (for scoring against all items)."""
        return self.forward(torch.arange(self.n_rows, device=self.teacher_item_emb.device))
