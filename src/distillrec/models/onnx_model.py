"""`OnnxRecommender`: a sequence model exported to ONNX, scored with onnxruntime (no torch at serving time).

The export (`distillrec/export.py`) splits a model in two, the common request of two-tower serving:
the *user tower*, an ONNX graph from a user's left-padded history ids (batch, length; 1-based, 0 = padding) to
the user vector (batch, dim), and the *item table* (n_items, dim); a user's scores are `user @ item_table.T`,
as the torch model's `logits`. Both are this model's fitted state (the graph as its bytes), so an exported
folder is an ordinary model folder: `distillrec.load` reads it, checks it, and `recommend` serves it.
Needs the `onnx` extra (`pip install -e '.[onnx]'`: onnxruntime).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from pydantic import Field

from distillrec.data.interactions import Interactions
from distillrec.models.base import Recommender
from distillrec.models.params import Params

__all__ = ["OnnxRecommender", "OnnxParams"]


class OnnxParams(Params):
    max_len: int = Field(ge=1)  # the longest history the user tower reads
    source_params: int = Field(0, ge=0)  # learned parameters of the exported model (what n_params reports)
    source_class: str = ""  # the class it was exported from


class OnnxRecommender(Recommender):
    params_model = OnnxParams

    def fit(self, train: Interactions, valid: Interactions | None = None) -> Self:
        raise TypeError(
            "an OnnxRecommender is exported from a trained model (`distillrec export`), not trained"
        )

    def fitted_state(self) -> dict[str, np.ndarray]:
        return {"user_tower": self.user_tower_, "item_table": self.item_table_}

    def restore(self, state: dict[str, np.ndarray], shape: Interactions) -> Self:
        try:
            import onnxruntime
        except ImportError as exc:
            raise ImportError("scoring an ONNX model needs onnxruntime: pip install -e '.[onnx]'") from exc
        self.user_tower_ = np.asarray(state["user_tower"], dtype=np.uint8)
        self.item_table_ = np.asarray(state["item_table"], dtype=np.float32)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            self.user_tower_.tobytes(), options, providers=["CPUExecutionProvider"]
        )
        return self

    def encode(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), dim) float32: the user tower on each user's last `max_len` history items."""
        ids = history.left_padded(users, self.max_len)  # (batch, width)
        (user,) = self._session.run(None, {"ids": ids})
        return user  # (batch, dim)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self.encode(users, history) @ self.item_table_.T  # (batch, n_items)

    def item_embeddings(self) -> np.ndarray:
        """(n_items, dim) float32 item table."""
        return self.item_table_.copy()

    def n_params(self) -> int:
        return self.source_params
