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


class SASRecStudentModule(SASRecModule):
    """`SASRecModule` with the student interface: `forward(ids, users)` ignores `users`."""

    def forward(self, ids: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(ids)  # (batch, seq_len, dim)


class SASRecStudent(Student):
    def __init__(
        self,
        dim: int = 32,
        n_layers: int = 1,
        n_heads: int = 1,
        dropout: float = 0.2,
        max_len: int = 200,
        max_epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 30,
        seed: int = 0,
        num_threads: int | None = None,
        progress: bool = True,
        eval_every: int = 1,
        length_buckets: bool = False,
        bf16: bool = False,
    ) -> None:
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.max_len = max_len
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.num_threads = num_threads
        self.progress = progress
        self.eval_every = eval_every
        self.length_buckets = length_buckets
        self.bf16 = bf16

    def _build_module(self, train: Interactions) -> SASRecStudentModule:
        return SASRecStudentModule(
            train.n_items, self.dim, self.n_layers, self.n_heads, self.max_len, self.dropout
        )
