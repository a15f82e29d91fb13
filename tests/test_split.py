"""Property tests for the split protocols (`distillrec.data.split`) on random small interaction sets."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillrec.data.interactions import Interactions
from distillrec.data.split import Split, cold_item, leave_one_out, make_split, random_ratio, temporal

N_USERS, N_ITEMS = 6, 8

# Distinct (user, item, timestamp) rows in a random file order; timestamps from a small range, so ties are common.
rows_strategy = st.lists(
    st.tuples(st.integers(0, N_USERS - 1), st.integers(0, N_ITEMS - 1), st.integers(0, 4)),
    min_size=1,
    max_size=50,
    unique=True,
)

PROTOCOLS = {
    "leave_one_out": lambda inter: leave_one_out(inter, min_length=3),
    "leave_one_out_5": lambda inter: leave_one_out(inter, min_length=5),
    "temporal": lambda inter: temporal(inter, valid_frac=0.2, test_frac=0.2),
    "temporal_no_valid": lambda inter: temporal(inter, valid_frac=0.0, test_frac=0.3),
    "random_ratio": lambda inter: random_ratio(inter, valid_frac=0.2, test_frac=0.3, seed=1),
    "cold_item": lambda inter: cold_item(inter, item_frac=0.4, seed=2),
}


def _build(rows) -> Interactions:
    users, items, timestamps = (np.array(c) for c in zip(*rows, strict=True))
    return Interactions.from_arrays(users, items, timestamps, N_USERS, N_ITEMS)


def _row_set(inter: Interactions) -> Counter:
    return Counter(zip(inter.users.tolist(), inter.items.tolist(), inter.timestamps.tolist(), strict=True))


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy)
def test_parts_are_disjoint_and_cover_the_input(protocol, rows):
    inter = _build(rows)
    split = PROTOCOLS[protocol](inter)
    train, valid, test = (_row_set(part) for part in (split.train, split.valid, split.test))
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert train + valid + test == Counter(rows)
    for part in (split.train, split.valid, split.test):
        assert (part.n_users, part.n_items) == (N_USERS, N_ITEMS)
        assert np.all(np.diff(part.users) >= 0)  # still sorted by user
    assert _row_set(split.test_history()) == train + valid


@pytest.mark.parametrize("min_length", [3, 4])
@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy)
def test_leave_one_out_holds_out_the_last_two(min_length, rows):
    split = leave_one_out(_build(rows), min_length=min_length)
    for user in range(N_USERS):
        # The user's rows in time order; equal timestamps keep the input (file) order.
        mine = sorted((t, position, item) for position, (u, item, t) in enumerate(rows) if u == user)
        if len(mine) < min_length:  # too short: wholly in train, never evaluated
            assert len(split.train.sequence(user)) == len(mine)
            assert len(split.valid.sequence(user)) == len(split.test.sequence(user)) == 0
            continue
        assert split.test.sequence(user).tolist() == [mine[-1][2]]
        assert split.valid.sequence(user).tolist() == [mine[-2][2]]
        assert split.train.sequence(user).tolist() == [item for _, _, item in mine[:-2]]
    evaluated = {u for u, n in Counter(u for u, _, _ in rows).items() if n >= min_length}
    assert set(split.test.active_users().tolist()) == evaluated


@settings(max_examples=80, deadline=None)
@given(
    rows=rows_strategy, valid_frac=st.sampled_from([0.0, 0.1, 0.25]), test_frac=st.sampled_from([0.1, 0.3])
)
def test_temporal_cut_is_global_in_time(rows, valid_frac, test_frac):
    split = temporal(_build(rows), valid_frac=valid_frac, test_frac=test_frac)
    n = len(rows)
    assert len(split.test) == round(n * test_frac) and len(split.valid) == round(n * valid_frac)
    parts = [p.timestamps for p in (split.train, split.valid, split.test) if len(p)]
    for earlier, later in zip(parts, parts[1:], strict=False):
        assert earlier.max() <= later.min()


@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 3))
def test_random_ratio_keeps_a_training_row_per_held_out_user(rows, seed):
    inter = _build(rows)
    split = random_ratio(inter, valid_frac=0.2, test_frac=0.2, seed=seed)
    held_users = set(split.valid.users.tolist()) | set(split.test.users.tolist())
    assert held_users <= set(split.train.users.tolist())
    again = random_ratio(inter, valid_frac=0.2, test_frac=0.2, seed=seed)
    assert _row_set(again.test) == _row_set(split.test)  # seeded: reproducible


@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy, item_frac=st.sampled_from([0.2, 0.5, 0.9]), seed=st.integers(0, 3))
def test_cold_item_holds_items_out_of_training(rows, item_frac, seed):
    split = cold_item(_build(rows), item_frac=item_frac, seed=seed)
    train_items = set(split.train.items.tolist())
    valid_items, test_items = set(split.valid.items.tolist()), set(split.test.items.tolist())
    assert not (valid_items | test_items) & train_items  # no held-out item appears in train
    assert not valid_items & test_items  # split by item, not by interaction
    interacted = {i for _, i, _ in rows}
    assert len(valid_items | test_items) == round(len(interacted) * item_frac)


def test_make_split_lists_valid_protocols():
    inter = _build([(0, 0, 0), (0, 1, 1), (0, 2, 2)])
    assert isinstance(make_split(inter, "leave_one_out"), Split)
    with pytest.raises(ValueError, match=r"unknown split 'loo'; choose one of \['leave_one_out', 'temporal'"):
        make_split(inter, "loo")
