"""The teacher's item-table fusions (`teachers/fusion.py`): what each keeps of the text, and what it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_teacher import FAST, N_ITEMS, chain_data, twin_text  # noqa: E402

from distillrec.artifact import Catalog, save_model
from distillrec.config import TeacherConfig
from distillrec.recommend import load
from distillrec.stages.teacher import make_teacher_model
from distillrec.teachers.fusion import NullSpaceItemEmbedding, PCAInitItemEmbedding, text_coordinates
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec


def test_pca_init_starts_at_the_whitened_text_coordinates_and_trains():
    text = twin_text()
    layer = PCAInitItemEmbedding(text, dim=8)
    table = layer.table()
    assert table.shape == (N_ITEMS + 1, 8) and torch.all(table[0] == 0)
    torch.testing.assert_close(table[1:], text_coordinates(text, 8))
    table.sum().backward()
    assert layer.ids.weight.grad is not None


def test_nullspace_keeps_the_text_directions_and_learns_ids_beside_them():
    text = twin_text()
    has_ids = np.arange(N_ITEMS) % 2 == 0
    layer = NullSpaceItemEmbedding(text, dim=8, semantic_dims=3, has_ids=has_ids)
    with torch.no_grad():
        layer.ids.weight.normal_()
        layer.scale.fill_(2.0)
    table = layer.table()
    torch.testing.assert_close(table[1:, :3], 2.0 * text_coordinates(text, 3))  # the text, scaled
    assert torch.all(table[1:, 3:][~torch.from_numpy(has_ids)] == 0)  # no training interaction: no ID part
    assert torch.all(table[0] == 0)
    table.sum().backward()
    assert (
        not layer.semantic.requires_grad
        and layer.ids.weight.grad is not None
        and layer.scale.grad is not None
    )
    trainable = NullSpaceItemEmbedding(text, dim=8, semantic_dims=3, train_text=True)
    assert trainable.semantic.requires_grad
    with pytest.raises(ValueError, match="semantic_dims must be in"):
        NullSpaceItemEmbedding(text, dim=8, semantic_dims=8)


def test_a_nullspace_teacher_trains_keeps_its_text_frozen_and_reloads(tmp_path):
    train = chain_data()
    text = twin_text()
    teacher = LLMEnhancedSASRec(text, fusion="nullspace", semantic_dims=8, **FAST).fit(train)
    semantic = teacher.module_.item_embedding.semantic
    torch.testing.assert_close(semantic[1:], text_coordinates(text, 8))  # frozen through training
    catalog = Catalog(
        np.array([str(u) for u in range(train.n_users)]), np.array([str(i) for i in range(N_ITEMS)]), train
    )
    loaded = load(save_model(teacher, tmp_path / "teacher", catalog, train))
    users = np.arange(5)
    np.testing.assert_allclose(
        loaded.model.score(users, train), teacher.score(users, train), rtol=1e-5, atol=1e-5
    )


def test_the_teacher_config_chooses_the_fusion():
    settings = TeacherConfig(fusion="nullspace", semantic_dims=4, train_text=True, dim=16)
    model = make_teacher_model(twin_text(), settings, out=None, progress=False)
    assert (model.fusion, model.semantic_dims, model.train_text) == ("nullspace", 4, True)
    with pytest.raises(ValueError):
        TeacherConfig(fusion="concat")
