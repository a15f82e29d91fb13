"""Sampled softmax with the logQ correction: the next-item cross-entropy for catalogues where the full softmax
costs too much (its cost per position grows with the catalogue; this one's with the number of negatives).

For each batch, `n_negatives` items are drawn with replacement from the training popularity q (q_i proportional
to item i's training count: items never trained on are never drawn) and shared by every position of the batch.
Each position's loss is the cross-entropy of its target against those negatives, every logit corrected by
subtracting log(n_negatives * q_i) (Bengio & Senecal, 2008; Yi et al., RecSys 2019 "Sampling-bias-corrected
neural modeling"): without it the popular items, drawn often, are pushed down too hard. A negative that is the
position's own target is masked out.

    loss_r = logsumexp([s_r,t - c_t, s_r,j - c_j for sampled j != t]) - (s_r,t - c_t),  c_i = log(M q_i)

The negatives are drawn on the CPU's generator (seeded per epoch by the training loop) wherever the model trains,
so the same run draws the same negatives on any device and on every rank of a torchrun job.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["SampledSoftmax"]


class SampledSoftmax:
    """Built from the training item counts (n_items,) and the number of negatives per batch; called as
    `loss(hidden (n, d), items, targets (n,) int64, -1 = no target) -> scalar`, where `items` is the item table
    (n_items, d) or a function from item indices to their vectors (so a model whose item vectors cost compute,
    like the teacher's text adapter, computes only the targets' and the negatives')."""

    def __init__(self, item_counts: np.ndarray, n_negatives: int) -> None:
        counts = np.asarray(item_counts, dtype=np.float64)
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
        if counts.ndim != 1 or counts.sum() <= 0 or (counts < 0).any():
            raise ValueError(
                "item_counts must be (n_items,) non-negative counts with at least one item trained"
            )
        self.n_negatives = n_negatives
        self.q = torch.from_numpy(counts / counts.sum())  # (n_items,) float64 sampling probabilities
        with np.errstate(divide="ignore"):  # an item never trained: never drawn, correction unused
            self.correction = torch.from_numpy(np.log(n_negatives * counts / counts.sum()).astype(np.float32))

    def __call__(
        self,
        hidden: torch.Tensor,
        items: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
        targets: torch.Tensor,
    ) -> torch.Tensor:
        vectors = items.__getitem__ if isinstance(items, torch.Tensor) else items
        keep = targets >= 0
        h, t = hidden[keep], targets[keep]  # (n', d), (n',)
        negatives = torch.multinomial(self.q, self.n_negatives, replacement=True).to(h.device)  # (m,)
        if len(t) == 0:  # nothing to predict: zero, with every input still in the graph
            return hidden.sum() * 0.0 + vectors(negatives).sum() * 0.0
        correction = self.correction.to(h.device)
        positive = (h * vectors(t)).sum(dim=1).float() - correction[t]  # (n',)
        scores = (h @ vectors(negatives).T).float() - correction[negatives]  # (n', m)
        scores = scores.masked_fill(negatives[None, :] == t[:, None], -math.inf)  # accidental hits
        logits = torch.cat([positive[:, None], scores], dim=1)  # (n', 1 + m)
        return (torch.logsumexp(logits, dim=1) - positive).mean()
