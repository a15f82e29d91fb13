"""Every student's hyperparameters, typed, with their defaults: defined here once, read by the students and by
the config (which checks `students[].params` when it loads, without importing torch).

`STUDENT_PARAMS[name]` is a strict pydantic model: an unknown key, a wrong type or a value out of range is an
error that names the key. `TrainParams` holds the settings every student trains with (see `train/loop.py`);
each student adds its architecture. A text-tower student's `text_embeddings` is not a hyperparameter: it comes
from the teacher folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrainParams", "SASRecParams", "GRU4RecParams", "MFParams", "TwoTowerParams", "STUDENT_PARAMS"]


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_len: int = Field(200, ge=1)  # window and history length
    max_epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(30, ge=1)  # evaluations without improvement before stopping
    seed: int = 0
    num_threads: int | None = Field(None, ge=1)
    progress: bool = True
    eval_every: int = Field(1, ge=1)


class SASRecParams(TrainParams):
    dim: int = Field(32, ge=1)
    n_layers: int = Field(1, ge=1)
    n_heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    length_buckets: bool = False  # batch windows of similar length (less padding)
    bf16: bool = False  # bfloat16 autocast in training (float32 on CPUs without it)


class GRU4RecParams(TrainParams):
    dim: int = Field(32, ge=1)
    n_layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class MFParams(TrainParams):
    dim: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    lr: float = Field(1e-2, gt=0)


class TwoTowerParams(TrainParams):
    dim: int = Field(32, ge=1)
    text_dim: int = Field(32, ge=1)  # the PCA width of the text tower's input
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


STUDENT_PARAMS: dict[str, type[TrainParams]] = {
    "sasrec": SASRecParams,
    "gru4rec": GRU4RecParams,
    "mf": MFParams,
    "two_tower": TwoTowerParams,
}
