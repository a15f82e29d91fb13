"""Top-k search for serving: exact by hand, the faiss HNSW graph against exact, and the text-to-item map."""

from __future__ import annotations

import numpy as np
import pytest

from distillrec.serve.index import ExactIndex, make_index, recall_at_k
from distillrec.serve.placement import NearestPlacement, RidgePlacement, fit_text_map


def test_exact_search_by_hand():
    table = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]], dtype=np.float32)
    index = ExactIndex(table)
    rows, scores = index.search(np.array([1.0, 0.5]), 3, exclude=np.array([2]))
    # scores: 1.0, 0.5, (3.0 excluded), -1.0
    assert rows.tolist() == [0, 1, 3] and scores.tolist() == [1.0, 0.5, -1.0]
    rows, _ = index.search(np.array([1.0, 0.5]), 10, exclude=np.array([0, 1, 2]))
    assert rows.tolist() == [3]  # fewer items than k: no excluded one fills the list
    index.add(np.array([[5.0, 5.0]]))
    assert index.search(np.array([1.0, 0.5]), 1, exclude=np.array([], dtype=np.int64))[0].tolist() == [4]


def test_hnsw_finds_the_exact_top_10_and_items_added_later():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    table = rng.normal(size=(5000, 32)).astype(np.float32)
    users = rng.normal(size=(100, 32)).astype(np.float32)
    index = make_index(table, "hnsw")
    assert index.kind == "hnsw" and make_index(table).kind == "exact"  # auto: exact below 200,000 items
    assert recall_at_k(index, users, 10) >= 0.95
    exclude = ExactIndex(table).search(users[0], 5, np.zeros(0, np.int64))[0]
    rows, scores = index.search(users[0], 10, exclude)
    assert not set(rows.tolist()) & set(exclude.tolist()) and len(rows) == 10
    assert np.all(np.diff(scores) <= 1e-6)  # best first
    index.add(users[:1] * 10)  # a new item far ahead for user 0
    assert index.search(users[0], 1, np.zeros(0, np.int64))[0].tolist() == [5000]


def test_the_text_map_recovers_a_linear_relation():
    rng = np.random.default_rng(1)
    text = rng.normal(size=(400, 16)).astype(np.float32)
    truth = rng.normal(size=(16, 8)).astype(np.float32)
    items = text @ truth + 0.5
    w = fit_text_map(text, items)
    assert w.shape == (17, 8)
    predicted = np.hstack([text, np.ones((400, 1), np.float32)]) @ w
    np.testing.assert_allclose(predicted, items, atol=0.05)


def test_a_new_item_takes_the_vector_of_the_known_item_with_the_nearest_text():
    text = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    table = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=np.float32)
    placement = NearestPlacement().fit(text, table)
    new = np.array([[0.1, 0.9], [3.0, 0.2], [2.0, 2.1]], dtype=np.float32)  # cosine: length does not matter
    assert placement.nearest(new).tolist() == [1, 0, 2]
    np.testing.assert_array_equal(placement.place(new), table[[1, 0, 2]])


def test_a_ridge_placed_item_has_the_median_length_and_the_mapped_direction():
    rng = np.random.default_rng(2)
    text = rng.normal(size=(300, 8)).astype(np.float32)
    table = (text @ rng.normal(size=(8, 4))).astype(np.float32) * rng.uniform(0.5, 3, size=(300, 1)).astype(
        np.float32
    )
    placement = RidgePlacement().fit(text, table)
    placed = placement.place(text[:5])
    np.testing.assert_allclose(
        np.linalg.norm(placed, axis=1), np.median(np.linalg.norm(table, axis=1)), rtol=1e-5
    )
    raw = placement.mapped(text[:5])
    cosine = (placed * raw).sum(axis=1) / np.linalg.norm(placed, axis=1) / np.linalg.norm(raw, axis=1)
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)
