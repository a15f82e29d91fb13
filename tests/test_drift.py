"""Drift weights: validation users weighted by how the popularity mix of the next item moves one step on."""

from __future__ import annotations

import numpy as np
import pytest

from distillrec.data.interactions import Interactions
from distillrec.evaluate.drift import N_BINS, drift_weights, popularity_bins, weighted_summary
from distillrec.evaluate.ranking import Evaluation

# Users 0-3 each train on [x, 0, 0] and have a validation target; user 4 trains on [0, 0, 0, 0] and has none.
# Training counts: item 0 12, item 1 1, item 2 1, item 3 2 (16 rows). Dropping each validated user's last
# item leaves 12 rows with item 0 at 8, scaled by 16 / 12 to 10.67: bin 1 + floor(log2(10.67)) = 4, the bin
# of its training count 12 too; items 1-3 keep their counts (1.33, 2.67 scaled) and bins (1, 1, 2).
FIRSTS = [1, 2, 3, 3]
TRAIN = Interactions.from_arrays(
    [u for u in range(4) for _ in range(3)] + [4] * 4,
    [i for x in FIRSTS for i in (x, 0, 0)] + [0] * 4,
    np.arange(16),
    5,
    4,
)
VALID = Interactions.from_arrays([0, 1, 2, 3], [1, 2, 0, 0], np.full(4, 100), 5, 4)


def test_popularity_bins_by_hand():
    counts = np.array([0, 1, 2, 3, 4, 7, 8, 1e9])
    np.testing.assert_array_equal(popularity_bins(counts), [0, 1, 2, 2, 3, 3, 4, N_BINS - 1])


def test_drift_weights_by_hand():
    # The dropped items are all item 0 (bin 4): shares (4 + 1) / (4 + 12) there and 1 / 16 in every other bin.
    # The targets that follow them: items 1 and 2 (bin 1) twice, item 0 (bin 4) twice: 3 / 16 each.
    # Ratios: bin 1 3, bin 4 3 / 5; normalised to mean 1 over the four users: 5 / 3 and 1 / 3.
    np.testing.assert_allclose(drift_weights(TRAIN, VALID), [5 / 3, 5 / 3, 1 / 3, 1 / 3, 0.0])


def test_no_shift_weighs_every_user_alike():
    valid = Interactions.from_arrays([0, 1, 2, 3], [0, 0, 0, 0], np.full(4, 100), 5, 4)  # next = last again
    np.testing.assert_allclose(drift_weights(TRAIN, valid), [1, 1, 1, 1, 0])


def test_users_with_one_training_item_give_no_shift():
    train = Interactions.from_arrays([0, 1], [0, 1], [0, 1], 2, 2)
    valid = Interactions.from_arrays([0, 1], [1, 0], [5, 5], 2, 2)
    with pytest.raises(ValueError, match="two training items"):
        drift_weights(train, valid)


def test_weighted_summary_by_hand():
    # Item 0 is the head (the top 20% of the 4 interacted items: one item), items 1-3 the tail.
    per_user = {"NDCG@10": np.array([1.0, 0.5, 0.0, 0.25])}
    evaluation = Evaluation(np.arange(4), per_user, np.zeros((4, 10), dtype=np.int64), 4)
    weights = np.array([3.0, 1.0, 1.0, 1.0, 0.0])
    got = weighted_summary(evaluation, VALID, TRAIN, weights)
    assert got["NDCG@10"] == pytest.approx((3 * 1.0 + 0.5 + 0.0 + 0.25) / 6)
    assert got["tail"] == pytest.approx((3 * 1.0 + 0.5) / 4)  # users 0 and 1 have tail targets
