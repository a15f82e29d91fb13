"""The one interface every model (baseline, teacher, student) offers to evaluation and serving.

`fit(train, valid)` learns from training interactions (`valid` only for early stopping) and returns self.
`score(users, history)` returns a `(len(users), n_items)` float32 matrix of scores for the given user indices,
reading each user's history (time-ordered items, from `history.sequence(u)` or rows of
`history.user_items`). Evaluation masks the history items itself, so `score` need not.

Test-time protocol: every model sees train + validation as the user's history. Models that keep one learned
vector per user (iALS, BPR-MF) cannot read a new history, so they set `refit_for_test = True` and are fit
again on train + validation with their tuned hyperparameters before the test; the others read the longer
history directly (a sequence model as its input sequence, EASE / ItemKNN as the user's row).

Saving (`distillrec.artifact`): a fitted model is its constructor arguments (`get_params`, plus the arrays named
in `array_params`) and `fitted_state()`, named arrays; `restore(state, shape)` on a model built from the same
arguments makes it score as the fitted one did, without training. `shape` is an `Interactions` with the
training data's sizes and one row per item that had training rows (`artifact.trained_shape`): what a model's
build step reads of its training data. `reads_history = False` marks models that score a user by a learned
per-user vector (iALS, BPR, MF), which cannot read a history they were not trained on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pydantic

from distillrec.data.interactions import Interactions
from distillrec.models.params import problems


class Recommender(ABC):
    # typed hyperparameters (`models/params.py`, `students/params.py`, `teachers/llm_enhanced_seq.py`)
    params_model: ClassVar[type[pydantic.BaseModel]]
    refit_for_test: ClassVar[bool] = False
    reads_history: ClassVar[bool] = True
    array_params: ClassVar[tuple[str, ...]] = ()  # constructor arguments that are arrays (saved as files)
    saved_as: ClassVar[str] = "npy"  # how `fitted_state` is written: "npy" files, or "safetensors" (torch)

    def __init__(self, *arrays: Any, **params: Any) -> None:
        """Hyperparameters as `params_model` types them, stored as attributes (defaults filled in; an unknown
        key, a wrong type or a value out of range is a `ValueError` naming it); the arrays named in
        `array_params` (e.g. a text table), given in that order or by name, are taken as they are."""
        if len(arrays) > len(self.array_params):
            raise TypeError(
                f"{type(self).__name__} takes {len(self.array_params)} array(s) {self.array_params}"
            )
        given = dict(zip(self.array_params, arrays, strict=False))
        arrays = {name: given.get(name, params.pop(name, None)) for name in self.array_params}
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
        try:
            values = self.params_model(**plain)
        except pydantic.ValidationError as exc:
            raise ValueError(f"{type(self).__name__}: {problems(exc, self.params_model)}") from None
        for name, value in arrays.items():
            setattr(self, name, value)
        for name in type(values).model_fields:
            setattr(self, name, getattr(values, name))

    @abstractmethod
    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self: ...

    @abstractmethod
    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray: ...

    @abstractmethod
    def n_params(self) -> int:
        """Number of learned parameters (what must be stored to serve the model)."""

    def get_params(self) -> dict:
        """Constructor arguments (scikit-learn style): every public attribute not ending in `_`."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    def fitted_state(self) -> dict[str, np.ndarray]:
        """What scoring needs beyond the constructor arguments, as named arrays. Default: every public numpy
        array attribute ending in `_` (a subclass with other state overrides this and `restore`)."""
        return {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)
        }

    def restore(self, state: dict[str, np.ndarray], shape: Interactions) -> Self:
        """The inverse of `fitted_state` (see the module docstring); returns self."""
        for name, value in state.items():
            setattr(self, name, value)
        return self
