"""GRU4Rec student (Hidasi, Karatzoglou, Baltrunas & Tikk, ICLR 2016, "Session-based Recommendations with
Recurrent Neural Networks").

Input: training `Interactions`; output: a fitted `Student` (next-item logits from the last `max_len` history
items). Architecture: item embedding (row 0 = padding) -> dropout -> `n_layers` GRU layers of width `dim`;
the hidden state at each position scores every item through the (tied) item table, `logits = h @ E^T`, as in
RecBole's GRU4Rec. Unlike the paper's session-parallel mini-batches with sampled ranking losses, it is trained
like SASRec: full-softmax cross-entropy at every position of each user's window (the setting in which
Klenitskiy & Vasilev, RecSys 2023, compare sequential models).

Padding: windows are left-padded; the GRU must not read the padding (its state would depend on how much padding
the batch has), so each row is rotated to right-padding, run through `pack_padded_sequence` with its true
length, and rotated back: `forward` returns the state after each real position, aligned with the input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from distillrec.data.interactions import Interactions
from distillrec.layers.sasrec import PAD, ItemEmbedding
from distillrec.students.base import Student, StudentModule
from distillrec.students.params import GRU4RecParams


class GRU4RecModule(StudentModule):
    def __init__(self, n_items: int, dim: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.n_items, self.dim = n_items, dim
        self.item_embedding = ItemEmbedding(n_items, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, ids: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        batch, width = ids.shape
        lengths = (ids != PAD).sum(dim=1)  # (batch,)
        steps = torch.arange(width, device=ids.device)  # (width,)
        # right-padded position j holds left-padded position (j + width - n) mod width
        to_right = (steps[None, :] + width - lengths[:, None]) % width  # (batch, width)
        x = self.input_dropout(self.item_embedding(ids.gather(1, to_right)))  # (batch, width, dim)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)  # (batch, width, dim)
        to_left = (steps[None, :] + lengths[:, None]) % width  # (batch, width)
        return out.gather(1, to_left.unsqueeze(-1).expand(-1, -1, self.dim))  # (batch, width, dim)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T  # (..., n_items)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.table()[1:]  # (n_items, dim)


class GRU4Rec(Student):
    params_model = GRU4RecParams

    def _build_module(self, train: Interactions) -> GRU4RecModule:
        return GRU4RecModule(train.n_items, self.dim, self.n_layers, self.dropout)
