"""SASRec: a causal self-attention next-item model, trained with full-softmax cross-entropy.

Input: training `Interactions` (each user's time-ordered items). Output: a fitted `Recommender` whose
`score(users, history)` reads the last `max_len` items of each user's history and returns next-item logits
`(len(users), n_items)`; `encode` gives the final hidden state `(len(users), dim)` and `item_embeddings` the
(tied) item table `(n_items, dim)`.

Architecture (Kang & McAuley, ICDM 2018, "Self-Attentive Sequential Recommendation"): item embedding
(scaled by sqrt(dim)) + learned positional embedding, `n_layers` blocks of causal multi-head self-attention and
a point-wise feed-forward network (ReLU, width `dim`), here pre-LayerNorm with a final LayerNorm; the output
layer is tied with the item embedding: `logits = h @ E[1:]^T`. Item i is stored as index i + 1; 0 = padding.
Sequences are left-padded, and position p counts back from the most recent item (0 = last), which equals the
original model's absolute positions in a window left-padded to `max_len`, but lets a batch be padded only to
its own longest sequence. With `length_buckets=True` the batches are also drawn from sequences of similar length
(`train/batches.py`), so little is padded: on ml-1m (mean window 107 of 200) that cuts the work per epoch.

Training (the "SASRec+" / CE variant of Klenitskiy & Vasilev, RecSys 2023, "Turning Dross Into Gold Loss: is
BERT4Rec really better than SASRec?"): for each user with at least two training items, the last
`max_len + 1` train items `s` give input `s[:-1]` and target `s[1:]`; the loss is the cross-entropy of the
softmax over all `n_items` items, averaged over every non-padding position. Earlier items of longer sequences
are not used (no random sub-windows: one fixed window per user, as in the original).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import evaluate
from distillrec.losses.softmax_ce import softmax_ce
from distillrec.models.torch_model import TorchRecommender
from distillrec.train.batches import batch_rows
from distillrec.train.loop import FitResult, TrainConfig, fit_loop

PAD = 0
_TRAIN_CONFIG_PARAMS = frozenset(
    {
        "max_epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "patience",
        "seed",
        "bf16",
        "num_threads",
        "checkpoint_dir",
        "progress",
        "eval_every",
        # This changes how batches are drawn, not the model; it is not checked when a checkpoint resumes (so
        # checkpoints written before it existed still resume).
        "length_buckets",
    }
)


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
        positions = torch.arange(seq_len - 1, -1, -1, device=ids.device)  # (seq_len,) 0 = most recent
        x = self.item_embedding(ids) * math.sqrt(self.dim) + self.position_embedding(positions)
        x = self.input_dropout(x) * real.unsqueeze(-1)  # (batch, seq_len, dim)
        # Query t may attend to key s <= t if s is a real item; every position may attend to itself, so a
        # padding query never has an empty row (its output is never used).
        causal = torch.ones(seq_len, seq_len, dtype=torch.bool, device=ids.device).tril()
        diagonal = torch.eye(seq_len, dtype=torch.bool, device=ids.device)  # (seq_len, seq_len)
        allowed = (causal & real[:, None, :]) | diagonal  # (batch, seq_len, seq_len)
        allowed = allowed.unsqueeze(1)  # (batch, 1, seq_len, seq_len), broadcast over heads
        for block in self.blocks:
            x = block(x, allowed)
        return self.final_norm(x)  # (batch, seq_len, dim)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.table()[1:]  # (n_items, dim), the padding row left out

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
    """(len(users), L) left-padded 1-based ids of each user's last `max_len` history items, L = the longest
    (at least 1, so a user without history reads one padding position)."""
    seqs = [history.sequence(int(u))[-max_len:] for u in users]
    width = max(1, max((len(s) for s in seqs), default=1))
    ids = np.zeros((len(users), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        if len(seq):
            ids[row, width - len(seq) :] = seq.astype(np.int64) + 1
    return torch.from_numpy(ids)


class SASRec(TorchRecommender):
    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_len: int = 200,
        dropout: float = 0.2,
        max_epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 10,
        seed: int = 0,
        bf16: bool = False,
        num_threads: int | None = None,
        checkpoint_dir: str | Path | None = None,
        progress: bool = True,
        eval_every: int = 1,
        length_buckets: bool = False,
    ) -> None:
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.bf16 = bf16
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.eval_every = eval_every
        self.length_buckets = length_buckets

    def _make_item_embedding(self, train: Interactions) -> nn.Module:
        """The item table; a subclass (e.g. a text-aware teacher) overrides this to swap it."""
        return ItemEmbedding(train.n_items, self.dim)

    def _build_module(self, train: Interactions) -> SASRecModule:
        return SASRecModule(
            train.n_items,
            self.dim,
            self.n_layers,
            self.n_heads,
            self.max_len,
            self.dropout,
            item_embedding=self._make_item_embedding(train),
        )

    def _loss(self, train: Interactions):
        """The training loss `(module, batch) -> scalar`; a subclass may restrict its softmax."""
        return next_item_loss

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            eval_every=self.eval_every,
            seed=self.seed,
            bf16=self.bf16,
            checkpoint_dir=self.checkpoint_dir,
            num_threads=self.num_threads,
            progress=self.progress,
        )

    def _checkpoint_meta(self) -> dict:
        """What must not change when a checkpoint is resumed (the training config is checked separately)."""
        return {k: v for k, v in self.get_params().items() if k not in _TRAIN_CONFIG_PARAMS}

    def fit(self, train: Interactions, valid: Interactions | None = None, callbacks=()) -> Self:
        """Train on `train`; with `valid`, keep the epoch of best validation NDCG@10 (full ranking,
        history = train) and stop early. `callbacks` are passed on to `fit_loop`."""
        config = self._train_config()
        torch.manual_seed(self.seed)
        self.module_ = self._build_module(train)
        inputs, targets = training_windows(train, self.max_len)
        if len(inputs) == 0:
            raise ValueError("no user has at least 2 training interactions; SASRec has nothing to learn from")
        inputs_t, targets_t = torch.from_numpy(inputs), torch.from_numpy(targets)
        lengths = (inputs != PAD).sum(axis=1)

        def make_batches(rng: np.random.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
            order = rng.permutation(len(inputs))
            batches = []
            for group in batch_rows(order, config.batch_size, lengths if self.length_buckets else None, rng):
                rows = torch.from_numpy(group)
                width = int(lengths[group].max())  # pad only to the batch's longest sequence
                batches.append((inputs_t[rows, -width:], targets_t[rows, -width:]))
            return batches

        validate = None
        if valid is not None:

            def validate(_module: nn.Module) -> float:
                return evaluate(self, train, valid, ks=(10,), batch_size=512).summary["NDCG@10"]

        meta = self._checkpoint_meta()
        meta.update(
            n_items=train.n_items,
            n_users=train.n_users,
            n_train=len(train),
            embedding=type(self.module_.item_embedding).__name__,
        )
        self.fit_result_: FitResult = fit_loop(
            self.module_, make_batches, self._loss(train), validate, config, callbacks=callbacks, meta=meta
        )
        self.history_ = self.fit_result_.history
        return self

    def encode(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), dim) float32 final hidden state after each user's last `max_len` history items."""
        return self._encode(users, history).numpy()

    def _encode(self, users: np.ndarray, history: Interactions) -> torch.Tensor:
        self.module_.eval()
        with torch.inference_mode():
            return self.module_(history_windows(users, history, self.max_len))[:, -1]  # (batch, dim)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        hidden = self._encode(users, history)  # (batch, dim)
        # The scoring head runs in float32 even under bf16 autocast: in bfloat16 (8 bits of mantissa) the
        # scores of a full catalogue tie and reorder (measured: benchmarks/bf16_inference.py).
        with torch.inference_mode(), torch.autocast("cpu", enabled=False):
            return self.module_.logits(hidden.float()).numpy()  # (batch, n_items)

    def item_embeddings(self) -> np.ndarray:
        """(n_items, dim) float32 item table (input and output layer; padding row removed)."""
        with torch.no_grad():
            return self.module_.item_table().float().numpy().copy()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.module_.parameters())
