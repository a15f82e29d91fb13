"""ONNX export: the exported folder loads through `distillrec.load` and ranks as the torch model (top-10 equal
for >= 99% of users); models that do not export are named."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

import distillrec  # noqa: E402
from distillrec.artifact import Catalog, save_model  # noqa: E402
from distillrec.data.interactions import Interactions  # noqa: E402
from distillrec.data.split import leave_one_out  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.export import export_onnx  # noqa: E402
from distillrec.models.registry import make_model  # noqa: E402
from distillrec.students.registry import make_student  # noqa: E402
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec  # noqa: E402

N_USERS, N_ITEMS = 60, 40
TEXT = np.random.default_rng(3).normal(size=(N_ITEMS, 16)).astype(np.float32)
COMMON = dict(max_len=10, max_epochs=2, batch_size=32, progress=False)
MODELS = {
    "student": lambda: make_student("sasrec", dim=16, **COMMON),
    "two_tower": lambda: make_student("two_tower", text_embeddings=TEXT, dim=16, text_dim=8, **COMMON),
    "teacher": lambda: LLMEnhancedSASRec(TEXT, dim=16, adapter_hidden=16, n_heads=2, n_layers=1, **COMMON),
    "sasrec": lambda: make_model("sasrec", dim=16, n_heads=1, n_layers=1, **COMMON),
}


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    starts = rng.integers(N_ITEMS, size=N_USERS)
    items = (starts[:, None] + np.arange(12)[None, :] * 3) % N_ITEMS
    data = Interactions.from_arrays(
        np.repeat(np.arange(N_USERS), 12), items.ravel(), np.tile(np.arange(12), N_USERS), N_USERS, N_ITEMS
    )
    return leave_one_out(data)


def _catalog(split) -> Catalog:
    users = np.array([f"u{u}" for u in range(N_USERS)])
    return Catalog(users, np.array([f"i{i}" for i in range(N_ITEMS)]), split.test_history())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_exported_model_ranks_as_the_torch_one(split, tmp_path, name):
    model = MODELS[name]().fit(split.train, split.valid)
    source = save_model(model, tmp_path / "torch", _catalog(split), split.train)
    exported = distillrec.load(export_onnx(source, tmp_path / "onnx"))
    assert type(exported.model).__name__ == "OnnxRecommender"
    history = split.test_history()
    torch_eval = evaluate(model, history, split.test, ks=(10,))
    onnx_eval = evaluate(exported.model, history, split.test, ks=(10,))
    same = (torch_eval.top_items[:, :10] == onnx_eval.top_items[:, :10]).all(axis=1).mean()
    assert same >= 0.99
    assert onnx_eval.summary["NDCG@10"] == pytest.approx(torch_eval.summary["NDCG@10"], abs=1e-3)
    empty = np.zeros((1, 1), dtype=np.int64)  # an all-padding history scores as in torch
    np.testing.assert_allclose(
        exported.model._session.run(None, {"ids": empty})[0], _tower_of(model, empty), atol=1e-5
    )
    users = [f"u{u}" for u in range(10)]
    onnx_top = exported.recommend_batch(users=users, k=5)
    torch_top = distillrec.load(source).recommend_batch(users=users, k=5)
    assert [[i for i, _ in r] for r in onnx_top] == [[i for i, _ in r] for r in torch_top]
    onnx_scores, torch_scores = ([[s for _, s in r] for r in top] for top in (onnx_top, torch_top))
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-5)


def test_a_model_that_does_not_export_is_named(split, tmp_path):
    from distillrec.cli import app

    ease = make_model("ease", l2=10.0).fit(split.train)
    source = save_model(ease, tmp_path / "ease", _catalog(split), split.train)
    result = CliRunner().invoke(app, ["export", str(source), "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 2 and "a EASE does not export to ONNX" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def _tower_of(model, ids: np.ndarray) -> np.ndarray:
    import torch

    from distillrec.students.base import Student

    with torch.inference_mode():
        ids_t = torch.from_numpy(ids)
        if isinstance(model, Student):
            return model.module_(ids_t, torch.zeros(len(ids), dtype=torch.int64))[:, -1].numpy()
        return model.module_(ids_t)[:, -1].numpy()
