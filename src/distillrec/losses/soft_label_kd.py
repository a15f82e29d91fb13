"""Soft-label KD (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    L = T^2 * KL( softmax(t / T) || softmax(s / T) ) = T^2 * sum_i p_i (log p_i - log q_i)

averaged over the batch; p = teacher, q = student. The T^2 factor keeps the gradient's size roughly
independent of T (the gradient of the KL shrinks as 1/T^2), so a scheduled temperature does not rescale the
term's weight.

Two ways to give the teacher:
- `teacher_logits` (batch, n): teacher scores over the same columns as `student_logits` (full catalogue or a
  candidate set). Entries may be -inf (probability 0).
- `teacher_topk_items`/`teacher_topk_scores` (batch, K) plus optional `negative_items` (batch, M): the
  distribution is taken over the K + M columns only (a sampled softmax, no correction). Negatives without
  `negative_scores` get teacher logit -inf, i.e. teacher probability 0: the teacher's top-K is renormalised and
  the negatives still sit in the student's softmax denominator, so the loss pushes their student scores down.
  We chose -inf over a floor (e.g. the K-th score) because a floor would invent teacher mass for items the
  teacher never scored; a cached teacher that stored the negatives' scores should pass `negative_scores`.
`temperature` may be a float or a (batch,) tensor (per-example temperatures from `schedules`).

`student_lse` (batch,): the student's log-normaliser at this temperature over a larger set than the columns,
log sum_i exp(s_i / T) over the whole catalogue (`softmax_ce.logsumexp_scores(h, E, temperature=T)`), so that
log q_i = s_i / T - student_lse. Then the columns need only hold the teacher's mass: KL(p || q) reads q where
p > 0 only, so the teacher's top-K columns alone give the full-catalogue loss, without the student's
(batch, n_items) scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from distillrec.layers.softmax_ce import logsumexp_scores
from distillrec.losses.base import check_reduction, gather_columns, reduce
from distillrec.losses.method import KDMethod, TopKBatch
from distillrec.losses.schedules import confidence_temperature


def soft_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature,
    student_lse: torch.Tensor | None = None,
) -> torch.Tensor:
    """(batch, n) student and teacher logits over the same columns -> (batch,) T^2 * KL(p_teacher || q_student);
    the student's softmax is over the columns, or normalised by `student_lse` (batch,) if given."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} "
            "must have the same shape (the same columns)"
        )
    t = torch.as_tensor(temperature, dtype=student_logits.dtype, device=student_logits.device)
    if bool((t <= 0).any()):
        raise ValueError("temperature must be > 0")
    t_col = t.reshape(-1, 1) if t.dim() == 1 else t  # (batch, 1) or scalar
    if student_lse is None:
        log_q = torch.log_softmax(student_logits / t_col, dim=1)  # (batch, n)
    else:
        if student_lse.shape != student_logits.shape[:1]:
            raise ValueError(
                f"student_lse must have shape ({student_logits.shape[0]},), got {tuple(student_lse.shape)}"
            )
        log_q = student_logits / t_col - student_lse.to(student_logits.dtype).unsqueeze(1)  # (batch, n)
    teacher = teacher_logits.detach().to(student_logits.dtype)  # (batch, n)
    log_p = torch.log_softmax(teacher / t_col, dim=1)  # (batch, n), -inf where p = 0
    p = log_p.exp()
    kl = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(dim=1)  # (batch,)
    return kl * t.reshape(-1) ** 2 if t.dim() == 1 else kl * t**2


class SoftLabelKD(nn.Module):
    def __init__(self, temperature: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        *,
        teacher_topk_items: torch.Tensor | None = None,
        teacher_topk_scores: torch.Tensor | None = None,
        negative_items: torch.Tensor | None = None,
        negative_scores: torch.Tensor | None = None,
        temperature: float | torch.Tensor | None = None,
        student_lse: torch.Tensor | None = None,
    ) -> torch.Tensor:
        temperature = self.temperature if temperature is None else temperature
        if (teacher_logits is None) == (teacher_topk_items is None):
            raise ValueError(
                "give exactly one of teacher_logits or teacher_topk_items (+ teacher_topk_scores)"
            )
        if teacher_logits is not None:
            return reduce(soft_kl(student_logits, teacher_logits, temperature, student_lse), self.reduction)
        if teacher_topk_scores is None or teacher_topk_scores.shape != teacher_topk_items.shape:
            raise ValueError(
                "teacher_topk_scores must be given with the shape of teacher_topk_items (batch, K)"
            )
        items, teacher = teacher_topk_items, teacher_topk_scores  # (batch, K)
        if negative_items is not None:
            if negative_scores is None:
                negative_scores = torch.full(negative_items.shape, float("-inf"), device=teacher.device)
            elif negative_scores.shape != negative_items.shape:
                raise ValueError("negative_scores must have the shape of negative_items (batch, M)")
            items = torch.cat([items, negative_items], dim=1)  # (batch, K + M)
            teacher = torch.cat([teacher, negative_scores.to(teacher.dtype)], dim=1)  # (batch, K + M)
        student = gather_columns(student_logits, items, "teacher_topk_items/negative_items")  # (batch, K + M)
        return reduce(soft_kl(student, teacher, temperature, student_lse), self.reduction)


@dataclass(frozen=True)
class SoftOptions:
    full: bool = True  # normalise over the whole catalogue (else over the top-k and the negatives only)
    t_min: float | None = None  # a confidence-adaptive temperature in [t_min, t_max]
    t_max: float | None = None

    def __post_init__(self) -> None:
        if (self.t_min is None) != (self.t_max is None):
            raise ValueError("give both t_min and t_max for an adaptive temperature, or neither")


def _check(spec) -> None:
    if spec.full and spec.negatives:
        raise ValueError("soft: negatives apply only with full=false (full=true already uses every item)")


def _inputs(batch: TopKBatch, spec) -> dict:
    """With `full`, the teacher's logits are its top-k scores and -inf elsewhere, normalised by the student's
    log-sum-exp over the catalogue (CE's, shared, at T = 1); else a softmax over the top-k and the negatives."""
    inputs: dict = {"student_logits": batch.student}
    if spec.t_min is not None:
        inputs["temperature"] = confidence_temperature(batch.top_scores, spec.t_min, spec.t_max)
    if not spec.full:
        return inputs | {
            "teacher_topk_items": batch.top,
            "teacher_topk_scores": batch.top_scores,
            "negative_items": batch.negatives,
        }
    lse = batch.lse
    if lse is None:  # not shared with CE (T != 1)
        t = inputs.get("temperature", spec.loss_params.get("temperature", 1.0))
        lse = logsumexp_scores(batch.hidden, batch.table, temperature=t)  # (m,) over scores / T
    return inputs | {"teacher_logits": batch.top_scores, "student_lse": lse}


def _shares_ce_lse(spec) -> bool:
    return spec.full and spec.t_min is None and spec.loss_params.get("temperature") == 1.0


METHOD = KDMethod(
    "soft",
    reads="topk",
    loss=SoftLabelKD,
    defaults={"weight": 1.0, "k": None, "temperature": 1.0},
    options=SoftOptions,
    check=_check,
    inputs=_inputs,
    shares_ce_lse=_shares_ce_lse,
)
