"""What a KD method is to the distillation objective, declared once in the method's own file.

Each method file ends with `METHOD = KDMethod(...)`, and `losses/registry.py` lists the methods (one line
each). A method says:

- `reads`: which teacher outputs it reads, so the objective knows what to gather for it:
    "topk"       the teacher's top-K items and scores at each covered position (`TopKBatch`);
    "hidden"     the teacher's hidden state at each covered position (`HiddenBatch`; the loss is built with
                 `student_dim` and `teacher_dim`);
    "table"      the whole item table, PCA-compressed to the student's width (`TableBatch`);
    "embedding"  nothing per batch: it changes the student's item embedding when it is bound (`on_bind`);
- `loss`: its loss module (None for "embedding" methods), whose constructor arguments are options of the
  method (`option_source` names another class for a method without a loss);
- `defaults`: option values of this method that differ from the loss's own defaults and the common ones;
- `options`: a small frozen dataclass of the method's own options, beyond the common ones (`weight`,
  `schedule`, `weight_end`; for "topk" also `k`, `negatives`, `confidence`; for "hidden" `confidence`) and its
  loss's constructor arguments (`losses/spec.py` checks them all);
- `check(spec)`: a check across options (e.g. soft's `negatives` only with `full=false`);
- `inputs(batch, spec)`: the keyword arguments of its loss's forward for one batch (default: the batch's
  fields, as "hidden" and "table" losses take them);
- `on_bind(module, teacher, spec)`: a change to the student when the objective is bound (`BindContext`);
- `shares_ce_lse(spec)`: whether its inputs use the catalogue log-sum-exp at T = 1 that CE computes anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

__all__ = ["KDMethod", "TopKBatch", "HiddenBatch", "TableBatch", "BindContext", "READS"]

READS = ("topk", "hidden", "table", "embedding")


@dataclass(frozen=True, eq=False)
class TopKBatch:
    """What a top-K term reads for its m examples."""

    hidden: torch.Tensor  # (m, dim) student states
    table: torch.Tensor  # (n_items, dim) student item table
    top_items: torch.Tensor  # (m, k) the teacher's top-k items, best first
    top_scores: torch.Tensor  # (m, k) their teacher scores
    student: torch.Tensor  # (m, c) student scores on the columns: the top-k items, then the negatives
    top: torch.Tensor  # (m, k) column of each top item in `student`
    negatives: torch.Tensor | None  # (m, n) columns of the sampled negatives, or None
    lse: torch.Tensor | None  # (m,) the student's catalogue log-sum-exp at T = 1 when CE computed it


@dataclass(frozen=True, eq=False)
class HiddenBatch:
    student_hidden: torch.Tensor  # (m', dim) at the positions whose teacher state is exported
    teacher_hidden: torch.Tensor  # (m', dim_t)
    progress: float  # training progress in [0, 1]


@dataclass(frozen=True, eq=False)
class TableBatch:
    student_item_emb: torch.Tensor  # (n_items, dim)
    teacher_compressed: torch.Tensor  # (n_items, dim) PCA of the teacher's item table


@dataclass(frozen=True, eq=False)
class BindContext:
    """What a method may read when the objective is bound to a student."""

    teacher_table: torch.Tensor | None  # (n_items, dim_t) the teacher's item table, when a term reads it
    compressed_table: (
        torch.Tensor | None
    )  # (n_items, dim) its PCA at the student's width, when a term reads it


def batch_fields(batch: Any, spec: Any) -> dict[str, Any]:
    """The default `inputs`: a "hidden" or "table" batch's tensors by name (progress left out)."""
    return {f.name: getattr(batch, f.name) for f in fields(batch) if f.name != "progress"}


@dataclass(frozen=True, eq=False)
class KDMethod:
    name: str
    reads: str
    loss: type[nn.Module] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    options: type | None = None  # a frozen dataclass of the method's own options
    check: Callable[[Any], None] | None = None
    inputs: Callable[[Any, Any], dict[str, Any]] = batch_fields
    on_bind: Callable[[nn.Module, BindContext, Any], None] | None = None
    shares_ce_lse: Callable[[Any], bool] | None = None
    option_source: type | None = None  # the class whose constructor arguments are options (default: `loss`)

    def __post_init__(self) -> None:
        if self.reads not in READS:
            raise ValueError(f"{self.name}: reads={self.reads!r} is not one of {list(READS)}")
        if (self.loss is None) != (self.reads == "embedding"):
            raise ValueError(f"{self.name}: a method has a loss unless it reads 'embedding'")

    @property
    def source(self) -> type:
        return self.option_source or self.loss
