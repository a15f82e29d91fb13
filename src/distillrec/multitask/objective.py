"""The training objective of a multi-task (ESMM) model: its two supervised tasks, how they are weighted, and
the knowledge-distillation terms a student adds when a teacher's outputs come with each batch.

Supervised tasks, over every impression of the batch (ESMM's entire space):
- `ctr`: binary cross-entropy of pCTR against the click;
- `ctcvr`: binary cross-entropy of pCTCVR = pCTR x pCVR against click-and-conversion.

Task weights (`weighting`):
- `fixed`: `task_weights` (1 and 1 by default);
- `uncertainty` (Kendall, Gal and Cipolla, CVPR 2018): a learned log-variance s_t per task, the loss
  sum_t exp(-s_t) L_t + s_t / 2;
- `gradnorm` (after Chen et al., ICML 2018): learned weights w_t (2 softmax(a): they sum to the number of
  tasks) that balance the tasks' gradient norms at the model's last shared layer: G_t = w_t ||grad L_t||, and w
  learns from sum_t |G_t - mean(G) r_t^alpha|, where r_t is task t's loss relative to its first batch's,
  divided by the mean of those ratios (a task that trains slower gets a larger target). The model itself
  learns from sum_t w_t L_t with w held fixed in that term, and w from the balance term only (its gradient
  reaches no model weight). One extra backward pass per task through the towers, each step.

Distillation terms (`kd`), each weighted by `kd_weight`, from the teacher's two logits for every impression:
- `soft-ctr`, `soft-cvr`, `soft-ctcvr`: the task's soft label: binary cross-entropy of the student's
  probability against the teacher's (its calibrated pCTR, pCVR, pCTCVR) on each impression (pCVR too on every
  impression: ESMM defines it over the whole space);
- `rank-ctr`, `rank-ctcvr`: the teacher's ordering of one user's impressions by that task: KL(teacher ||
  student) of the softmax over the impressions of one user in the batch, of the task's logit (pCTR's logit;
  log pCTCVR for ctcvr) over `temperature`, averaged over the users of the batch that have two impressions or
  more in it. This is the within-user ranking distillation of CrossDistil (Yang et al., AAAI 2022) in a
  listwise form; its cross-task part (ranking augmented samples that mix the tasks' labels) and its
  calibration of the distilled scores are not implemented.

A batch is a dict of tensors: `users`, `items`, `click`, `ctcvr` (labels), `groups` (each row's user as an
index 0..G-1 within the batch), for a teacher `profiles` (each row's user text profile before its time) and,
with KD, `teacher_ctr` and `teacher_cvr` (logits).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from distillrec.multitask.esmm import log_ctcvr

__all__ = ["MultiTaskObjective", "KD_TERMS", "WEIGHTINGS", "soft_label_loss", "group_listwise_kl"]

KD_TERMS = ("soft-ctr", "soft-cvr", "soft-ctcvr", "rank-ctr", "rank-ctcvr")
WEIGHTINGS = ("fixed", "uncertainty", "gradnorm")


def soft_label_loss(ctr_logit: torch.Tensor, cvr_logit: torch.Tensor, target_p: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy -[t log p + (1 - t) log(1 - p)] of pCTCVR = sigmoid(a) sigmoid(b) (from the two
    logits a, b) against targets t in [0, 1] (0/1 labels or a teacher's probabilities). Both logs from the
    logits, stable and with a gradient everywhere: 1 - p = (1 - sigmoid(a)) + sigmoid(a)(1 - sigmoid(b))."""
    log_p = log_ctcvr(ctr_logit, cvr_logit)
    log_not = torch.logaddexp(F.logsigmoid(-ctr_logit), F.logsigmoid(ctr_logit) + F.logsigmoid(-cvr_logit))
    return -(target_p * log_p + (1 - target_p) * log_not).mean()


def group_listwise_kl(
    student: torch.Tensor, teacher: torch.Tensor, groups: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Mean over groups of two rows or more of KL(softmax(teacher / T) || softmax(student / T)), each softmax
    over the rows of one group (`groups`: each row's group index 0..G-1)."""
    n_groups = int(groups.max()) + 1
    sizes = torch.bincount(groups, minlength=n_groups)
    log_q = _group_log_softmax(student / temperature, groups, n_groups)
    log_p = _group_log_softmax(teacher / temperature, groups, n_groups)
    per_row = log_p.exp() * (log_p - log_q)
    per_group = torch.zeros(n_groups, dtype=per_row.dtype, device=per_row.device).index_add(
        0, groups, per_row
    )
    ranked = sizes >= 2
    if not ranked.any():
        return per_row.sum() * 0.0
    return per_group[ranked].mean()


def _group_log_softmax(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    maxes = torch.full((n_groups,), -torch.inf, dtype=x.dtype, device=x.device)
    maxes = maxes.scatter_reduce(0, groups, x.detach(), reduce="amax")
    shifted = x - maxes[groups]
    sums = torch.zeros(n_groups, dtype=x.dtype, device=x.device).index_add(0, groups, shifted.exp())
    return shifted - sums.log()[groups]


class MultiTaskObjective(nn.Module):
    """loss(model, batch); a module because `uncertainty` weighting learns its log-variances beside the model."""

    def __init__(
        self,
        weighting: str = "fixed",
        task_weights: tuple[float, float] = (1.0, 1.0),
        kd: tuple[str, ...] = (),
        kd_weight: float = 1.0,
        temperature: float = 1.0,
        alpha: float = 1.5,
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        unknown = [term for term in kd if term not in KD_TERMS]
        if unknown:
            raise ValueError(
                f"unknown multi-task KD term {unknown[0]!r}; expected some of {', '.join(KD_TERMS)}"
            )
        if len(task_weights) != 2 or min(task_weights) < 0:
            raise ValueError(f"task_weights must be two weights >= 0 (ctr, ctcvr), got {task_weights!r}")
        if kd_weight < 0 or temperature <= 0:
            raise ValueError(f"kd_weight must be >= 0 and temperature > 0, got {kd_weight}, {temperature}")
        self.weighting, self.task_weights, self.kd = weighting, tuple(task_weights), tuple(kd)
        self.kd_weight, self.temperature = kd_weight, temperature
        self.log_vars = nn.Parameter(torch.zeros(2)) if weighting == "uncertainty" else None
        self.alpha = alpha
        if weighting == "gradnorm":
            self.weight_logits = nn.Parameter(torch.zeros(2))
            self.register_buffer("initial_losses", torch.zeros(2))  # zeros until the first batch

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ctr_logit, cvr_logit = model(batch["users"], batch["items"], batch.get("profiles"))
        student_ctcvr = log_ctcvr(ctr_logit, cvr_logit)
        losses = torch.stack(
            [
                F.binary_cross_entropy_with_logits(ctr_logit, batch["click"]),
                soft_label_loss(ctr_logit, cvr_logit, batch["ctcvr"]),
            ]
        )
        if self.weighting == "fixed":
            loss = (torch.tensor(self.task_weights, device=losses.device) * losses).sum()
        elif self.weighting == "uncertainty":
            loss = (torch.exp(-self.log_vars) * losses + self.log_vars / 2).sum()
        else:
            loss = self.gradnorm_loss(model, losses)
        if self.kd:
            loss = loss + self.kd_weight * self.kd_loss(ctr_logit, cvr_logit, student_ctcvr, batch)
        return loss

    def task_weights_now(self) -> torch.Tensor:
        """The current (ctr, ctcvr) weights of `gradnorm`."""
        return 2 * torch.softmax(self.weight_logits, dim=0)

    def gradnorm_loss(self, model: nn.Module, losses: torch.Tensor) -> torch.Tensor:
        if not torch.any(self.initial_losses > 0):
            self.initial_losses.copy_(losses.detach())
        weights = self.task_weights_now()
        shared = model.last_shared()
        norms = []
        for task_loss in losses:
            grads = torch.autograd.grad(task_loss, shared, retain_graph=True, allow_unused=True)
            norms.append(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None)))
        scaled = weights * torch.stack(norms)  # G_t: the gradient norm of w_t L_t
        ratios = losses.detach() / self.initial_losses.clamp(min=1e-12)
        target = (scaled.mean() * (ratios / ratios.mean()) ** self.alpha).detach()
        return (weights.detach() * losses).sum() + (scaled - target).abs().sum()

    def kd_loss(self, ctr_logit, cvr_logit, student_ctcvr, batch: dict) -> torch.Tensor:
        teacher_ctr = batch["teacher_ctr"]
        teacher_ctcvr = log_ctcvr(teacher_ctr, batch["teacher_cvr"])
        terms = []
        for term in self.kd:
            if term == "soft-ctr":
                terms.append(F.binary_cross_entropy_with_logits(ctr_logit, torch.sigmoid(teacher_ctr)))
            elif term == "soft-cvr":
                terms.append(
                    F.binary_cross_entropy_with_logits(cvr_logit, torch.sigmoid(batch["teacher_cvr"]))
                )
            elif term == "soft-ctcvr":
                terms.append(soft_label_loss(ctr_logit, cvr_logit, teacher_ctcvr.exp()))
            elif term == "rank-ctr":
                terms.append(group_listwise_kl(ctr_logit, teacher_ctr, batch["groups"], self.temperature))
            else:  # rank-ctcvr
                terms.append(
                    group_listwise_kl(student_ctcvr, teacher_ctcvr, batch["groups"], self.temperature)
                )
        return torch.stack(terms).sum()
