"""Training batches: random slices of a shuffled order, or length buckets that hold a budget of positions."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distillrec.train.batches import BUCKET_SPAN, batch_rows


def test_length_bucketed_batches_cover_every_row_once_in_length_bands():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000)
    batches = batch_rows(rng.permutation(1000), 16, lengths, rng)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    assert abs(len(batches) - 1000 / 16) <= 2  # about as many steps as random batches of 16 rows
    padded = sum(len(b) * lengths[b].max() for b in batches)
    unsorted = sum(16 * lengths[i : i + 16].max() for i in range(0, 1000, 16))
    assert padded < 0.7 * unsorted  # far less padding than random batches (both are over the same rows)
    again = batch_rows(rng.permutation(1000), 16, lengths, rng)
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]  # still random from epoch to epoch


def test_length_buckets_hold_a_budget_of_positions_not_of_rows():
    """A batch's loss is the mean over its positions: buckets of equal row counts would weigh a position of a
    short history ~100x one of a long history. Buckets hold ~batch_size * mean length positions instead."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 200, size=1000)
    batches = batch_rows(rng.permutation(1000), 16, lengths, rng)
    positions = np.array([lengths[b].sum() for b in batches])
    budget = 16 * lengths.mean()
    assert positions.max() < 1.15 * budget and positions.min() > 0.85 * budget
    sizes = sorted(len(b) for b in batches)
    assert sizes[0] <= 10 and sizes[-1] >= 50  # few long rows, or many short ones
    short = min(batches, key=lambda b: lengths[b].max())  # the shortest rows: ~100 of them
    assert len(short) * lengths[short].mean() > 0.85 * budget


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 400), max_size=BUCKET_SPAN * 8 + 3),
    batch_size=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_length_buckets_split_any_order_into_non_empty_batches_each_row_once(lengths, batch_size, seed):
    """Whatever the lengths (zeros, one huge row, fewer rows than a batch, none at all): the batches are a
    partition of the order, none is empty, and none holds much more than 1.5x the budget plus one row."""
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths, dtype=np.int64)
    order = rng.permutation(len(lengths))
    batches = batch_rows(order, batch_size, lengths, rng)
    assert sorted(np.concatenate(batches).tolist() if batches else []) == list(range(len(lengths)))
    assert all(len(b) > 0 for b in batches)
    if len(lengths):
        cost = np.maximum(lengths, 1)  # a row costs at least one position
        budget = batch_size * cost.mean()
        assert max(cost[b].sum() for b in batches) <= 1.5 * budget + cost.max()


def test_length_buckets_of_equal_lengths_are_random_batches_of_batch_size_rows():
    rng = np.random.default_rng(0)
    for lengths in (np.full(960, 7), np.zeros(960, dtype=np.int64)):
        batches = batch_rows(rng.permutation(960), 16, lengths, rng)
        assert [len(b) for b in batches] == [16] * 60


def test_length_buckets_give_one_huge_row_a_batch_of_its_own():
    rng = np.random.default_rng(0)
    lengths = np.ones(400, dtype=np.int64)
    lengths[123] = 10_000  # more positions than all the others together
    batches = batch_rows(rng.permutation(400), 16, lengths, rng)
    assert [b.tolist() for b in batches if 123 in b] == [[123]]
    assert len(batches) >= 2


def test_length_buckets_of_fewer_rows_than_a_batch_make_one_batch_and_of_none_none():
    rng = np.random.default_rng(0)
    batches = batch_rows(rng.permutation(5), 16, np.array([3, 1, 4, 1, 5]), rng)
    assert [sorted(b.tolist()) for b in batches] == [[0, 1, 2, 3, 4]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty slice
        assert batch_rows(np.arange(0), 16, np.zeros(0), rng) == []
        assert batch_rows(np.arange(0), 16) == []
