"""The SASRec building blocks shared by the baseline, the teacher and the students (no training, no data
loading): the item table with its padding row, the pre-LN causal self-attention stack, the next-item loss and
the left-padded windows a sequence model reads.

Item i is stored as index i + 1; 0 = padding (`PAD`). Sequences are left-padded, and position p counts back
from the most recent item (0 = last), so a batch can be padded only to its own longest sequence. See
`models/sasrec.py` for the model these make up and the papers it follows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.layers.sampled_softmax import SampledSoftmax
from distillrec.layers.softmax_ce import softmax_ce

PAD = 0


class ItemEmbedding(nn.Module):
    """Learned item table; row 0 is the padding item (zero, no gradient), row i + 1 is item i.

    The interface a replacement (e.g. one that adds a projected frozen text embedding) must offer:
    `forward(ids) -> (..., dim)` and `table() -> (n_items + 1, dim)`, used for input and output alike.
    """

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        nn.init.normal_(self.embedding.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def table(self) -> torch.Tensor:
        return self.embedding.weight


class _Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, seq_len, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(dim, dim=-1)  # 3 x (batch, seq_len, dim)
        heads = (batch, seq_len, self.n_heads, dim // self.n_heads)
        q, k, v = (t.reshape(heads).transpose(1, 2) for t in (q, k, v))  # (batch, heads, seq_len, head_dim)
        # No dropout on the attention weights (the paper has it): on CPU it rules out the fused attention kernel
        # and made each layer ~4x slower (0.93 s vs 0.22 s forward + backward, batch 128, L 200); the
        # embedding, residual and feed-forward dropouts remain.
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (batch, heads, seq_len, head_dim)
        attn = attn.transpose(1, 2).reshape(batch, seq_len, dim)  # (batch, seq_len, dim)
        x = x + self.drop(self.attn_out(attn))
        return x + self.drop(self.ffn(self.ffn_norm(x)))  # (batch, seq_len, dim)


class SASRecModule(nn.Module):
    """`forward(ids (batch, seq_len), left-padded with 0) -> hidden (batch, seq_len, dim)`;
    `logits(hidden (..., dim)) -> (..., n_items)` through the tied item table (`item_table()`, no padding row)."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        n_layers: int,
        n_heads: int,
        max_len: int,
        dropout: float,
        item_embedding: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.n_items, self.dim, self.max_len = n_items, dim, max_len
        self.item_embedding = item_embedding if item_embedding is not None else ItemEmbedding(n_items, dim)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, seq_len = ids.shape
        if seq_len > self.max_len:
            raise ValueError(f"sequence length {seq_len} exceeds max_len={self.max_len}")
        real = ids != PAD  # (batch, seq_len)
        positions = (seq_len - 1) - torch.arange(seq_len, device=ids.device)  # (seq_len,) 0 = most recent
        x = self.item_embedding(ids) * math.sqrt(self.dim) + self.position_embedding(positions)
        x = self.input_dropout(x) * real.unsqueeze(-1)  # (batch, seq_len, dim)
        # Query t may attend to key s <= t if s is a real item; every position may attend to itself, so a
        # padding query never has an empty row (its output is never used).
        steps = torch.arange(seq_len, device=ids.device)  # comparisons, not eye / tril: they export to ONNX
        causal = steps[None, :] <= steps[:, None]  # (seq_len, seq_len): key s <= query t
        diagonal = steps[None, :] == steps[:, None]  # (seq_len, seq_len)
        allowed = (causal & real[:, None, :]) | diagonal  # (batch, seq_len, seq_len)
        allowed = allowed.unsqueeze(1)  # (batch, 1, seq_len, seq_len), broadcast over heads
        for block in self.blocks:
            x = block(x, allowed)
        return self.final_norm(x)  # (batch, seq_len, dim)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.table()[1:]  # (n_items, dim), the padding row left out

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """(...) 0-based items -> (..., dim): rows of `item_table()`, computed for those items only."""
        return self.item_embedding(items + 1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T  # (..., n_items)


def next_item_loss(
    module: SASRecModule, batch: tuple[torch.Tensor, torch.Tensor], candidates: torch.Tensor | None = None
) -> torch.Tensor:
    """Full-softmax cross-entropy at every non-padding position. batch: ids (B, L) 1-based, targets (B, L)
    0-based item indices with -1 at padding. `candidates` (n_items,) bool, optional: the softmax runs over
    these items only (the others get no gradient from their logits)."""
    ids, targets = batch
    hidden = module(ids)  # (batch, seq_len, dim)
    keep = targets >= 0  # (batch, seq_len)
    return softmax_ce(hidden[keep], module.item_table(), targets[keep], candidates)


def sampled_next_item_loss(
    module: SASRecModule, batch: tuple[torch.Tensor, torch.Tensor], sampled: SampledSoftmax
) -> torch.Tensor:
    """`next_item_loss` with the sampled softmax `sampled` in place of the full one."""
    ids, targets = batch
    hidden = module(ids)  # (batch, seq_len, dim)
    return sampled(hidden.reshape(-1, hidden.shape[-1]), module.item_vectors, targets.reshape(-1))


def training_windows(train: Interactions, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last `max_len + 1` train items -> left-padded `inputs` (1-based ids, 0 = padding) and
    `targets` (0-based items, -1 = padding), both `(n_sequences, max_len)` int64; users with < 2 items skipped."""
    indptr, items = train.sequences()
    lengths = np.diff(indptr)
    users = np.flatnonzero(lengths >= 2)
    inputs = np.zeros((len(users), max_len), dtype=np.int64)
    targets = np.full((len(users), max_len), -1, dtype=np.int64)
    for row, user in enumerate(users):
        seq = items[max(indptr[user], indptr[user + 1] - max_len - 1) : indptr[user + 1]].astype(np.int64)
        n = len(seq) - 1
        inputs[row, max_len - n :] = seq[:-1] + 1
        targets[row, max_len - n :] = seq[1:]
    return inputs, targets


def history_windows(users: np.ndarray, history: Interactions, max_len: int) -> torch.Tensor:
    """`history.left_padded(users, max_len)` as a tensor (see `Interactions.left_padded`)."""
    return torch.from_numpy(history.left_padded(users, max_len))
