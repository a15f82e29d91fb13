"""The student's scores that the KD terms read, without its (positions x items) score matrix.

The top-K terms compare the student with the teacher on a few columns per position: the teacher's top-K and
sampled negatives. What they need of the full catalogue is the softmax normaliser (soft labels), the student's
rank of an item (RD's rank-discrepancy weight) or the student's own top-K (DLLM2Rec's consistency weight).
Given hidden states h (m, d) and the item table E (n_items, d) (`StudentModule.logits(h) = h @ E.T`):

- `scores_at(h, E, items)`: h_r . e_{items[r, j]}, differentiable, (m, c) for c columns per row: gathered
  rows of E, or, when c x d reaches the catalogue's size, one GEMM `h @ E.T` and a gather. The rule of thumb
  (a gathered row, gradient included, costs about d score columns) comes from scratch timings of this
  function; over a whole KD step the two forms differ by less than the load noise on ml-100k
  (`benchmarks/kd_step.py --gather-cost 0`, BENCHMARKS.md section 3);
- `softmax_ce.logsumexp_scores(h, E, temperature=T)`: the normaliser, differentiable, in row chunks;
- `own_topk(h, E, k)` and `catalogue_ranks(h, E, items)`: constants (no gradient), computed in row chunks.

The dense alternative, `h @ E.T`, writes up to 250 MB per ml-latest-small batch, plus its gradient; these write
at most (m, c, d) and a chunk of a few MB (`benchmarks/kd_step.py`).
"""

from __future__ import annotations

import torch

from distillrec.layers.softmax_ce import autocast_operands, row_chunks
from distillrec.losses.base import gather_columns

__all__ = ["scores_at", "own_topk", "catalogue_ranks", "student_rank_of"]

GATHER_COST = 1.0  # gather when columns x width x this < n_items (the rule of thumb above)


def scores_at(hidden: torch.Tensor, table: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """hidden (m, d), table (n_items, d), items (m, c) int64 -> (m, c) scores hidden[r] . table[items[r, j]],
    the entries of `hidden @ table.T` at those columns, in float32 (float64 for float64 inputs); under autocast
    the products run in bfloat16, as the dense form's would."""
    if items.shape[1] * hidden.shape[1] * GATHER_COST >= table.shape[0]:  # a small catalogue: in full
        scores = (hidden @ table.T).gather(1, items)  # (m, c)
    else:
        scores = torch.bmm(table[items], hidden.unsqueeze(2)).squeeze(2)  # (m, c)
    return scores if scores.dtype == torch.float64 else scores.float()


@torch.no_grad()
def own_topk(hidden: torch.Tensor, table: torch.Tensor, k: int) -> torch.Tensor:
    """hidden (m, d), table (n_items, d) -> (m, k) int64: each row's k best-scored items, best first."""
    top = torch.empty(hidden.shape[0], min(k, table.shape[0]), dtype=torch.int64, device=hidden.device)
    hidden, table = autocast_operands(hidden, table)
    for rows in row_chunks(hidden.shape[0], table.shape[0]):
        top[rows] = (hidden[rows] @ table.T).float().topk(top.shape[1], dim=1).indices
    return top


@torch.no_grad()
def catalogue_ranks(hidden: torch.Tensor, table: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """hidden (m, d), table (n_items, d), items (m, k) int64 -> (m, k) float32 1-based rank of each item among
    the row's scores over the whole catalogue (1 + the number of items scored higher)."""
    ranks = torch.empty(items.shape, dtype=torch.float32, device=hidden.device)  # (m, k)
    hidden, table = autocast_operands(hidden, table)
    for rows in row_chunks(hidden.shape[0], table.shape[0]):
        ranks[rows] = student_rank_of((hidden[rows] @ table.T).float(), items[rows])
    return ranks


def student_rank_of(student_logits: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """(batch, n) scores, (batch, K) items -> (batch, K) 1-based rank of each item (1 + #columns scored higher)."""
    scores = gather_columns(student_logits, items)  # (batch, K)
    ascending = student_logits.sort(dim=1).values  # (batch, n)
    n_not_higher = torch.searchsorted(ascending, scores.contiguous(), right=True)  # (batch, K): #columns <= s
    return 1.0 + (student_logits.shape[1] - n_not_higher).float()  # (batch, K)
