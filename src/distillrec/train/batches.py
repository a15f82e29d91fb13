"""Which rows make each training batch: consecutive rows of a shuffled order, or rows of similar length.

Sequence models pad a batch to its longest sequence, so batches of mixed lengths spend most of their work on
padding when lengths vary (ml-1m: windows of 2 to 200 items, mean 107). With `lengths`, `batch_rows` cuts the
shuffled order into chunks of about `BUCKET_SPAN` batches, sorts each chunk by length and cuts it into batches
of similar length, then shuffles the batches: every row still appears once per epoch, and which rows share a
batch is still random within a band of lengths (the "sortish" sampling of fairseq and AllenNLP's bucket
iterator).

The bucketed batches hold a budget of *positions*, not of rows. The training losses average over a batch's
positions, so a batch's positions share one unit of weight. A random batch of `batch_size` rows holds about
`batch_size * mean length` positions, whatever its rows; a bucket of `batch_size` short rows would hold a
hundredth of that, and each of its positions would weigh a hundred times more than one in a bucket of long rows
(the next item after two ratings would count as much as a whole 200-item history). So a bucket takes as many
rows as make `batch_size * mean length` positions: many short rows or few long ones. Each position then weighs
about what it weighs in random batches, and an epoch has about as many steps.
Only about: the last, smaller chunk of an epoch makes batches of anywhere from one row to ~1.5x the budget,
and a batch may hold more than `batch_size` rows. A term with one value per row rather than per position (a
`hint` term on the users' last rows only) still averages over rows, so its short-history users weigh less
than in random batches.
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
    of `order` (`batch_size` rows each); with `lengths` (positions per row) and `rng`, batches of similar
    length in a random order, each holding about `batch_size * lengths.mean()` positions."""
    if len(order) == 0:
        return []
    if lengths is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is None:
        raise ValueError("batch_rows: length bucketing needs an rng to shuffle the batches")
    lengths = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)  # a row costs at least one position
    budget = batch_size * float(lengths[order].mean())  # positions in an average random batch
    batches = []
    for start in range(0, len(order), batch_size * BUCKET_SPAN):
        chunk = order[start : start + batch_size * BUCKET_SPAN]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        sizes = lengths[chunk]
        total = float(sizes.sum())
        n_batches = max(1, round(total / budget))
        # each row goes to the batch that holds the middle of its positions: n_batches equal shares of `total`
        middle = np.cumsum(sizes) - sizes / 2
        which = np.minimum((middle * n_batches / total).astype(np.int64), n_batches - 1)
        cuts = np.flatnonzero(np.diff(which)) + 1
        batches.extend(np.split(chunk, cuts))
    return [batches[i] for i in rng.permutation(len(batches))]
