"""How the teacher's item table joins the language model's text vectors and learned ID vectors (`fusion`).

Every variant is an item-embedding module of the SASRec blocks: `forward(ids) -> (..., dim)` and
`table() -> (n_items + 1, dim)`, row 0 (padding) zero, the table both input and (tied) output layer. z_i is item
i's frozen text vector (d_text), s_i its top-`dim` whitened principal-component coordinates over all items
(`layers/pca.pca_compress(whiten=True)`, scaled by dim^-0.5).

- "adapter" (`llm_enhanced_seq.TextItemEmbedding`, the default): e_i = id_i + A(z_i), A a two-layer MLP, id_i
  initialised at s_i (LLM-ESR's views added).
- "pca_init" (`PCAInitItemEmbedding`; LLMInit / LLM2SASRec, Harte et al., RecSys 2023): e_i = id_i, initialised at
  s_i and then trained as any ID table; the text acts through the initialisation only.
- "nullspace" (`NullSpaceItemEmbedding`; AlphaFuse, SIGIR 2025): e_i = [a * s_i[:k], n_i]: the first
  `semantic_dims` = k coordinates are the item's top-k whitened text directions (frozen unless `train_text`; a
  learned scale a), the other dim - k the ID vector n_i, learned from zero, so the collaborative signal lives in the
  directions the text leaves free and never overwrites the text's. An item without training interactions keeps
  n_i = 0: it is scored by its text directions alone.
An item with no training interaction keeps its text directions under "nullspace" and its A(z_i) under "adapter";
under "pca_init" it starts at its text coordinates, which training then moves (it is only ever a negative), so
the text's hold on such items is weaker (`tests/test_teacher.py` measures it). `id_init`, `id_dropout` and
`adapter_hidden` belong to "adapter" and are not read by the other two.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import PAD

__all__ = ["FUSIONS", "PCAInitItemEmbedding", "NullSpaceItemEmbedding", "text_coordinates"]

FUSIONS = ("adapter", "pca_init", "nullspace")


def text_coordinates(text_embeddings: np.ndarray, dim: int) -> torch.Tensor:
    """(n_items, dim) float32: the top-`dim` whitened principal coordinates of the text vectors, times dim^-0.5
    (rows of about unit length)."""
    text = torch.as_tensor(np.asarray(text_embeddings, dtype=np.float32))
    if dim > min(text.shape):
        raise ValueError(f"{dim} text directions asked, but the text table is {tuple(text.shape)}")
    return pca_compress(text, dim, whiten=True) * dim**-0.5


class PCAInitItemEmbedding(nn.Module):
    """An ID table initialised at the items' whitened text coordinates (see the module docstring)."""

    def __init__(self, text_embeddings: np.ndarray, dim: int) -> None:
        super().__init__()
        n_items = len(text_embeddings)
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        with torch.no_grad():
            self.ids.weight.zero_()  # beyond the text's rank (a catalogue smaller than dim): zero, then learned
            k = min(dim, *np.shape(text_embeddings))
            self.ids.weight[1:, :k].copy_(text_coordinates(text_embeddings, k) * (k / dim) ** 0.5)

    def table(self) -> torch.Tensor:
        return torch.cat([torch.zeros_like(self.ids.weight[:1]), self.ids.weight[1:]])  # (n_items + 1, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table()[ids]  # (..., dim)


class NullSpaceItemEmbedding(nn.Module):
    """Frozen text directions beside learned ID directions (see the module docstring)."""

    def __init__(
        self,
        text_embeddings: np.ndarray,
        dim: int,
        semantic_dims: int,
        train_text: bool = False,
        has_ids: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= semantic_dims < dim:
            raise ValueError(f"semantic_dims must be in [1, dim), got {semantic_dims} for dim {dim}")
        n_items = len(text_embeddings)
        semantic = torch.cat(
            [torch.zeros(1, semantic_dims), text_coordinates(text_embeddings, semantic_dims)]
        )
        if train_text:
            self.semantic = nn.Parameter(semantic)  # (n_items + 1, k)
        else:
            self.register_buffer("semantic", semantic)  # (n_items + 1, k), saved with the weights
        self.scale = nn.Parameter(torch.ones(1))  # how loud the text is against the learned part
        self.ids = nn.Embedding(n_items + 1, dim - semantic_dims, padding_idx=PAD)
        nn.init.zeros_(self.ids.weight)
        mask = torch.ones(n_items + 1, 1)
        if has_ids is not None:
            mask[1:] = torch.as_tensor(np.asarray(has_ids), dtype=torch.float32).reshape(-1, 1)
        mask[PAD] = 0
        self.register_buffer("id_mask", mask, persistent=False)

    def table(self) -> torch.Tensor:
        table = torch.cat([self.scale * self.semantic, self.ids.weight * self.id_mask], dim=1)
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])  # (n_items + 1, dim), padding row zero

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table()[ids]  # (..., dim)
