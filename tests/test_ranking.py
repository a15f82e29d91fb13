"""Full-ranking evaluation (`distillrec.evaluate.ranking.evaluate`) with fake models whose scores are fixed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distillrec.data.interactions import Interactions
from distillrec.data.split import random_ratio
from distillrec.evaluate.metrics import all_metrics
from distillrec.evaluate.ranking import BYTES_PER_SCORE, evaluate, users_per_batch


def _inter(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    """(user, item) pairs in time order (timestamp = position)."""
    if not pairs:
        return Interactions.from_arrays([], [], [], n_users, n_items)
    users, items = zip(*pairs, strict=True)
    return Interactions.from_arrays(users, items, np.arange(len(pairs)), n_users, n_items)


class FixedScores:
    """score(users) = rows of a fixed (n_users, n_items) matrix."""

    def __init__(self, scores) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return self.scores[users]


class SameForAll:
    """Returns a read-only broadcast view of one score row (like an unguarded popularity model)."""

    def __init__(self, row) -> None:
        self.row = np.asarray(row, dtype=np.float32)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return np.broadcast_to(self.row, (len(users), len(self.row)))


class ItemItem:
    """EASE-like linear item-item model: score(u) = x_u @ W, x_u the user's binary history row."""

    def __init__(self, weights) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)  # (n_items, n_items), zero diagonal

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return np.asarray(history.user_items[users] @ self.weights)


def test_history_items_are_masked():
    # scores 5 > 4 > 3 > 2 > 1 for items 0..4; user 0 has seen items 0 and 1; the target is item 2
    model = FixedScores([[5, 4, 3, 2, 1]])
    seen = evaluate(model, _inter([(0, 0), (0, 1)], 1, 5), _inter([(0, 2)], 1, 5), ks=(1, 3))
    assert seen.per_user["MRR"].tolist() == [1.0]  # items 0 and 1 masked: the target is first
    assert seen.top_items[0].tolist() == [2, 3, 4]
    unseen = evaluate(model, _inter([], 1, 5), _inter([(0, 2)], 1, 5), ks=(1, 3))
    assert unseen.per_user["MRR"].tolist() == [1 / 3]  # nothing masked: rank 3


def test_target_also_in_history_stays_rankable():
    # history {0, 2}, target 2 (a re-consumption): only item 0 is masked, item 1 (score 4) is ahead -> rank 2
    result = evaluate(
        FixedScores([[5, 4, 3, 2, 1]]), _inter([(0, 0), (0, 2)], 1, 5), _inter([(0, 2)], 1, 5), ks=(1,)
    )
    assert result.per_user["MRR"].tolist() == [0.5]
    assert result.per_user["HR@1"].tolist() == [0.0]


def test_ties_are_broken_against_the_target():
    # 6 items, all scored 0; item 0 is history, so 5 items are ranked and the target comes last among them
    model = FixedScores(np.zeros((1, 6)))
    history = _inter([(0, 0)], 1, 6)
    one = evaluate(model, history, _inter([(0, 3)], 1, 6), ks=(4, 5))
    assert one.per_user["MRR"].tolist() == [1 / 5]  # rank = number of unmasked items
    assert one.per_user["HR@4"].tolist() == [0.0] and one.per_user["HR@5"].tolist() == [1.0]
    # two targets {3, 4}: below the 3 other unmasked items, and in index order among themselves -> ranks 4, 5
    two = evaluate(model, history, _inter([(0, 3), (0, 4)], 1, 6), ks=(4, 5))
    assert two.per_user["MRR"].tolist() == [1 / 4]
    assert two.per_user["Recall@4"].tolist() == [0.5]
    idcg = 1 + 1 / math.log2(3)
    assert two.per_user["NDCG@5"][0] == pytest.approx((1 / math.log2(5) + 1 / math.log2(6)) / idcg)


def test_item_item_model_ranks_by_hand():
    weights = [
        [0, 2, 1, 0],
        [2, 0, 0, 3],
        [1, 0, 0, 1],
        [0, 3, 1, 0],
    ]
    history = _inter([(0, 0), (1, 0), (1, 1)], 2, 4)
    targets = _inter([(0, 3), (1, 2)], 2, 4)
    result = evaluate(ItemItem(weights), history, targets, ks=(2, 3))
    # user 0: x = [1,0,0,0] -> scores W[0] = [0, 2, 1, 0]; item 0 masked; order 1 (2), 2 (1), 3 (0) -> target 3 at rank 3
    # user 1: x = [1,1,0,0] -> scores W[0] + W[1] = [2, 2, 1, 3]; items 0, 1 masked; order 3 (3), 2 (1) -> rank 2
    assert result.per_user["MRR"].tolist() == [1 / 3, 1 / 2]
    assert result.per_user["HR@2"].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(result.per_user["NDCG@3"], [1 / math.log2(4), 1 / math.log2(3)])
    assert result.top_items[:, :2].tolist() == [[1, 2], [3, 2]]


def test_coverage_counts_distinct_recommended_items():
    # no history; each user's two best items: {0, 1}, {1, 2}, {0, 2}; the best: 0, 1, 0
    scores = [[6, 5, 4, 3, 2, 1], [1, 6, 5, 4, 3, 2], [6, 1, 5, 2, 3, 4]]
    targets = _inter([(0, 5), (1, 5), (2, 5)], 3, 6)
    result = evaluate(FixedScores(scores), _inter([], 3, 6), targets, ks=(1, 2))
    assert result.summary["Coverage@2"] == pytest.approx(3 / 6)
    assert result.summary["Coverage@1"] == pytest.approx(2 / 6)


def test_nan_scores_raise():
    scores = np.ones((2, 4))
    scores[1, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"FixedScores.score\(\) returned NaN scores for 1 user\(s\).*user 1"
    ):
        evaluate(FixedScores(scores), _inter([], 2, 4), _inter([(0, 1), (1, 1)], 2, 4))


def test_infinite_scores_are_allowed():
    # +inf and -inf in one row (their row sum is NaN) are valid scores, not NaN
    model = FixedScores([[np.inf, -np.inf, 1, 0]])
    result = evaluate(model, _inter([], 1, 4), _inter([(0, 2)], 1, 4), ks=(2,))
    assert result.per_user["MRR"].tolist() == [0.5]


def test_read_only_scores_are_not_written_to():
    # the model hands out a broadcast view of its own state; masking must not write -inf into it
    model = SameForAll([4, 3, 2, 1])
    history = _inter([(0, 0), (1, 1)], 2, 4)
    result = evaluate(model, history, _inter([(0, 2), (1, 2)], 2, 4), ks=(1,))
    assert model.row.tolist() == [4, 3, 2, 1]
    assert result.per_user["MRR"].tolist() == [1 / 2, 1 / 2]  # each user: one of items 0, 1 masked -> rank 2


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 25
    pairs = [
        (u, int(i)) for u in range(n_users) for i in rng.choice(n_items, rng.integers(3, 12), replace=False)
    ]
    split = random_ratio(_inter(pairs, n_users, n_items), valid_frac=0.0, test_frac=0.4, seed=seed)
    scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)  # few distinct values: many ties
    return split, scores


def _reference_ranks(scores, history: Interactions, targets: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Ranks by sorting each user's unmasked items by (-score, is target, item index)."""
    users = targets.active_users()
    width = max(len(set(targets.sequence(u).tolist())) for u in users)
    ranks = np.full((len(users), width), np.inf)
    n_targets = np.zeros(len(users), dtype=np.int64)
    for row, user in enumerate(users):
        wanted = set(targets.sequence(user).tolist())
        masked = set(history.sequence(user).tolist()) - wanted
        candidates = [i for i in range(scores.shape[1]) if i not in masked]
        order = sorted(candidates, key=lambda i: (-scores[user, i], i in wanted, i))
        found = sorted(order.index(i) + 1 for i in wanted)
        ranks[row, : len(found)] = found
        n_targets[row] = len(wanted)
    return ranks, n_targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_brute_force_reference(seed):
    split, scores = _random_case(seed)
    result = evaluate(FixedScores(scores), split.train, split.test, ks=(1, 5, 10))
    ranks, n_targets = _reference_ranks(scores, split.train, split.test)
    expected = all_metrics(ranks, n_targets, (1, 5, 10))
    for name, values in expected.items():
        np.testing.assert_allclose(result.per_user[name], values, err_msg=name)


def test_batch_size_does_not_change_results():
    split, scores = _random_case(3)
    small = evaluate(FixedScores(scores), split.train, split.test, batch_size=1)
    large = evaluate(FixedScores(scores), split.train, split.test, batch_size=1000)
    assert small.per_user.keys() == large.per_user.keys()
    for name in small.per_user:
        np.testing.assert_array_equal(small.per_user[name], large.per_user[name], err_msg=name)
    np.testing.assert_array_equal(small.top_items, large.top_items)
    assert small.summary == large.summary


def test_memory_budget_sizes_the_user_batches_and_keeps_results():
    assert users_per_batch(256, 100_000, 512.0) == 256  # 268 fit in 512 MB at 20 B x 100K items: capped
    assert users_per_batch(256, 200_000, 512.0) == 134
    assert users_per_batch(256, 1_000_000, 512.0) == 26
    assert users_per_batch(256, 10**9, 1.0) == 1  # always at least one user
    split, scores = _random_case(5)
    batches = []

    class Counting(FixedScores):
        def score(self, users, history):
            batches.append(len(users))
            return super().score(users, history)

    budget = 3 * BYTES_PER_SCORE * split.train.n_items / 2**20  # room for 3 users' scores
    tight = evaluate(Counting(scores), split.train, split.test, memory_mb=budget)
    assert max(batches) == 3
    free = evaluate(FixedScores(scores), split.train, split.test)
    for name in free.per_user:
        np.testing.assert_array_equal(tight.per_user[name], free.per_user[name], err_msg=name)
    with pytest.raises(ValueError, match="memory_mb"):
        evaluate(FixedScores(scores), split.train, split.test, memory_mb=0)


def test_sampled_protocol_is_labelled_and_bounded():
    split, scores = _random_case(4)
    full = evaluate(FixedScores(scores), split.train, split.test)
    assert full.protocol == "full"
    sampled = evaluate(FixedScores(scores), split.train, split.test, n_negatives=3, seed=7)
    assert sampled.protocol == "sampled (3 negatives, NOT full ranking)"
    # with 3 negatives, the best target is at worst behind all 3 of them
    assert sampled.per_user["MRR"].min() >= 1 / 4
    # as many negatives as there are items: nothing is dropped, so it equals full ranking
    everything = evaluate(FixedScores(scores), split.train, split.test, n_negatives=scores.shape[1])
    for name in full.per_user:
        np.testing.assert_array_equal(everything.per_user[name], full.per_user[name], err_msg=name)


def test_sampled_negatives_exclude_history_and_targets():
    # 1 user, 10 items; history 0..5; target 9; 2 negatives must come from {6, 7, 8}
    scores = np.array([[9, 9, 9, 9, 9, 9, 5, 5, 5, 0]], dtype=np.float32)
    history = _inter([(0, i) for i in range(6)], 1, 10)
    for seed in range(5):
        result = evaluate(
            FixedScores(scores), history, _inter([(0, 9)], 1, 10), ks=(2,), n_negatives=2, seed=seed
        )
        assert result.per_user["MRR"].tolist() == [1 / 3]  # behind exactly the 2 sampled negatives


def test_mismatched_id_spaces_are_refused():
    with pytest.raises(ValueError, match="history is over 2 users x 5 items but targets over 2 x 6"):
        evaluate(FixedScores(np.zeros((2, 5))), _inter([], 2, 5), _inter([(0, 1)], 2, 6))


def test_duplicate_targets_count_once():
    # target item 2 listed twice for user 0: one relevant item, so Recall@1 is 0 or 1, never 1/2
    result = evaluate(FixedScores([[1, 2, 3]]), _inter([], 1, 3), _inter([(0, 2), (0, 2)], 1, 3), ks=(1,))
    assert result.per_user["Recall@1"].tolist() == [1.0]
