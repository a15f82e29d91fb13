"""Collaborative embedding distillation of DLLM2Rec (Cui et al., RecSys 2024, "Distillation Matters:
Empowering Sequential Recommenders to Match the Performance of Large Language Models").

Not a loss but an item-embedding layer: the student's own (collaborative) item embedding plus a learned
projection of the teacher's frozen item embedding,

    e_i = e^s_i + gamma * f(z^t_i),   f = Linear(teacher_dim -> dim)       (hidden_dim=None, the authors' code)
                                      f = Linear -> ReLU -> Linear          (hidden_dim given)

so the teacher's knowledge enters through the student's inputs and outputs (the table is tied); the student's
usual losses train e^s and f. KD method `ced` (`distill.objective`) wraps a student's `ItemEmbedding` in this
layer when the objective is bound, so it works for every student whose item table is an `ItemEmbedding`.

Input: `base`, the student's `ItemEmbedding` (`table() -> (n_items + 1, dim)`, row 0 the padding item), and
`teacher_table` (n_items, teacher_dim), kept as a frozen buffer (row 0 added for padding) that checkpoints do
not store: binding the objective again rebuilds it. Output: `forward(ids)`
(..., dim) for 1-based ids of shape (...), `table()` (n_items + 1, dim) with the padding row exactly zero.

Size: f and the teacher table are needed only to compute e_i. After training, `folded()` writes e into the
student's own table and returns it, a plain `ItemEmbedding` of the student's own size, which is what the student
keeps and serves: distillation through the embedding costs nothing at inference.
"""

from __future__ import annotations

import torch
from torch import nn

from distillrec.layers.sasrec import PAD, ItemEmbedding
from distillrec.losses.method import BindContext, KDMethod


class CollaborativeEmbedding(nn.Module):
    teacher_item_emb: torch.Tensor

    def __init__(
        self,
        base: ItemEmbedding,
        teacher_table: torch.Tensor,
        gamma: float = 1.0,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        own = base.table()  # (n_items + 1, dim)
        n_rows, dim = own.shape
        if teacher_table.dim() != 2 or teacher_table.shape[0] != n_rows - 1:
            raise ValueError(
                f"teacher_table must be (n_items={n_rows - 1}, teacher_dim), got {tuple(teacher_table.shape)}"
            )
        if hidden_dim is not None and hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1 or None, got {hidden_dim}")
        teacher_dim = teacher_table.shape[1]
        self.base = base
        self.gamma = float(gamma)
        if hidden_dim is None:
            self.project = nn.Linear(teacher_dim, dim)
        else:
            self.project = nn.Sequential(
                nn.Linear(teacher_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim)
            )
        padded = torch.cat([torch.zeros(1, teacher_dim), teacher_table.detach().float()])  # (n_rows, d_t)
        self.register_buffer("teacher_item_emb", padded, persistent=False)

    def table(self) -> torch.Tensor:
        """(n_items + 1, dim) e = e^s + gamma * f(z^t), padding row zero."""
        table = self.base.table() + self.gamma * self.project(self.teacher_item_emb)  # (n_rows, dim)
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table()[ids]  # (..., dim)

    def folded(self) -> ItemEmbedding:
        """`base` holding this layer's current table e (what the trained student keeps)."""
        with torch.no_grad():
            table = self.table()  # (n_rows, dim)
            self.base.embedding.weight.copy_(table)
            self.base.embedding.weight[PAD].zero_()
        return self.base


def wrap_item_embedding(module: nn.Module, teacher: BindContext, spec) -> None:
    """`ced`: replace the student's `ItemEmbedding` by `CollaborativeEmbedding` over the teacher's item table; a
    student whose item table is not an `ItemEmbedding` (MF's, the two-tower's text tower) is an error."""
    base = getattr(module, "item_embedding", None)
    if not isinstance(base, ItemEmbedding):
        has = "has none" if base is None else f"is {type(base).__name__}"
        raise ValueError(
            f"ced needs a student whose item_embedding is an ItemEmbedding (sasrec, gru4rec); "
            f"{type(module).__name__}'s {has}"
        )
    module.item_embedding = CollaborativeEmbedding(base, teacher.teacher_table, **spec.loss_params)


METHOD = KDMethod("ced", reads="embedding", option_source=CollaborativeEmbedding, on_bind=wrap_item_embedding)
