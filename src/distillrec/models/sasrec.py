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

from functools import partial
from typing import Self

import numpy as np
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.devices import module_device
from distillrec.evaluate.ranking import evaluate
from distillrec.layers.sampled_softmax import SampledSoftmax
from distillrec.layers.sasrec import (
    PAD,
    ItemEmbedding,
    SASRecModule,
    history_windows,
    next_item_loss,
    sampled_next_item_loss,
    training_windows,
)
from distillrec.models.params import SASRecParams
from distillrec.models.torch_model import TorchRecommender
from distillrec.train.batches import batch_rows
from distillrec.train.distributed import shard
from distillrec.train.loop import FitResult, TrainConfig, fit_loop

_TRAIN_CONFIG_PARAMS = frozenset(
    {
        "max_epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "patience",
        "seed",
        "bf16",
        "device",
        "num_threads",
        "checkpoint_dir",
        "progress",
        "eval_every",
        # This changes how batches are drawn, not the model; it is not checked when a checkpoint resumes (so
        # checkpoints written before it existed still resume).
        "length_buckets",
    }
)


class SASRec(TorchRecommender):
    params_model = SASRecParams

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
        """The training loss `(module, batch) -> scalar`: the full softmax, or the sampled one with `negatives`;
        a subclass may restrict the full softmax."""
        if self.negatives:
            return partial(
                sampled_next_item_loss, sampled=SampledSoftmax(train.item_counts(), self.negatives)
            )
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
            device=self.device,
            checkpoint_dir=self.checkpoint_dir,
            num_threads=self.num_threads,
            progress=self.progress,
        )

    def _checkpoint_meta(self) -> dict:
        """What must not change when a checkpoint is resumed (the training config is checked separately)."""
        meta = {k: v for k, v in self.get_params().items() if k not in _TRAIN_CONFIG_PARAMS}
        # the full softmax, as before the option existed: checkpoints written before it still resume
        if meta.get("negatives") == 0:
            meta.pop("negatives")
        return meta

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
                group = shard(group)  # under torchrun, this rank's rows of the global batch
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
        return self._encode(users, history).float().cpu().numpy()  # float32 also under bf16 autocast

    def _encode(self, users: np.ndarray, history: Interactions) -> torch.Tensor:
        module = self._eval_module()
        ids = history_windows(users, history, self.max_len).to(module_device(module))
        with torch.inference_mode():
            return module(ids)[:, -1]  # (batch, dim)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        hidden = self._encode(users, history)  # (batch, dim)
        # The scoring head runs in float32 even under bf16 autocast: in bfloat16 (8 bits of mantissa) the
        # scores of a full catalogue tie and reorder (measured: benchmarks/bf16_inference.py).
        with torch.inference_mode(), torch.autocast(hidden.device.type, enabled=False):
            return self.module_.logits(hidden.float()).cpu().numpy()  # (batch, n_items)

    def item_embeddings(self) -> np.ndarray:
        """(n_items, dim) float32 item table (input and output layer; padding row removed)."""
        with torch.no_grad():
            return self.module_.item_table().float().cpu().numpy().copy()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.module_.parameters())
