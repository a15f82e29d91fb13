"""Every student's hyperparameters, typed, with their defaults: defined here once, read by the students and by
the config (which checks `students[].params` when it loads, without importing torch).

`STUDENT_PARAMS[name]` is a strict pydantic model: an unknown key, a wrong type or a value out of range is an
error that names the key. `StudentTrainParams` holds the settings every student trains with (the `TrainParams`
of `models/params.py`, see `train/loop.py`, with a longer patience); each student adds its architecture. A text-tower student's `text_embeddings` is not a hyperparameter: it comes
from the teacher folder.
"""

from __future__ import annotations

from pydantic import Field

from distillrec.models.params import TrainParams

__all__ = [
    "StudentTrainParams",
    "SASRecStudentParams",
    "GRU4RecParams",
    "MFParams",
    "TwoTowerParams",
    "STUDENT_PARAMS",
]


class StudentTrainParams(TrainParams):
    patience: int = Field(30, ge=1)  # validation curves of small students sit on long plateaus


class SASRecStudentParams(StudentTrainParams):
    dim: int = Field(32, ge=1)
    n_layers: int = Field(1, ge=1)
    n_heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    length_buckets: bool = False  # batch windows of similar length (less padding)
    bf16: bool = False  # bfloat16 autocast in training (float32 on CPUs without it)


class GRU4RecParams(StudentTrainParams):
    dim: int = Field(32, ge=1)
    n_layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class MFParams(StudentTrainParams):
    dim: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(1e-2, gt=0)


class TwoTowerParams(StudentTrainParams):
    dim: int = Field(32, ge=1)
    text_dim: int = Field(32, ge=1)  # the PCA width of the text tower's input
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


STUDENT_PARAMS: dict[str, type[StudentTrainParams]] = {
    "sasrec": SASRecStudentParams,
    "gru4rec": GRU4RecParams,
    "mf": MFParams,
    "two_tower": TwoTowerParams,
}
