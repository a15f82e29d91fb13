"""Two-tower student whose item tower reads a compressed language-model embedding of the item's text.

Input: training `Interactions` and `text_embeddings` (n_items, d_text), the frozen LM vectors of the item
texts (a teacher folder's `text_embeddings.npy`). Output: a fitted `Student`.

Item tower (any item, with or without interactions):

    v_i = m_i * id_i + W c_i        c = pca_compress(text, text_dim, whiten=True) / sqrt(text_dim)   (n_items, text_dim)
                                    m_i = 1 if item i has a training interaction, else 0 (text only)
                                    W: Linear(text_dim, dim)

so an item nobody has interacted with is still placed in the space by its text and can be recommended.
User tower over the history (causal, one state per position t):

    u_t = MLP([ mean_{j <= t} v_{s_j} ; v_{s_t} ])     MLP = Linear(2 dim, hidden) -> ReLU -> Dropout -> Linear(hidden, dim)

(the mean of everything read so far, for taste, and the last item, for what comes next, as in YouTube's
candidate tower, Covington et al., RecSys 2016). Score: `u . v_i`, trained with full-softmax CE at every
position. `n_params` counts the learned parameters plus the compressed text table, which serving needs to
place new items.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import PAD
from distillrec.students.base import Student, StudentModule
from distillrec.students.params import TwoTowerParams


class TwoTowerModule(StudentModule):
    text: torch.Tensor
    id_mask: torch.Tensor

    def __init__(
        self, compressed_text: torch.Tensor, has_ids: torch.Tensor, dim: int, hidden: int, dropout: float
    ) -> None:
        super().__init__()
        n_items, text_dim = compressed_text.shape
        self.dim = dim
        # row 0 = padding (zero text, no ID)
        self.register_buffer("text", torch.cat([torch.zeros(1, text_dim), compressed_text.float()]))
        self.register_buffer("id_mask", torch.cat([torch.zeros(1), has_ids.float()]).unsqueeze(1))
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        nn.init.normal_(self.ids.weight, std=dim**-0.5)
        self.text_projection = nn.Linear(text_dim, dim)
        self.user_mlp = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def item_vectors(self) -> torch.Tensor:
        """(n_items + 1, dim) item tower output; row 0 (padding) is zero."""
        vectors = self.ids.weight * self.id_mask + self.text_projection(self.text)  # (n_items + 1, dim)
        return torch.cat([torch.zeros_like(vectors[:1]), vectors[1:]])

    def forward(self, ids: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        x = self.item_vectors()[ids]  # (batch, seq_len, dim), zero at padding
        real = (ids != PAD).unsqueeze(-1).to(x.dtype)  # (batch, seq_len, 1)
        mean = x.cumsum(dim=1) / real.cumsum(dim=1).clamp(min=1.0)  # (batch, seq_len, dim) causal prefix mean
        return self.user_mlp(torch.cat([mean, x], dim=-1))  # (batch, seq_len, dim)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T  # (..., n_items)

    def item_table(self) -> torch.Tensor:
        return self.item_vectors()[1:]  # (n_items, dim)


class TwoTower(Student):
    needs_text: ClassVar[bool] = True
    array_params = ("text_embeddings",)

    params_model = TwoTowerParams

    def get_params(self) -> dict:
        params = super().get_params()
        params.pop("text_embeddings", None)  # an array, described by where it came from instead
        return params

    def _build_module(self, train: Interactions) -> TwoTowerModule:
        if self.text_embeddings is None:
            raise ValueError(
                "TwoTower needs text_embeddings (n_items, d_text), e.g. a teacher folder's text_embeddings.npy"
            )
        text = torch.as_tensor(np.asarray(self.text_embeddings, dtype=np.float32))  # (n_items, d_text)
        if text.dim() != 2 or text.shape[0] != train.n_items:
            raise ValueError(
                f"text_embeddings must be (n_items={train.n_items}, d_text), got {tuple(text.shape)}"
            )
        if not 1 <= self.text_dim <= min(text.shape):
            raise ValueError(
                f"text_dim must be in [1, {min(text.shape)}] for text of shape {tuple(text.shape)}, got {self.text_dim}"
            )
        compressed = (
            pca_compress(text, self.text_dim, whiten=True) * self.text_dim**-0.5
        )  # (n_items, text_dim)
        has_ids = torch.from_numpy(train.item_counts() > 0)
        return TwoTowerModule(compressed, has_ids, self.dim, self.hidden, self.dropout)

    def n_params(self) -> int:
        """Learned parameters plus the compressed text table (n_items x text_dim)."""
        return super().n_params() + int(self.module_.text[1:].numel())
