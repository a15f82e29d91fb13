"""Matrix factorisation student: one learned vector per user and per item, `score(u, i) = p_u . q_i`.

Input: training `Interactions`; output: a fitted `Student` whose scores ignore the history it is given.

How a non-sequential model fits the positional training and KD scheme: the state at every position of user
u's window is p_u (broadcast over positions). Full-softmax CE at every position then trains p_u to put
probability mass on each of u's next items (a multinomial-likelihood MF, cf. Liang et al., WWW 2018,
"Variational Autoencoders for Collaborative Filtering"; the user's first item is never a target), and a KD term
at every covered position pulls p_u towards each of the teacher's per-position top-K lists, i.e. towards the
teacher's predictions averaged over the user's history. That average is MF's natural target: MF cannot
represent a state that changes along the sequence, so the best it can learn from per-position labels is their
mean. With `last_position=True` (the KD objective's default) the teacher's prediction after the whole training
sequence is one more such label.

Test-time protocol: p_u is learned from the training items only and is not refitted or folded in for the
validation item (as the factor baselines with `refit_for_test` are): the student is scored with the vector it
has, so its test numbers are slightly pessimistic compared with a model that reads train + valid. Users
without a training window keep their initial (random) vector.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.students.base import Student, StudentModule
from distillrec.students.params import MFParams


class MFModule(StudentModule):
    def __init__(self, n_users: int, n_items: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        for table in (self.user_embedding, self.item_embedding):
            nn.init.normal_(table.weight, std=dim**-0.5)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        batch, width = ids.shape
        hidden = self.dropout(self.user_embedding(users))  # (batch, dim)
        return hidden.unsqueeze(1).expand(batch, width, self.dim)  # (batch, seq_len, dim): p_u everywhere

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_embedding.weight.T  # (..., n_items)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.weight  # (n_items, dim)


class MatrixFactorization(Student):
    sequential: ClassVar[bool] = False
    reads_history: ClassVar[bool] = False  # a learned vector per user

    params_model = MFParams

    def _build_module(self, train: Interactions) -> MFModule:
        return MFModule(train.n_users, train.n_items, self.dim, self.dropout)
