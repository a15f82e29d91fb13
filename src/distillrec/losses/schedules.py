"""Schedules for the KD temperature and the KD weights.

By training progress p in [0, 1] (e.g. step / total_steps), callables p -> float:
- ConstantSchedule(v):        v
- LinearSchedule(start, end): start + (end - start) * p
- CosineSchedule(start, end): end + (start - end) * (1 + cos(pi * p)) / 2   (flat at both ends)

By teacher confidence, per example, from teacher logits (batch, n) (full catalogue or its top-K scores; with
top-K scores the distribution is the softmax over those K only):
- teacher_confidence(logits, kind="top1"):    c = max_i softmax(t / T)_i                 in [1/n, 1]
- teacher_confidence(logits, kind="entropy"): c = 1 - H(softmax(t / T)) / log(n)         in [0, 1]
- confidence_weights(...):     w = c, or w = c / mean_batch(c) with normalize=True (keeps the term's scale):
  trust a confident teacher more.
- confidence_temperature(...): T_b = t_min + (t_max - t_min) * c_b: a peaked (confident) teacher carries
  little information in its soft labels at low T, so it is softened more; an unsure one is left sharper.
All outputs of the confidence functions are detached (batch,) tensors, ready for `SoftLabelKD(temperature=)`
and `CompositeLoss(example_weights=)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CONFIDENCE_KINDS = ("top1", "entropy")


def _check_progress(progress: float) -> float:
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"training progress must be in [0, 1], got {progress}")
    return progress


@dataclass(frozen=True)
class ConstantSchedule:
    value: float

    def __call__(self, progress: float) -> float:
        _check_progress(progress)
        return self.value


@dataclass(frozen=True)
class LinearSchedule:
    start: float
    end: float

    def __call__(self, progress: float) -> float:
        return self.start + (self.end - self.start) * _check_progress(progress)


@dataclass(frozen=True)
class CosineSchedule:
    start: float
    end: float

    def __call__(self, progress: float) -> float:
        return (
            self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * _check_progress(progress))) / 2.0
        )


def teacher_confidence(
    teacher_logits: torch.Tensor, kind: str = "top1", temperature: float = 1.0
) -> torch.Tensor:
    """(batch, n) teacher logits -> (batch,) confidence in [0, 1] (see module docstring)."""
    if kind not in CONFIDENCE_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {list(CONFIDENCE_KINDS)}")
    log_p = torch.log_softmax(teacher_logits.detach() / temperature, dim=1)  # (batch, n)
    p = log_p.exp()
    if kind == "top1":
        return p.max(dim=1).values
    n = teacher_logits.shape[1]
    if n < 2:
        raise ValueError("entropy confidence needs at least 2 columns")
    entropy = -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=1)  # (batch,)
    return 1.0 - entropy / math.log(n)


def confidence_weights(
    teacher_logits: torch.Tensor, kind: str = "top1", temperature: float = 1.0, normalize: bool = False
) -> torch.Tensor:
    c = teacher_confidence(teacher_logits, kind, temperature)  # (batch,)
    return c / c.mean().clamp(min=1e-12) if normalize else c


def confidence_temperature(
    teacher_logits: torch.Tensor, t_min: float, t_max: float, kind: str = "top1"
) -> torch.Tensor:
    if not 0 < t_min <= t_max:
        raise ValueError(f"need 0 < t_min <= t_max, got t_min={t_min}, t_max={t_max}")
    return t_min + (t_max - t_min) * teacher_confidence(teacher_logits, kind)  # (batch,)
