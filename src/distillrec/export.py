"""Export a saved sequence model to ONNX: its user tower as an ONNX graph, its item table as an array.

Input: a model folder of a model that reads histories through a torch module: the SASRec baseline, the
teacher, and the `sasrec` and `two_tower` students. Output: a model folder of an `OnnxRecommender`
(`models/onnx_model.py`) with the same ids and known histories, which `distillrec.load` serves through
onnxruntime. The user tower takes (batch, length) int64 ids of any length up to the model's `max_len`; the
graph is traced with the torch exporter (opset 17) and checked against the torch model on random histories
before it is written.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distillrec.artifact import save_model
from distillrec.models.onnx_model import OnnxRecommender
from distillrec.models.sasrec import SASRec
from distillrec.recommend import load
from distillrec.students.base import Student

__all__ = ["export_onnx", "EXPORTABLE"]

EXPORTABLE = ("SASRec", "LLMEnhancedSASRec", "SASRecStudent", "TwoTower")
OPSET = 17


class _UserTower(nn.Module):
    """ids (batch, length) -> the state after the last item (batch, dim), as the model's `score` reads it."""

    def __init__(self, module: nn.Module, student: bool) -> None:
        super().__init__()
        self.module, self.student = module, student

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.student:  # the students' forward takes user indices, which these towers do not read
            return self.module(ids, torch.zeros(ids.shape[0], dtype=torch.int64))[:, -1]
        return self.module(ids)[:, -1]


def export_onnx(model_dir: str | Path, out: str | Path, atol: float = 1e-4) -> Path:
    """Write the ONNX model folder of the model in `model_dir` to `out`; return `out`."""
    saved = load(model_dir)
    model = saved.model
    name = type(model).__name__
    if name not in EXPORTABLE:
        raise ValueError(
            f"{model_dir}: a {name} does not export to ONNX; exportable: {list(EXPORTABLE)} (the others are "
            "served from their model folder as they are)"
        )
    assert isinstance(model, SASRec | Student)
    tower = _UserTower(model.module_, isinstance(model, Student)).eval()
    example = torch.randint(1, model.module_.item_table().shape[0] + 1, (2, min(8, model.max_len)))
    buffer = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it fixes in the graph
        torch.onnx.export(
            tower,
            (example,),
            buffer,
            input_names=["ids"],
            output_names=["user"],
            dynamic_axes={"ids": {0: "batch", 1: "length"}, "user": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    with torch.inference_mode():
        table = model.module_.item_table().float().numpy().copy()  # (n_items, dim)
    exported = OnnxRecommender(max_len=model.max_len, source_params=model.n_params(), source_class=name)
    exported.restore(
        {"user_tower": np.frombuffer(buffer.getvalue(), dtype=np.uint8), "item_table": table}, None
    )
    _check(tower, exported, model.max_len, table.shape[0], atol)
    info = {**saved.info, "exported_from": str(model_dir), "format": "onnx", "opset": OPSET}
    return save_model(exported, out, saved.catalog, saved.trained_shape, info)


def _check(tower: nn.Module, exported: OnnxRecommender, max_len: int, n_items: int, atol: float) -> None:
    """The graph's user vectors equal the torch tower's on random left-padded histories of several lengths."""
    rng = np.random.default_rng(0)
    for length in sorted({1, min(7, max_len), max_len}):
        ids = rng.integers(1, n_items + 1, size=(3, length))
        ids[0, : length // 2] = 0  # a shorter history, left-padded
        (got,) = exported._session.run(None, {"ids": ids})
        with torch.inference_mode():
            expected = tower(torch.from_numpy(ids)).float().numpy()
        if not np.allclose(got, expected, atol=atol, rtol=1e-4):
            raise RuntimeError(
                f"the ONNX user tower differs from the torch one by {np.abs(got - expected).max():.3g} "
                f"at length {length}; not written"
            )
