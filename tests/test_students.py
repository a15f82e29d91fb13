"""Every registered student (students.registry.STUDENTS) passes one behavioural suite: it recovers a
deterministic next-item rule, scores the right shape independently of how users are batched, and has the
hand-counted number of parameters. Then the windows, the registry and the two-tower's cold items.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.evaluate.ranking import evaluate
from distillrec.layers.sasrec import training_windows
from distillrec.students.base import make_windows
from distillrec.students.registry import STUDENTS, make_student
from distillrec.students.two_tower import TwoTower
from distillrec.train.loop import bf16_autocast, cpu_bf16_supported

N_ITEMS, N_USERS, DIM = 30, 150, 32
TEXT = np.random.default_rng(1).normal(size=(N_ITEMS, 16)).astype(np.float32)
COMMON = dict(
    dim=DIM, max_len=16, max_epochs=30, patience=3, lr=1e-2, batch_size=64, dropout=0.0, progress=False
)
EXTRA = {"two_tower": dict(text_embeddings=TEXT, text_dim=8, hidden=64), "mf": dict(lr=3e-2)}

# Hand-counted parameters at the settings above (n_items 30, n_users 150, dim 32, max_len 16).
EXPECTED_PARAMS = {
    # items (30 + 1) * 32, positions 16 * 32, one block: 2 LayerNorms 4 * 32, qkv 32 * 96 + 96, out 32 * 32 + 32,
    # ffn 2 * (32 * 32 + 32); final LayerNorm 2 * 32
    "sasrec": 31 * 32 + 16 * 32 + (4 * 32 + 32 * 96 + 96 + 32 * 32 + 32 + 2 * (32 * 32 + 32)) + 2 * 32,
    # items (30 + 1) * 32, one GRU layer: 3 gates x (W_ih 32 * 32 + W_hh 32 * 32 + 2 biases of 32)
    "gru4rec": 31 * 32 + 3 * (2 * 32 * 32 + 2 * 32),
    # users 150 * 32 + items 30 * 32
    "mf": (N_USERS + N_ITEMS) * 32,
    # ids (30 + 1) * 32, text projection 8 * 32 + 32, MLP 64 * 64 + 64 and 64 * 32 + 32, compressed text 30 * 8
    "two_tower": 31 * 32 + (8 * 32 + 32) + (64 * 64 + 64 + 64 * 32 + 32) + N_ITEMS * 8,
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models train faster on one thread (and leave the second core to the rest of the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def successor_data(
    n_items: int = N_ITEMS, n_users: int = N_USERS, length: int = 12, seed: int = 0
) -> Interactions:
    """Each user walks i, i + 1, i + 2, ... (mod n_items) from a random start."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(n_items, size=n_users)
    items = (starts[:, None] + np.arange(length)[None, :]) % n_items
    users = np.repeat(np.arange(n_users), length)
    return Interactions.from_arrays(
        users, items.ravel(), np.tile(np.arange(length), n_users), n_users, n_items
    )


@pytest.fixture(scope="module")
def split():
    return leave_one_out(successor_data())


@pytest.fixture(scope="module")
def fitted(split):
    return {
        name: make_student(name, **{**COMMON, **EXTRA.get(name, {})}).fit(split.train, split.valid)
        for name in STUDENTS
    }


def test_every_student_has_expected_params_listed():
    assert set(EXPECTED_PARAMS) == set(STUDENTS)


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_learns_the_next_item_rule(name, fitted, split):
    model = fitted[name]
    valid = evaluate(model, split.train, split.valid, ks=(1, 2)).summary
    if STUDENTS[name].sequential:
        test = evaluate(model, split.test_history(), split.test, ks=(1,)).summary
        assert valid["HR@1"] >= 0.95 and test["HR@1"] >= 0.95  # measured: 1.0 for every sequential student
    else:
        # A non-sequential model sees each user's contiguous range of items; the next item is one of the range's
        # two outer neighbours (measured: HR@2 1.0, HR@1 0.94).
        assert valid["HR@2"] >= 0.95


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_scores_have_the_right_shape_and_ignore_batching(name, fitted, split):
    model = fitted[name]
    history = split.test_history()
    users = np.array([0, 5, 17, 42])
    together = model.score(users, history)
    assert together.shape == (4, N_ITEMS) and together.dtype == np.float32 and np.isfinite(together).all()
    # one at a time: no padding from other users' longer histories
    alone = np.concatenate([model.score(np.array([u]), history) for u in users])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
    empty = Interactions.from_arrays([], [], [], N_USERS, N_ITEMS)
    assert np.isfinite(model.score(users, empty)).all()  # no history at all: still a score per item


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bfloat16")
@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_scoring_under_bf16_autocast_keeps_a_float32_head(name, fitted, split):
    """Under bf16 autocast the network runs in bfloat16 but the scores are the float32 product of its
    state and the float32 item table (bfloat16 scores would tie and reorder the catalogue)."""
    model = fitted[name]
    history, users = split.test_history(), np.arange(40)
    with bf16_autocast():
        scores = model.score(users, history)
        state = model.encode(users, history)  # float32 copy of the bfloat16 state
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, state @ model.item_embeddings().T, rtol=1e-5, atol=1e-5)
    fp32 = model.score(users, history)
    assert (scores.argmax(axis=1) == fp32.argmax(axis=1)).mean() >= 0.9


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_parameter_count_by_hand(name, fitted):
    assert fitted[name].n_params() == EXPECTED_PARAMS[name]
    assert fitted[name].item_embeddings().shape == (N_ITEMS, DIM)


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_interrupted_fit_resumes_to_the_uninterrupted_weights(name, split, tmp_path):
    params = {**COMMON, **EXTRA.get(name, {}), "max_epochs": 4, "patience": 10}
    full = make_student(name, **params).fit(split.train, split.valid)
    make_student(name, **{**params, "max_epochs": 2}).fit(split.train, split.valid, checkpoint_dir=tmp_path)
    resumed = make_student(name, **params).fit(split.train, split.valid, checkpoint_dir=tmp_path)
    assert resumed.fit_result_.resumed_from == 2
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    for key, value in full.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key


def test_resuming_with_other_hyperparameters_is_refused(split, tmp_path):
    params = {**COMMON, "max_epochs": 1}
    make_student("gru4rec", **params).fit(split.train, split.valid, checkpoint_dir=tmp_path)
    with pytest.raises(
        ValueError, match=r"cannot resume from .*last.pt: model/data description differs in \['params'\]"
    ):
        make_student("gru4rec", **{**params, "dim": 16}).fit(
            split.train, split.valid, checkpoint_dir=tmp_path
        )


def test_windows_equal_sasrec_training_windows_and_carry_train_rows():
    data = successor_data(n_items=9, n_users=5, length=7, seed=3)
    for max_len in (3, 6, 10):
        windows = make_windows(data, max_len)
        inputs, targets = training_windows(data, max_len)
        np.testing.assert_array_equal(windows.inputs, inputs)
        np.testing.assert_array_equal(windows.targets, targets)
        real = windows.rows >= 0
        np.testing.assert_array_equal(
            data.items[windows.rows[real]] + 1, windows.inputs[real]
        )  # row r = input item
        np.testing.assert_array_equal(
            data.items[windows.rows[real] + 1], windows.targets[real]
        )  # r + 1 = target


def test_last_position_windows_by_hand():
    inter = Interactions.from_arrays([0] * 5 + [1] * 2 + [2], [3, 1, 4, 1, 5, 0, 2, 6], np.arange(8), 3, 7)
    windows = make_windows(inter, max_len=3, last_position=True)
    # user 0: last 3 items 4 1 5 (rows 2 3 4), the last a KD-only position; user 1: 0 2 (rows 5 6); user 2 skipped
    np.testing.assert_array_equal(windows.inputs, [[5, 2, 6], [0, 1, 3]])
    np.testing.assert_array_equal(windows.targets, [[1, 5, -1], [-1, 2, -1]])
    np.testing.assert_array_equal(windows.rows, [[2, 3, 4], [-1, 5, 6]])
    np.testing.assert_array_equal(windows.users, [0, 1])


def test_unknown_student_or_hyperparameter_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        make_student("bert4rec")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['n_heads'\] for student 'mf'"):
        make_student("mf", n_heads=2)


def test_two_tower_scores_an_item_without_interactions_through_its_text():
    """Items come in twins (2k, 2k + 1) with one text vector; users walk the even items 0 -> 2 -> 4 ...; odd items
    never appear in training. The odd twin of the next item must rank high, through its text alone."""
    n_pairs = 12
    rng = np.random.default_rng(0)
    base = rng.normal(size=(n_pairs, 24)).astype(np.float32)
    text = np.repeat(base, 2, axis=0)  # (24, 24): rows 2k and 2k + 1 identical
    starts = rng.integers(n_pairs, size=60)
    items = 2 * ((starts[:, None] + np.arange(8)[None, :]) % n_pairs)
    train = Interactions.from_arrays(
        np.repeat(np.arange(60), 8), items.ravel(), np.tile(np.arange(8), 60), 60, 2 * n_pairs
    )
    model = TwoTower(text, **{**COMMON, "max_epochs": 40, "patience": 40}, text_dim=12, hidden=64).fit(train)
    users = np.arange(60)
    scores = model.score(users, train)
    nxt = (items[:, -1] + 2) % (2 * n_pairs)
    twin = scores[users, nxt + 1][:, None]
    # among the items nobody interacted with, the twin of the next item comes first (measured: 60/60 users) ...
    assert np.mean((scores[:, 1::2] > twin).sum(axis=1) == 0) >= 0.9
    # ... and overall it ranks among the top 5, behind the next item and a few items with ID vectors (60/60)
    assert np.mean((scores > twin).sum(axis=1) <= 4) >= 0.9
    # the twin's vector is its text part alone (no ID vector for an item without interactions)
    table = model.module_.item_vectors()[1:].detach()
    text_part = model.module_.text_projection(model.module_.text[1:]).detach()
    torch.testing.assert_close(table[1::2], text_part[1::2])


def test_sasrec_student_with_length_buckets_learns_on_varied_lengths():
    data = successor_data(length=14)
    keep = np.concatenate(
        [
            np.arange(u * 14, u * 14 + n)
            for u, n in enumerate(np.random.default_rng(2).integers(4, 15, N_USERS))
        ]
    )
    split = leave_one_out(
        Interactions.from_arrays(data.users[keep], data.items[keep], data.timestamps[keep], N_USERS, N_ITEMS)
    )
    params = {**COMMON, "batch_size": 16}
    bucketed = make_student("sasrec", **params, length_buckets=True).fit(split.train, split.valid)
    assert evaluate(bucketed, split.test_history(), split.test, ks=(1,)).summary["HR@1"] >= 0.95
    plain = make_student("sasrec", **{**params, "max_epochs": 1}).fit(split.train, split.valid)
    assert plain.history_[0]["loss"] != bucketed.history_[0]["loss"]  # the option changes the batches


def test_sasrec_student_trains_under_bf16_autocast(split):
    model = make_student("sasrec", **{**COMMON, "max_epochs": 2}, bf16=True).fit(split.train, split.valid)
    assert model.fit_result_.bf16 == cpu_bf16_supported()  # falls back to float32 where the CPU lacks bf16
    assert np.isfinite(model.history_[-1]["loss"])
