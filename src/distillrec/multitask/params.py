"""A multi-task model's hyperparameters, typed, with their defaults (a strict pydantic model: an unknown key, a
wrong type or a value out of range is an error naming the key). `TEACHER_DEFAULTS` and `STUDENT_DEFAULTS` are
the sizes the `multitask` command trains unless told otherwise: a student with about 5% of the teacher's
trained parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from distillrec.devices import DEVICE_PATTERN
from distillrec.models.params import Params, problems

__all__ = ["MultiTaskParams", "TEACHER_DEFAULTS", "STUDENT_DEFAULTS", "KD_VARIANTS", "params_from"]

KDTerm = Literal["soft-ctr", "soft-cvr", "soft-ctcvr", "rank-ctr", "rank-ctcvr"]


class MultiTaskParams(Params):
    dim: int = Field(16, ge=1)  # id vectors (and the teacher's text adapter output)
    hidden: int = Field(32, ge=2)  # bottom width
    bottom: Literal["shared", "mmoe"] = "mmoe"
    n_experts: int = Field(4, ge=1)  # MMoE only
    dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(1024, ge=1)
    # impressions of one user kept together in a batch: what the within-user ranking KD terms compare
    group_size: int = Field(8, ge=1)
    max_epochs: int = Field(50, ge=1)
    patience: int = Field(3, ge=1)
    weighting: Literal["fixed", "uncertainty", "gradnorm"] = "fixed"
    gradnorm_alpha: float = Field(1.5, ge=0)  # how strongly a slower task's target norm grows
    task_weights: tuple[float, float] = (1.0, 1.0)  # (ctr, ctcvr) with fixed weighting
    kd: tuple[KDTerm, ...] = ()
    kd_weight: float = Field(1.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    seed: int = 0
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    progress: bool = False


TEACHER_DEFAULTS = {"dim": 64, "hidden": 128}
STUDENT_DEFAULTS = {"dim": 8, "hidden": 16}

# what each student variant of the comparison adds to the supervised loss
KD_VARIANTS: dict[str, tuple[str, ...]] = {
    "alone": (),  # the student without a teacher
    "kd-ctr": ("soft-ctr",),  # single-task KD: the click's soft labels
    "kd-ctcvr": ("soft-ctcvr",),  # single-task KD: click-and-conversion's soft labels
    "kd-cvr": ("soft-cvr",),  # single-task KD: the conversion-given-click soft labels (not run by default)
    "kd-soft": ("soft-ctr", "soft-ctcvr"),  # both tasks' soft labels
    "kd-multi": ("soft-ctr", "soft-ctcvr", "rank-ctr", "rank-ctcvr"),  # and both tasks' within-user rankings
}


def params_from(*layers: dict) -> MultiTaskParams:
    """`MultiTaskParams` from dicts applied in order (later keys win); lists (YAML, JSON) become tuples. An
    error names the key."""
    merged = {}
    for layer in layers:
        merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()})
    try:
        return MultiTaskParams(**merged)
    except ValidationError as exc:
        raise ValueError(problems(exc, MultiTaskParams)) from None
