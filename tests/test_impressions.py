"""Impressions with a click and a conversion built from ratings (a stated proxy): labels by hand, no look-ahead,
the funnel check, and the split by time."""

from __future__ import annotations

import numpy as np
import pytest

from distillrec.data.impressions import Impressions, check_funnel, from_ratings, split_by_time


def _log(n_users: int = 30, n_items: int = 40, per_user: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    times = np.tile(np.arange(per_user) * 100, n_users) + rng.integers(0, 10, n_users * per_user)
    ratings = rng.integers(1, 6, n_users * per_user).astype(float)
    return users, items, times, ratings, n_users, n_items


def test_labels_by_hand():
    # user 0 rates item 1 (5 stars) at t=10 and item 2 (3 stars) at t=20; user 1 rates item 0 (4 stars) at t=5
    imp = from_ratings([0, 0, 1], [1, 2, 0], [10, 20, 5], [5.0, 3.0, 4.0], 2, 6, negatives_per_click=1.0)
    clicked = imp.labels["click"] == 1
    assert sorted(
        zip(imp.users[clicked], imp.items[clicked], imp.labels["conversion"][clicked], strict=True)
    ) == [
        (0, 1, 1.0),
        (0, 2, 0.0),
        (1, 0, 1.0),
    ]
    assert (~clicked).sum() == 3 and np.all(imp.labels["conversion"][~clicked] == 0)
    assert set(imp.timestamps[(imp.users == 0) & ~clicked]) <= {
        10,
        20,
    }  # shown at one of the user's own times
    assert np.all(np.diff(imp.timestamps[imp.users == 0]) >= 0)  # time-ordered within the user


def test_an_unclicked_impression_is_never_an_item_already_rated_but_may_be_one_rated_later():
    users, items, times, ratings, n_users, n_items = _log()
    imp = from_ratings(users, items, times, ratings, n_users, n_items, negatives_per_click=3.0, seed=1)
    assert len(imp) == 4 * len(users)
    first = {(u, i): t for u, i, t in sorted(zip(users, items, times, strict=True), key=lambda r: -r[2])}
    later = 0
    for u, i, t in zip(
        imp.users[imp.labels["click"] == 0],
        imp.items[imp.labels["click"] == 0],
        imp.timestamps[imp.labels["click"] == 0],
        strict=True,
    ):
        if (u, i) in first:
            assert first[(u, i)] > t  # rated only after it was shown
            later += 1
    assert later > 0  # the construction does not hide the future from the sampler by excluding it
    again = from_ratings(users, items, times, ratings, n_users, n_items, negatives_per_click=3.0, seed=1)
    assert np.array_equal(again.items, imp.items) and np.array_equal(again.timestamps, imp.timestamps)


def test_the_funnel_check_names_the_behaviour_and_row():
    labels = {"click": np.array([1.0, 0.0, 1.0]), "conversion": np.array([1.0, 1.0, 0.0])}
    bad = Impressions(np.zeros(3, int), np.arange(3), np.arange(3), labels, 1, 3)
    with pytest.raises(ValueError, match="'conversion' is 1 without 'click' at row 1"):
        check_funnel(bad)
    labels = {"click": np.array([1.0, 2.0, 0.0])}
    with pytest.raises(ValueError, match="row 1 is 2.0, expected 0 or 1"):
        check_funnel(Impressions(np.zeros(3, int), np.arange(3), np.arange(3), labels, 1, 3))


def test_split_by_time_holds_out_each_users_latest_impressions():
    users, items, times, ratings, n_users, n_items = _log()
    imp = from_ratings(users, items, times, ratings, n_users, n_items)
    check_funnel(imp)
    train, valid, test = split_by_time(imp, valid_share=0.1, test_share=0.2)
    assert len(train) + len(valid) + len(test) == len(imp)
    for user in range(n_users):
        a, b, c = (part.timestamps[part.users == user] for part in (train, valid, test))
        assert len(c) == 8 and len(b) == 4  # 40 impressions: 20% and 10%
        assert a.max() <= b.min() and b.max() <= c.min()  # nothing held out is earlier than training
    few = Impressions(np.array([0, 0]), np.array([1, 2]), np.array([1, 2]), {"click": np.ones(2)}, 1, 3)
    assert [len(p) for p in split_by_time(few)] == [2, 0, 0]
    with pytest.raises(ValueError, match="valid_share and test_share"):
        split_by_time(imp, 0.5, 0.5)


def test_unclicked_impressions_follow_the_popularity_of_their_time():
    # items 0-9 are rated only early (t < 1000), items 10-19 only late (t >= 100000): an impression shown early
    # is of an early item, except the one draw in ten from the whole catalogue (half of which is early too)
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 5)
    items = np.concatenate([rng.choice(10, 5, replace=False) + (10 if u >= 20 else 0) for u in range(40)])
    times = np.where(users < 20, rng.integers(0, 1000, 200), rng.integers(100000, 101000, 200))
    imp = from_ratings(users, items, times, np.full(200, 5.0), 40, 30, negatives_per_click=4.0, seed=3)
    shown = imp.labels["click"] == 0
    early = shown & (imp.timestamps < 1000)
    late = shown & (imp.timestamps >= 100000)
    assert np.mean(imp.items[early] < 10) > 0.85 and np.mean(imp.items[late] >= 10) > 0.85
    assert np.mean(imp.items[shown] >= 20) > 0.02  # items nobody rated can be shown too
    with pytest.raises(ValueError, match="popularity_window"):
        from_ratings(users, items, times, np.full(200, 5.0), 40, 30, popularity_window=0.0)


def test_read_impressions_from_a_users_own_table(tmp_path):
    from distillrec.data.errors import DataError
    from distillrec.data.impressions import read_impressions

    path = tmp_path / "impressions.tsv"
    rows = [
        "user_id\titem_id\ttimestamp\tclick\tpurchase",
        "u2\tb\t30\t1\t1",
        "u1\ta\t20\t0\t0",
        "u1\tb\t10\t1\t0",
    ]
    path.write_text("\n".join(rows) + "\n")
    imp, user_ids = read_impressions(path, np.array(["a", "b", "c"]), ["click", "purchase"])
    assert user_ids.tolist() == ["u1", "u2"]
    assert imp.n_users == 2 and imp.n_items == 3 and imp.behaviours == ["click", "purchase"]
    assert imp.users.tolist() == [0, 0, 1] and imp.items.tolist() == [1, 0, 1]  # u1 by time, then u2
    assert imp.labels["click"].tolist() == [1, 0, 1] and imp.labels["purchase"].tolist() == [0, 0, 1]
    for bad, message in (
        ("u1\tz\t10\t1\t0", "line 2: item_id 'z' is not an item of the dataset"),
        ("u1\ta\t10\t0\t1", "line 2: 'purchase' is 1 where 'click' is 0"),
        ("u1\ta\t10\t2\t0", "line 2: behaviour 'click' must be 0 or 1, got '2'"),
    ):
        path.write_text("\n".join([rows[0], bad]) + "\n")
        with pytest.raises(DataError, match=message):
            read_impressions(path, np.array(["a", "b", "c"]), ["click", "purchase"])
    with pytest.raises(DataError, match=r"missing column\(s\) \['buy'\]"):
        read_impressions(path, np.array(["a"]), ["click", "buy"])


def test_clicks_and_unclicked_impressions_of_one_time_split_alike():
    # every unclicked impression shares its time with a rating: at equal times neither kind goes first, so the
    # held-out share of clicks is about the training share
    users, items, times, ratings, n_users, n_items = _log(n_users=200, per_user=10)
    imp = from_ratings(users, items, times, ratings, n_users, n_items, negatives_per_click=3.0)
    train, _, test = split_by_time(imp, 0.1, 0.2)
    assert abs(train.labels["click"].mean() - test.labels["click"].mean()) < 0.03
