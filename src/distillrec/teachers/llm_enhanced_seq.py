"""The LLM-enhanced teacher: a sequential recommender whose item vectors carry a language model's knowledge.

Input: training `Interactions` and `text_embeddings` `(n_items, d_text)`, one frozen language-model vector per
item (from `TextEncoder` through the `EmbeddingCache`). Output: a fitted `Recommender` (a `SASRec` whose item
table is replaced), with `score`, `encode` (final hidden state) and `item_embeddings`.

Item representation (the family of LLM-ESR, Liu et al., NeurIPS 2024, and of DLLM2Rec's teachers):

    e_i = id_i + A(z_i)        z_i: frozen LM embedding of item i's text (d_text)
                               A:   adapter, Linear(d_text, h) -> GELU -> Dropout -> Linear(h, dim)
                               id_i: learned ID vector, initialised from the top-`dim` principal components of
                                     the LM embeddings (LLM-ESR's collaborative view initialisation); zero for
                                     items with no training interaction (no collaborative signal: text only)

The same table is the input layer and the (tied) output layer, so the score of item i for a hidden state h is
`h . e_i`. An item with few or no training interactions still gets a meaningful vector through A(z_i) and its
text-derived initialisation, which is where the teacher beats an ID-only model (long-tail and cold items).
Trained exactly like SASRec (full-softmax cross-entropy, early stopping on validation NDCG@10). With
`softmax_over_trained=True` the training softmax leaves out the items without training interactions (never a
positive, they are otherwise a negative at every position). With `id_dropout=p`, every time the item table is
computed in training each item's ID vector is dropped (the item is represented by its text alone) with
probability p, as DropoutNet (Volkovs et al., NeurIPS 2017) drops the preference input, so the adapter must score
items from text alone, which is all a cold item has; no rescaling: at evaluation every trained item has its ID
vector. Both options target cold items; on amazon-beauty neither put a cold target in the top 10 (BENCHMARKS,
section 2), and both are off by default. `fusion` swaps this item table for another way of joining text and IDs
(`teachers/fusion.py`: "pca_init", "nullspace").
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import PAD, next_item_loss
from distillrec.models.params import SASRecParams
from distillrec.models.sasrec import SASRec
from distillrec.teachers.fusion import NullSpaceItemEmbedding, PCAInitItemEmbedding

# options added after checkpoints and exports existed, with the value those were made with: recorded (in a
# checkpoint's meta, an export's manifest) only when set otherwise, so the older ones still count as the same
LATER_OPTIONS = {
    "softmax_over_trained": False,
    "id_dropout": 0.0,
    "fusion": "adapter",
    "semantic_dims": 0,
    "train_text": False,
    "negatives": 0,
}


class TextItemEmbedding(nn.Module):
    """`forward(ids) -> (..., dim)`, `table() -> (n_items + 1, dim)`; row 0 (padding) is zero."""

    def __init__(
        self,
        text_embeddings: np.ndarray,
        dim: int,
        adapter_hidden: int = 512,
        dropout: float = 0.1,
        id_init: str = "pca",
        has_ids: np.ndarray | None = None,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if id_init not in ("pca", "random", "none"):
            raise ValueError(f"id_init must be 'pca', 'random' or 'none', got {id_init!r}")
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout!r}")
        self.id_dropout = id_dropout
        text = torch.as_tensor(np.asarray(text_embeddings, dtype=np.float32))  # (n_items, d_text)
        n_items, d_text = text.shape
        self.register_buffer("text", torch.cat([torch.zeros(1, d_text), text]), persistent=False)
        self.adapter = nn.Sequential(
            nn.Linear(d_text, adapter_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(adapter_hidden, dim)
        )
        self.use_ids = id_init != "none"
        # (n_items + 1, 1) 1 for items that get an ID vector, 0 for padding and items without interactions
        id_mask = (
            torch.ones(n_items + 1, 1)
            if has_ids is None
            else torch.cat(
                [torch.ones(1, 1), torch.as_tensor(np.asarray(has_ids), dtype=torch.float32).reshape(-1, 1)]
            )
        )
        id_mask[PAD] = 0
        self.register_buffer("id_mask", id_mask, persistent=False)
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        with torch.no_grad():
            if id_init == "pca" and dim <= min(n_items, d_text):
                init = pca_compress(text, dim, whiten=True) * dim**-0.5  # (n_items, dim), unit-ish scale
                self.ids.weight[1:].copy_(init)
            else:
                nn.init.normal_(self.ids.weight, std=dim**-0.5)
            self.ids.weight[PAD].zero_()

    def table(self) -> torch.Tensor:
        return self._rows(torch.arange(len(self.text), device=self.text.device))  # (n_items + 1, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """The rows of `ids` (..., dim), each distinct id read through the adapter once: a batch costs what its
        own items cost, not the whole catalogue (which the sampled softmax never reads)."""
        if torch.onnx.is_in_onnx_export():  # a traced graph keeps the example's number of distinct ids
            return self.table()[ids]
        unique, inverse = torch.unique(ids, return_inverse=True)
        return self._rows(unique)[inverse]  # (..., dim)

    def _rows(self, ids: torch.Tensor) -> torch.Tensor:
        """(m,) distinct ids -> (m, dim): adapted text plus the ID vector where the item has one; padding zero."""
        rows = self.adapter(self.text[ids])  # (m, dim)
        if self.use_ids:
            id_mask = self.id_mask[ids]  # (m, 1)
            if self.training and self.id_dropout > 0:
                id_mask = id_mask * (torch.rand_like(id_mask) >= self.id_dropout)
            rows = rows + self.ids(ids) * id_mask
        return rows * (ids != PAD).unsqueeze(-1).to(rows.dtype)  # padding row forced to zero


class TeacherParams(SASRecParams):
    """The teacher's hyperparameters: SASRec's, a larger default width, and the text adapter."""

    dim: int = Field(128, ge=1)
    adapter_hidden: int = Field(512, ge=1)
    id_init: Literal["pca", "random", "none"] = "pca"
    softmax_over_trained: bool = False  # the training softmax over items with training interactions only
    id_dropout: float = Field(0.0, ge=0, lt=1)  # drop items' ID vectors in training (DropoutNet-style)
    # how text and ID vectors make the item table (`teachers/fusion.py`): adapter, pca_init or nullspace
    fusion: Literal["adapter", "pca_init", "nullspace"] = "adapter"
    semantic_dims: int = Field(0, ge=0)  # nullspace: text directions kept (0: half of dim)
    train_text: bool = False  # nullspace: train the text directions too (else frozen)


class LLMEnhancedSASRec(SASRec):
    """SASRec with `TextItemEmbedding`. Defaults are a larger model than the ID-only baseline (dim 128)."""

    array_params = ("text_embeddings",)

    params_model = TeacherParams

    def get_params(self) -> dict:
        params = super().get_params()
        params.pop("text_embeddings", None)  # an array, described by the teacher's manifest instead
        return params

    def _checkpoint_meta(self) -> dict:
        meta = super()._checkpoint_meta()
        # options added after checkpoints existed are checked only when set, so those checkpoints still resume
        for key, default in LATER_OPTIONS.items():
            if meta.get(key) == default:
                meta.pop(key)
        return meta

    def _make_item_embedding(self, train) -> nn.Module:
        if len(self.text_embeddings) != train.n_items:
            raise ValueError(
                f"text_embeddings has {len(self.text_embeddings)} rows but the data has {train.n_items} items"
            )
        if self.fusion == "pca_init":
            return PCAInitItemEmbedding(self.text_embeddings, self.dim)
        if self.fusion == "nullspace":
            return NullSpaceItemEmbedding(
                self.text_embeddings,
                self.dim,
                self.semantic_dims or self.dim // 2,
                train_text=self.train_text,
                has_ids=train.item_counts() > 0,
            )
        return TextItemEmbedding(
            self.text_embeddings,
            self.dim,
            self.adapter_hidden,
            self.dropout,
            self.id_init,
            has_ids=train.item_counts() > 0,  # items never seen in training are represented by text alone
            id_dropout=self.id_dropout,
        )

    def _loss(self, train):
        if self.negatives or not self.softmax_over_trained:  # sampled: only trained items are ever drawn
            return super()._loss(train)
        return partial(next_item_loss, candidates=torch.from_numpy(train.item_counts() > 0))

    def n_params(self) -> int:
        """Learned parameters plus the frozen text table (needed to serve the teacher)."""
        return super().n_params() + int(np.prod(np.shape(self.text_embeddings)))
