"""Small SASRec student: `layers.sasrec.SASRecModule` behind the student interface.

Input: training `Interactions`; output: a fitted `Student` (next-item logits `(len(users), n_items)` from the
last `max_len` history items). Architecture and training as `models/sasrec.py` (Kang & McAuley, ICDM 2018;
full-softmax CE at every position, Klenitskiy & Vasilev, RecSys 2023), with student-sized defaults:
dim 32, one block. On ml-100k (1,682 items) that is about 61k parameters, under 5% of the LLM-enhanced teacher.
"""

from __future__ import annotations

import torch

from distillrec.data.interactions import Interactions
from distillrec.layers.sasrec import SASRecModule
from distillrec.students.base import Student
from distillrec.students.params import SASRecStudentParams


class SASRecStudentModule(SASRecModule):
    """`SASRecModule` with the student interface: `forward(ids, users)` ignores `users`."""

    def forward(self, ids: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(ids)  # (batch, seq_len, dim)


class SASRecStudent(Student):
    params_model = SASRecStudentParams

    def _build_module(self, train: Interactions) -> SASRecStudentModule:
        return SASRecStudentModule(
            train.n_items, self.dim, self.n_layers, self.n_heads, self.max_len, self.dropout
        )
