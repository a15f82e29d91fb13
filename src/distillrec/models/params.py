"""The baselines' hyperparameters, typed, with their defaults: defined here once, read by the models (their
constructor validates against them) and by the config (which checks `baselines.grids` when it loads).

Each is a strict pydantic model: an unknown key, a wrong type or a value out of range is an error naming the
key. `TrainParams` holds what every model trained by `train/loop.py` takes (the SASRec baseline, the teacher,
the students, with their own defaults). Arrays (a text table) are not hyperparameters: a model names them in
`array_params` and takes them beside these.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distillrec.devices import DEVICE_PATTERN

__all__ = [
    "problems",
    "Params",
    "TrainParams",
    "MostPopParams",
    "ItemKNNParams",
    "EASEParams",
    "IALSParams",
    "BPRParams",
    "SASRecParams",
    "TextSimilarityParams",
    "BASELINE_PARAMS",
]


def problems(exc: ValidationError, model: type[BaseModel]) -> str:
    """A model's validation errors in one line, each naming its key (an unknown one with the valid keys)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: "
        + (
            f"unknown key; valid: {sorted(model.model_fields)}"
            if e["type"] == "extra_forbidden"
            else e["msg"]
        )
        for e in exc.errors()
    )


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, arbitrary_types_allowed=True)


class TrainParams(Params):
    max_len: int = Field(200, ge=1)  # window and history length
    max_epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(10, ge=1)  # evaluations without improvement before stopping
    seed: int = 0
    num_threads: int | None = Field(None, ge=1)
    # where it trains (`train/distributed.py`); scoring runs where the weights are, a loaded model on the CPU
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    # 0: full-softmax cross-entropy; N > 0: sampled softmax against N popularity-drawn negatives per batch,
    # logQ-corrected (`layers/sampled_softmax.py`), for catalogues where the full softmax costs too much
    negatives: int = Field(0, ge=0)
    progress: bool = True
    eval_every: int = Field(1, ge=1)


class MostPopParams(Params):
    pass


class ItemKNNParams(Params):
    k_neighbours: int = Field(100, ge=1)
    shrink: float = Field(0.0, ge=0)


class EASEParams(Params):
    l2: float = Field(500.0, gt=0)


class IALSParams(Params):
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.01, ge=0)
    alpha: float = Field(1.0, ge=0)  # confidence c = 1 + alpha r (see models/ials.py)
    iterations: int = Field(15, ge=1)
    seed: int = 0


class BPRParams(Params):
    factors: int = Field(64, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)  # epochs
    seed: int = 0


class SASRecParams(TrainParams):
    dim: int = Field(64, ge=1)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    bf16: bool = False  # bfloat16 autocast in training (float32 on CPUs without it)
    checkpoint_dir: str | Path | None = None  # checkpoint every epoch there; the same call again resumes
    length_buckets: bool = False  # batch sequences of similar length (less padding)


class TextSimilarityParams(Params):
    max_history: int = Field(20, ge=1)  # the last items of a history that make the query
    decay: float = Field(0.9, gt=0, le=1)  # weight decay per step back in the history
    centre: bool = False  # subtract the table's mean vector before the cosine (`models/text_similarity.py`)


BASELINE_PARAMS: dict[str, type[Params]] = {
    "mostpop": MostPopParams,
    "itemknn": ItemKNNParams,
    "ease": EASEParams,
    "ials": IALSParams,
    "bpr": BPRParams,
    "sasrec": SASRecParams,
}
