"""SASRec: recovers a next-item rule, is causal, pads correctly, has the hand-computed loss, resumes exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.evaluate.ranking import evaluate
from distillrec.layers.sasrec import (
    ItemEmbedding,
    SASRecModule,
    history_windows,
    next_item_loss,
    training_windows,
)
from distillrec.models.sasrec import SASRec


def _successor_data(n_items: int = 30, n_users: int = 150, length: int = 12, seed: int = 0) -> Interactions:
    """Each user walks i, i + 1, i + 2, ... (mod n_items) from a random start."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(n_items, size=n_users)
    items = (starts[:, None] + np.arange(length)[None, :]) % n_items
    users = np.repeat(np.arange(n_users), length)
    return Interactions.from_arrays(
        users, items.ravel(), np.tile(np.arange(length), n_users), n_users, n_items
    )


def _tiny_module(dropout: float = 0.0) -> SASRecModule:
    torch.manual_seed(0)
    return SASRecModule(n_items=7, dim=8, n_layers=1, n_heads=2, max_len=5, dropout=dropout)


SMALL = dict(dim=32, n_layers=1, n_heads=2, max_len=16, dropout=0.0, batch_size=64, lr=1e-2, progress=False)


def test_learns_the_successor_rule():
    split = leave_one_out(_successor_data())
    model = SASRec(**SMALL, max_epochs=30, patience=3).fit(split.train, split.valid)
    result = evaluate(model, split.test_history(), split.test, ks=(1,))
    assert result.summary["HR@1"] >= 0.98
    assert model.fit_result_.best_score >= 0.98  # validation NDCG@10 inside fit


def test_earlier_positions_ignore_later_items():
    module = _tiny_module(dropout=0.2).eval()
    ids = torch.tensor([[0, 3, 1, 5, 2]])
    changed = ids.clone()
    changed[0, 3] = 7
    with torch.no_grad():
        a, b = module(ids), module(changed)  # (1, 5, dim)
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 3:], b[:, 3:])  # the change is visible from its own position on


def test_extra_left_padding_changes_nothing():
    module = _tiny_module().eval()
    with torch.no_grad():
        short = module(torch.tensor([[3, 1, 5]]))  # (1, 3, dim)
        padded = module(torch.tensor([[0, 0, 3, 1, 5]]))  # (1, 5, dim)
    torch.testing.assert_close(short, padded[:, 2:], rtol=0, atol=1e-5)


def test_loss_of_uniform_logits_is_log_n_items():
    """With an all-zero item table every logit is 0, so CE = ln(n_items); ln(n_items + 1) would mean the
    padding column leaked into the softmax."""
    module = _tiny_module()
    with torch.no_grad():
        module.item_embedding.table().zero_()
    ids = torch.tensor([[0, 3, 1, 5, 2], [0, 0, 0, 7, 4]])
    targets = torch.tensor([[-1, 0, 4, 1, 6], [-1, -1, -1, 3, 5]])
    assert next_item_loss(module, (ids, targets)).item() == pytest.approx(math.log(7), abs=1e-6)


def test_loss_over_candidates_is_the_softmax_over_them_and_leaves_the_others_untouched():
    """Uniform logits over 4 candidate items of 7: CE = ln 4. With a zero table no gradient reaches the inputs,
    so a row's gradient is its output-layer one: non-zero for the candidates, zero for the others."""
    module = _tiny_module()
    with torch.no_grad():
        module.item_embedding.embedding.weight.zero_()
    module.item_embedding.embedding.weight.requires_grad_(True)
    ids = torch.tensor([[0, 3, 1, 5, 2], [0, 0, 0, 7, 4]])
    targets = torch.tensor([[-1, 0, 4, 1, 6], [-1, -1, -1, 0, 6]])
    candidates = torch.tensor([True, True, False, False, True, False, True])  # the targets' items 0, 1, 4, 6
    loss = next_item_loss(module, (ids, targets), candidates=candidates)
    assert loss.item() == pytest.approx(math.log(4), abs=1e-6)
    loss.backward()
    grad = module.item_embedding.embedding.weight.grad.abs().sum(dim=1)  # (n_items + 1,); row i + 1 is item i
    assert torch.all(grad[[3, 4, 6]] == 0) and torch.all(grad[[1, 2, 5, 7]] > 0)


def test_stored_loss_of_a_fixed_seed_model():
    # Produced once with torch 2.13.0 (CPU) by: torch.manual_seed(0); SASRecModule(n_items=7, dim=8,
    # n_layers=1, n_heads=2, max_len=5, dropout=0.0); next_item_loss on the batch below; printed .item().
    module = _tiny_module()
    ids = torch.tensor([[0, 3, 1, 5, 2], [0, 0, 0, 7, 4]])
    targets = torch.tensor([[-1, 0, 4, 1, 6], [-1, -1, -1, 3, 5]])
    assert next_item_loss(module, (ids, targets)).item() == pytest.approx(2.868867874145508, abs=1e-5)


def test_parameter_count_by_hand():
    # items (7 + 1) * 8 + positions 5 * 8 + block (2 LayerNorms 2 * 16, qkv 8 * 24 + 24, out 8 * 8 + 8,
    # ffn 2 * (8 * 8 + 8)) + final LayerNorm 16
    assert sum(p.numel() for p in _tiny_module().parameters()) == 64 + 40 + (32 + 216 + 72 + 144) + 16


def test_training_windows_by_hand():
    inter = Interactions.from_arrays([0] * 5 + [1] * 2 + [2], [3, 1, 4, 1, 5, 0, 2, 6], np.arange(8), 3, 7)
    inputs, targets = training_windows(inter, max_len=3)
    # user 0: last 4 items 1 4 1 5; user 1: 0 2; user 2 has one item and is skipped
    np.testing.assert_array_equal(inputs, [[2, 5, 2], [0, 0, 1]])
    np.testing.assert_array_equal(targets, [[4, 1, 5], [-1, -1, 2]])


def test_score_reads_the_last_max_len_history_items_and_matches_encode():
    data = _successor_data(n_items=20, n_users=10, length=30)
    model = SASRec(**{**SMALL, "max_len": 8}, max_epochs=1).fit(data)
    users = np.array([0, 3, 7])
    ids = history_windows(users, data, max_len=8)
    np.testing.assert_array_equal(ids[0].numpy(), data.sequence(0)[-8:] + 1)
    scores = model.score(users, data)
    assert scores.shape == (3, 20) and scores.dtype == np.float32
    np.testing.assert_allclose(
        scores, model.encode(users, data) @ model.item_embeddings().T, rtol=1e-5, atol=1e-5
    )
    assert model.n_params() == (20 + 1) * 32 + 8 * 32 + (4 * 32 + 32 * 96 + 96 + 3 * (32 * 32 + 32)) + 2 * 32


def test_resumed_fit_equals_uninterrupted_fit(tmp_path):
    split = leave_one_out(_successor_data(n_users=60))
    params = {**SMALL, "dropout": 0.3}
    full = SASRec(**params, max_epochs=4, checkpoint_dir=tmp_path / "a").fit(split.train, split.valid)
    SASRec(**params, max_epochs=2, checkpoint_dir=tmp_path / "b").fit(split.train, split.valid)
    resumed = SASRec(**params, max_epochs=4, checkpoint_dir=tmp_path / "b").fit(split.train, split.valid)
    assert resumed.fit_result_.resumed_from == 2
    for name, value in full.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], value, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"model/data description differs in \['dim'\]"):
        SASRec(**{**params, "dim": 16}, max_epochs=4, checkpoint_dir=tmp_path / "b").fit(
            split.train, split.valid
        )


def test_length_buckets_train_as_well_and_resume_exactly(tmp_path):
    rng = np.random.default_rng(1)
    data = _successor_data(n_users=120, length=14)
    # varied lengths
    keep = np.concatenate([np.arange(u * 14, u * 14 + rng.integers(4, 15)) for u in range(120)])
    data = Interactions.from_arrays(data.users[keep], data.items[keep], data.timestamps[keep], 120, 30)
    split = leave_one_out(data)
    params = {**SMALL, "length_buckets": True, "batch_size": 16}
    model = SASRec(**params, max_epochs=30, patience=3).fit(split.train, split.valid)
    assert evaluate(model, split.test_history(), split.test, ks=(1,)).summary["HR@1"] >= 0.95
    full = SASRec(**params, max_epochs=3, checkpoint_dir=tmp_path / "a").fit(split.train, split.valid)
    SASRec(**params, max_epochs=1, checkpoint_dir=tmp_path / "b").fit(split.train, split.valid)
    resumed = SASRec(**params, max_epochs=3, checkpoint_dir=tmp_path / "b").fit(split.train, split.valid)
    for name, value in full.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[name], value, rtol=0, atol=1e-6)


class _ShiftedEmbedding(nn.Module):
    """A replacement table: learned rows plus a fixed (frozen) offset, as a text-aware teacher would use."""

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.learned = ItemEmbedding(n_items, dim)
        self.register_buffer("offset", torch.ones(n_items + 1, dim))

    def forward(self, ids):
        return torch.nn.functional.embedding(ids, self.table())

    def table(self):
        return self.learned.table() + self.offset


def test_item_embedding_can_be_swapped_by_a_subclass():
    class OffsetSASRec(SASRec):
        def _make_item_embedding(self, train):
            return _ShiftedEmbedding(train.n_items, self.dim)

    data = _successor_data(n_items=20, n_users=10)
    model = OffsetSASRec(**SMALL, max_epochs=1).fit(data)
    table = model.module_.item_embedding
    np.testing.assert_array_equal(model.item_embeddings(), (table.learned.table() + 1)[1:].detach().numpy())
    assert torch.equal(table.offset, torch.ones(21, 32))  # buffers are not trained
