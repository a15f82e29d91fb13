"""Ranking metrics (`distillrec.evaluate.metrics`) against values worked out by hand.

log2 values used below: log2(2) = 1, log2(3) = 1.5849625, log2(4) = 2, log2(5) = 2.3219281, log2(12) = 3.5849625.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from distillrec.evaluate.metrics import all_metrics, average_precision, hit_rate, mrr, ndcg, precision, recall

INF = np.inf


def _metrics(ranks: list[float], k: int) -> dict[str, float]:
    """All metrics at cut-off k for one user whose targets sit at `ranks`."""
    r = np.array([ranks], dtype=np.float64)
    n = np.array([sum(np.isfinite(ranks))])
    out = all_metrics(r, n, (k,))
    return {name.split("@")[0]: float(values[0]) for name, values in out.items()}


def test_one_target_inside_top_k():
    # target at rank 3, K = 5
    m = _metrics([3], k=5)
    assert m["HR"] == 1.0
    assert m["Recall"] == 1.0
    assert m["NDCG"] == pytest.approx(0.5)  # (1 / log2(3 + 1)) / (1 / log2(2)) = (1 / 2) / 1
    assert m["MRR"] == pytest.approx(1 / 3)
    assert m["MAP"] == pytest.approx(1 / 3)  # one hit, precision at it = 1/3; divided by min(n=1, K) = 1
    assert m["Precision"] == pytest.approx(1 / 5)


def test_one_target_outside_top_k():
    # target at rank 11, K = 10: every cut-off metric is 0; MRR has no cut-off
    m = _metrics([11], k=10)
    assert m["HR"] == m["Recall"] == m["NDCG"] == m["MAP"] == m["Precision"] == 0.0
    assert m["MRR"] == pytest.approx(1 / 11)


def test_three_targets_two_inside_top_k():
    # targets at ranks 1, 4 and 12; K = 5
    m = _metrics([1, 4, 12], k=5)
    assert m["HR"] == 1.0
    assert m["Recall"] == pytest.approx(2 / 3)
    # DCG  = 1/log2(2) + 1/log2(5)            = 1 + 0.4306766 = 1.4306766
    # IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.6309298 + 0.5 = 2.1309298   (min(n=3, K=5) = 3 ideal hits)
    assert m["NDCG"] == pytest.approx(1.4306766 / 2.1309298, abs=1e-7)  # 0.6713863
    assert m["MRR"] == 1.0
    # AP: hit 1 at rank 1 -> 1/1, hit 2 at rank 4 -> 2/4; (1 + 0.5) / min(n=3, K=5) = 1.5 / 3
    assert m["MAP"] == pytest.approx(0.5)
    assert m["Precision"] == pytest.approx(2 / 5)


def test_more_targets_than_k():
    # targets at ranks 2, 3, 7; K = 2: only rank 2 is a hit
    m = _metrics([2, 3, 7], k=2)
    assert m["Recall"] == pytest.approx(1 / 3)
    # DCG = 1/log2(3) = 0.6309298; IDCG uses min(n=3, K=2) = 2 hits: 1 + 0.6309298 = 1.6309298
    assert m["NDCG"] == pytest.approx(0.6309298 / 1.6309298, abs=1e-7)  # 0.3868528
    assert m["MAP"] == pytest.approx((1 / 2) / 2)  # hit 1 at rank 2 -> 1/2; divided by min(3, 2) = 2
    assert m["Precision"] == pytest.approx(1 / 2)
    assert m["MRR"] == pytest.approx(1 / 2)


def test_perfect_ranking_scores_one():
    # targets at ranks 1, 2, 3 with K = 2: the best possible list at this cut-off
    m = _metrics([1, 2, 3], k=2)
    assert m["NDCG"] == pytest.approx(1.0) and m["MAP"] == pytest.approx(1.0) and m["Precision"] == 1.0
    assert m["Recall"] == pytest.approx(2 / 3)  # recall cannot reach 1 with 3 targets in 2 slots


def test_per_user_rows_with_padding():
    # two users: one target at rank 2; three targets at ranks 1, 4, 12 (the first row is padded with inf)
    ranks = np.array([[2, INF, INF], [1, 4, 12]])
    n_targets = np.array([1, 3])
    np.testing.assert_allclose(hit_rate(ranks, 1), [0, 1])
    np.testing.assert_allclose(recall(ranks, n_targets, 4), [1, 2 / 3])
    np.testing.assert_allclose(precision(ranks, 4), [1 / 4, 2 / 4])
    # user 0: (1/log2(3)) / 1 = 0.6309298; user 1 at K=4: (1 + 1/log2(5)) / (1 + 1/log2(3) + 1/log2(4))
    np.testing.assert_allclose(
        ndcg(ranks, n_targets, 4), [1 / math.log2(3), 1.4306766 / 2.1309298], atol=1e-7
    )
    np.testing.assert_allclose(mrr(ranks), [1 / 2, 1])
    np.testing.assert_allclose(average_precision(ranks, n_targets, 4), [1 / 2, (1 + 2 / 4) / 3])


def test_all_metrics_names():
    out = all_metrics(np.array([[1.0]]), np.array([1]), (5, 10))
    assert sorted(out) == sorted(
        ["MRR"] + [f"{m}@{k}" for k in (5, 10) for m in ("HR", "Recall", "NDCG", "MAP", "Precision")]
    )
