"""Which rows make each training batch: consecutive rows of a shuffled order, or rows of similar length.

Sequence models pad a batch to its longest sequence, so batches of mixed lengths spend most of their work on
padding when lengths vary (ml-1m: windows of 2 to 200 items, mean 107). With `lengths`, `batch_rows` cuts the
shuffled order into chunks of `BUCKET_SPAN` batches, sorts each chunk by length, cuts it into batches and
shuffles the batches: every row still appears once per epoch, and which rows share a batch is still random
within a band of lengths (the "sortish" sampling of fairseq and AllenNLP's bucket iterator).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BUCKET_SPAN", "batch_rows"]

BUCKET_SPAN = 50  # batches per sorted chunk


def batch_rows(
    order: np.ndarray,
    batch_size: int,
    lengths: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> list[np.ndarray]:
    """Row indices of each batch. `order`: a permutation of the rows. Without `lengths`, consecutive slices
    of `order`; with `lengths` (one per row) and `rng`, batches of similar length in a random order."""
    if lengths is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is None:
        raise ValueError("batch_rows: length bucketing needs an rng to shuffle the batches")
    batches = []
    for start in range(0, len(order), batch_size * BUCKET_SPAN):
        chunk = order[start : start + batch_size * BUCKET_SPAN]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
