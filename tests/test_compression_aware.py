"""Compression-aware fine-tuning: the forward pass reads each weight exactly as its codec stores it, gradients
pass straight through (or stop at pruned entries and fixed codes), and a model fine-tuned this way, compressed
again, scores exactly as it did in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_compress import split_and_catalog
from torch import nn

import distillrec
from distillrec.artifact import save_model
from distillrec.codecs import decode, encode, unique_pieces
from distillrec.compress import compress_model
from distillrec.compression_aware import fake_quantise, fold, make_aware, supports
from distillrec.students.base import CrossEntropy
from distillrec.students.registry import make_student

AWARE_STEPS = [
    ["int8"],
    ["int4"],
    ["prune"],
    ["prune", "int8"],
    ["prune", "int4"],
    ["pq"],
    ["pq", "int8"],
    ["pq", "int4"],
]


def decoded_module(steps: list[str], seed: int = 0) -> nn.Sequential:
    """An item table (1,100 rows, enough for pq) and a linear layer, holding their decoded compressed weights."""
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Embedding(1100, 16), nn.Linear(16, 64))
    with torch.no_grad():
        for weight in (module[0].weight, module[1].weight):
            weight.copy_(torch.from_numpy(decode(*encode(weight.numpy(), steps))))
    return module


def roundtrip(weight: torch.Tensor, steps: list[str]) -> np.ndarray:
    return decode(*encode(weight.detach().numpy(), steps))


@pytest.mark.parametrize("steps", AWARE_STEPS, ids=",".join)
def test_the_forward_pass_reads_what_the_codec_stores_before_and_after_training(steps):
    if "pq" in steps:
        pytest.importorskip("faiss")
    module = decoded_module(steps)
    covered = make_aware(module, steps)
    assert covered == (["0.weight"] if steps == ["pq"] else ["0.weight", "1.weight"])  # 64 rows: no pq alone
    start = module[0].weight.detach().clone()
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(5):
        loss = module(torch.randint(0, 1100, (256,))).pow(2).mean() - module[0].weight.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for weight in (module[0].weight, module[1].weight):
        assert np.array_equal(roundtrip(weight, steps), weight.detach().numpy())  # stored exactly as seen
    trained = module[0].weight.detach().clone()
    assert not torch.equal(trained, start)
    if "prune" in steps:  # exactly the pruned entries are zero: pruning again picks them
        assert torch.equal(trained == 0, ~module[0].parametrizations.weight[0].mask)
    fold(module)
    assert not any(isinstance(m, nn.ModuleDict) for m in module[0].modules())  # no parametrization left
    assert torch.equal(module[0].weight, trained) and module[0].weight.requires_grad


def test_fake_quantisation_passes_the_gradient_straight_through_and_rounds_half_to_even():
    x = torch.tensor([[7.0, 2.5, 3.5, -0.5]], requires_grad=True)
    out = fake_quantise(x, bits=4)  # scale 7 / 7 = 1: codes 7, 2 (half to even), 4, 0
    assert torch.equal(out.detach(), torch.tensor([[7.0, 2.0, 4.0, 0.0]]))
    (out * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    # kept entries of a pruned matrix never round to zero; an all-zero row stays zero
    assert torch.equal(fake_quantise(x.detach(), 4, nonzero=True), torch.tensor([[7.0, 2.0, 4.0, -1.0]]))
    assert torch.equal(fake_quantise(torch.zeros(2, 3), 4, nonzero=True), torch.zeros(2, 3))
    assert np.array_equal(
        decode(*encode(np.array([[7.0, 2.5, 3.5, -0.5]], np.float32), ["int4"])), [[7, 2, 4, 0]]
    )


def test_pruned_entries_get_no_gradient_and_pq_trains_codebooks_not_codes():
    module = decoded_module(["prune"])
    make_aware(module, ["prune"])
    module[0].weight.sum().backward()
    original = module[0].parametrizations.weight.original
    assert torch.equal(original.grad == 0, module[0].parametrizations.weight[0].mask == 0)
    pytest.importorskip("faiss")
    module = decoded_module(["pq"])
    make_aware(module, ["pq"])
    codebooks = module[0].parametrizations.weight.original
    assert codebooks.shape == (4, 256, 4)  # 16 wide, 4 pieces of 4
    before = module[0].weight.detach().clone()
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)
    (module[0].weight * torch.randn(1100, 16)).sum().backward()
    optimiser.step()
    after = module[0].weight.detach()
    assert not torch.equal(after, before)
    # rows that shared a piece before share it after: the codes did not move, the codebook rows did
    codes_before, codes_after = unique_pieces(before.numpy(), 4)[1], unique_pieces(after.numpy(), 4)[1]
    for j in range(4):  # the same partition of the rows, piece by piece (codebook order may differ)
        pairs = set(zip(codes_before[:, j].tolist(), codes_after[:, j].tolist(), strict=True))
        assert len(pairs) == len(set(codes_before[:, j].tolist())) == len(set(codes_after[:, j].tolist()))


def test_a_table_of_at_most_256_values_a_piece_is_stored_exactly_by_pq():
    rng = np.random.default_rng(5)
    codebooks = rng.normal(size=(4, 256, 8)).astype(np.float32)
    codes = rng.integers(256, size=(2000, 4))
    table = codebooks[np.arange(4)[None, :], codes].reshape(2000, 32)
    found, found_codes = unique_pieces(table, 4)
    assert found_codes is not None
    assert np.array_equal(found[np.arange(4)[None, :], found_codes].reshape(2000, 32), table)
    assert np.array_equal(decode(*encode(table, ["pq"])), table)  # no k-means: exact
    assert unique_pieces(rng.normal(size=(2000, 32)).astype(np.float32), 4) == (None, None)


def test_small_rows_quantise_twice_to_the_same_values():
    """Rows whose scale is below float16's normal range keep float32 scales, in the codec and in training."""
    rows = torch.from_numpy(np.random.default_rng(6).normal(scale=3e-4, size=(2000, 16)).astype(np.float32))
    for bits, step in ((8, "int8"), (4, "int4")):
        seen = fake_quantise(rows, bits).numpy()
        assert np.array_equal(decode(*encode(seen, [step])), seen)
        assert np.array_equal(decode(*encode(rows.numpy(), [step])), seen)


def test_a_mask_is_not_compressed_or_made_aware():
    module = nn.Module()
    module.register_buffer("id_mask", (torch.rand(2000, 1) > 0.5).float())
    assert make_aware(module, ["prune"]) == []


def test_lowrank_and_channels_are_not_covered():
    assert supports(["int4"]) and supports(["prune", "int8"]) and supports(["pq"])
    assert not supports(["lowrank"]) and not supports(["lowrank", "int8"])
    assert not supports(["channels", "int8"])
    with pytest.raises(ValueError, match="compression-aware fine-tuning covers"):
        make_aware(nn.Linear(64, 64), ["lowrank", "int8"])


@pytest.mark.parametrize("steps", [["int4"], ["prune", "int8"], ["pq", "int8"]], ids=",".join)
def test_a_student_fine_tuned_aware_then_compressed_scores_exactly_as_it_trained(tmp_path, steps):
    if "pq" in steps:
        pytest.importorskip("faiss")
    split, catalog = split_and_catalog(np.random.default_rng(4).integers(1100, size=(60, 10)), 1100)
    student = make_student("sasrec", dim=16, max_len=10, max_epochs=1, progress=False).fit(split.train)
    float_folder = save_model(student, tmp_path / "float", catalog, split.train)
    compressed = compress_model(float_folder, tmp_path / "compressed", steps).folder
    model = distillrec.load(compressed).model
    make_aware(model.module_, steps)
    model.max_epochs = 2
    model.fit(split.train, split.valid, objective=CrossEntropy(), warm_start=True)
    users = np.arange(60)
    trained_scores = model.score(users, split.test_history())  # as the forward pass saw the weights
    fold(model.module_)
    np.testing.assert_array_equal(model.score(users, split.test_history()), trained_scores)
    tuned = save_model(model, tmp_path / "tuned", catalog, split.train)
    again = compress_model(tuned, tmp_path / "again", steps)
    assert again.ratio > 1.5
    reloaded = distillrec.load(again.folder).model.score(users, split.test_history())
    np.testing.assert_array_equal(reloaded, trained_scores)
