"""Preparation (`distillrec.data.dataset`) and dataset resolution (`distillrec.data.download`)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from collections import Counter

import numpy as np
import pytest
from conftest import write_generic
from hypothesis import given, settings
from hypothesis import strategies as st

from distillrec.data import download
from distillrec.data.dataset import load_dataset
from distillrec.data.download import resolve_dataset
from distillrec.data.errors import DataError

HEADER = ("user_id", "item_id", "timestamp")


def _pairs(dataset) -> list[tuple[str, str, int]]:
    """(user id, item id, timestamp) of every interaction, in the dataset's order."""
    inter = dataset.interactions
    return [
        (dataset.user_ids[u], dataset.item_ids[i], int(t))
        for u, i, t in zip(inter.users, inter.items, inter.timestamps, strict=True)
    ]


# ---------------------------------------------------------------------------------------------- preparation


def test_min_rating_keeps_only_high_ratings(make_generic):
    folder = make_generic(
        [
            (*HEADER, "rating"),
            ("a", "1", 1, 5),
            ("a", "2", 2, 3.5),
            ("a", "3", 3, 4),
            ("b", "1", 1, 1),
            ("b", "3", 2, 4.5),
        ]
    )
    dataset = load_dataset(folder, min_rating=4)
    assert _pairs(dataset) == [("a", "1", 1), ("a", "3", 3), ("b", "3", 2)]
    np.testing.assert_array_equal(dataset.ratings, [5, 4, 4.5])  # aligned with the interactions
    assert len(load_dataset(folder).interactions) == 5  # no threshold: every interaction is kept


def test_min_rating_without_ratings_is_an_error(make_generic):
    folder = make_generic([HEADER, ("a", "1", 1)])
    with pytest.raises(
        DataError, match=r"interactions\.tsv: min_rating=4 was asked for, but there is no rating"
    ):
        load_dataset(folder, min_rating=4)


@pytest.mark.parametrize(
    ("duplicates", "expected"),
    [
        (
            "first",
            [("u", "1", 10), ("u", "2", 20)],
        ),  # the earliest (t=10) of the two "1"s, not the file's first
        ("last", [("u", "2", 20), ("u", "1", 30)]),
        ("all", [("u", "1", 10), ("u", "2", 20), ("u", "1", 30)]),
    ],
)
def test_duplicates(make_generic, duplicates, expected):
    folder = make_generic([HEADER, ("u", "1", 30), ("u", "2", 20), ("u", "1", 10)])
    assert _pairs(load_dataset(folder, duplicates=duplicates)) == expected


def test_unknown_duplicates_option_lists_choices(make_generic):
    with pytest.raises(ValueError, match="duplicates must be 'first', 'last' or 'all', got 'newest'"):
        load_dataset(make_generic([HEADER, ("u", "1", 1)]), duplicates="newest")


def test_k_core_cascades(make_generic):
    """2-core: user c has one interaction and goes; then item 3 (only b and c) has one and goes; then b has one."""
    rows = [
        ("a", "1", 1),
        ("a", "2", 2),
        ("b", "2", 1),
        ("b", "3", 2),
        ("c", "3", 1),
        ("d", "1", 1),
        ("d", "2", 2),
    ]
    rows += [("b", "4", 3)]  # item 4: only b -> goes in the first round too
    dataset = load_dataset(make_generic([HEADER, *rows]), min_user_interactions=2, min_item_interactions=2)
    assert sorted(_pairs(dataset)) == [("a", "1", 1), ("a", "2", 2), ("d", "1", 1), ("d", "2", 2)]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 3)), min_size=1, max_size=60
    ),
    k=st.integers(2, 4),
)
def test_k_core_property(tmp_path_factory, rows, k):
    """After filtering, every user and every item has >= k interactions, and nothing was invented."""
    folder = write_generic(
        tmp_path_factory.mktemp("kcore"), [HEADER, *[(f"u{u}", f"i{i}", t) for u, i, t in rows]]
    )
    try:
        dataset = load_dataset(folder, duplicates="all", min_user_interactions=k, min_item_interactions=k)
    except DataError as err:
        assert "no interactions left" in str(err)
        return
    inter = dataset.interactions
    assert np.bincount(inter.users, minlength=dataset.n_users).min() >= k
    assert inter.item_counts().min() >= k
    kept = Counter(_pairs(dataset))
    assert not kept - Counter((f"u{u}", f"i{i}", t) for u, i, t in rows)


def test_ids_are_numbered_in_numeric_order_when_numeric(make_generic):
    folder = make_generic([HEADER, ("10", "100", 1), ("9", "20", 1), ("100", "3", 1), ("9", "100", 2)])
    dataset = load_dataset(folder)
    assert dataset.user_ids.tolist() == ["9", "10", "100"]  # not the string order 10, 100, 9
    assert dataset.item_ids.tolist() == ["3", "20", "100"]
    assert dataset.interactions.sequence(0).tolist() == [1, 2]  # user "9": items "20", "100"


def test_ids_are_lexicographic_otherwise(make_generic):
    folder = make_generic([HEADER, ("b", "x2", 1), ("a", "x10", 1), ("a", "7", 2)])
    dataset = load_dataset(folder)
    assert dataset.user_ids.tolist() == ["a", "b"]
    assert dataset.item_ids.tolist() == ["7", "x10", "x2"]


def test_equal_timestamps_keep_file_order(make_generic):
    # user u: three interactions at t=5 in the file order 30, 10, 20 (neither item order nor id order),
    # one earlier at t=1 written last.
    folder = make_generic(
        [HEADER, ("u", "30", 5), ("v", "10", 5), ("u", "10", 5), ("u", "20", 5), ("u", "40", 1)]
    )
    dataset = load_dataset(folder)
    sequence = dataset.item_ids[dataset.interactions.sequence(0)].tolist()
    assert sequence == ["40", "30", "10", "20"]


def test_keep_cold_items(make_generic):
    items = [("item_id", "title"), ("1", "One"), ("2", "Two"), ("3", "Never bought")]
    folder = make_generic([HEADER, ("u", "1", 1), ("u", "2", 2)], items=items)
    warm = load_dataset(folder)
    assert warm.item_ids.tolist() == ["1", "2"] and warm.item_text["title"].tolist() == ["One", "Two"]
    cold = load_dataset(folder, keep_cold_items=True)
    assert cold.item_ids.tolist() == ["1", "2", "3"]
    assert cold.item_text["title"].tolist() == ["One", "Two", "Never bought"]  # row i = item index i
    assert cold.interactions.item_counts().tolist() == [1, 1, 0]


def test_stats_on_a_hand_made_dataset(make_generic):
    # 3 users with 1, 2 and 3 interactions; 4 catalogue items, item "d" never interacted; one empty title.
    rows = [("x", "a", 1), ("y", "a", 1), ("y", "b", 2), ("z", "a", 1), ("z", "b", 2), ("z", "c", 3)]
    items = "item_id\ttitle\na\tApple\nb\t\nc\tCherry\nd\tDate\n"
    stats = load_dataset(make_generic([HEADER, *rows], items=items), keep_cold_items=True).stats()
    expected = {
        "users": 3,
        "items": 4,
        "interactions": 6,
        "density": 6 / (3 * 4),  # 0.5
        "items_never_interacted": 1,
        "seq_len_min": 1.0,
        "seq_len_p25": 1.5,  # lengths [1, 2, 3]: linear interpolation, 1 + 0.25 * (3 - 1)
        "seq_len_median": 2.0,
        "seq_len_p75": 2.5,
        "seq_len_p90": 2.8,  # 1 + 0.9 * 2
        "seq_len_max": 3.0,
        "seq_len_mean": 2.0,
        "text_coverage_title": 0.75,  # 3 of 4 titles non-empty
    }
    assert stats.keys() == expected.keys()
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value), key


# ---------------------------------------------------------------------------------------------- resolution


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """An empty data dir and cache, and no network: any download attempt fails loudly."""
    data, cache = tmp_path / "data_dir", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv(download.DATA_DIR_ENV, str(data))
    monkeypatch.setenv(download.CACHE_ENV, str(cache))

    def no_network(*args, **kwargs):
        raise AssertionError("the test tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return data, cache


def test_name_under_data_dir(isolated):
    data, _ = isolated
    folder = write_generic(data / "shop", [HEADER, ("u", "1", 1)])
    assert resolve_dataset("shop") == folder
    assert load_dataset("shop").name == "shop"


def test_path_is_used_as_is(isolated, make_generic):
    folder = make_generic([HEADER, ("u", "1", 1)])
    assert resolve_dataset(folder) == folder
    assert resolve_dataset(str(folder)) == folder


def test_unknown_name_lists_known_names(isolated):
    data, _ = isolated
    (data / "shop").mkdir()
    with pytest.raises(DataError) as err:
        resolve_dataset("ml-10m")
    message = str(err.value)
    assert "not a known dataset name (known: ml-100k, ml-1m, ml-latest-small, shop)" in message
    assert str(data / "ml-10m") in message  # says where it looked


def test_download_off(isolated):
    with pytest.raises(DataError, match="ml-100k: not found in .* and downloading is off"):
        resolve_dataset("ml-100k", download=False)


def test_download_refused_offline(isolated, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        resolve_dataset("ml-100k")
    message = str(err.value)
    assert message.startswith("ml-100k: not found locally and could not be downloaded from https://")
    assert "Network is unreachable" in message and download.DATA_DIR_ENV in message


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t100\n")
    return buffer.getvalue()


def test_download_checks_sha256(isolated, monkeypatch):
    _, cache = isolated
    archive = _tiny_zip()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(archive))
    with pytest.raises(
        DataError, match=r"ml-100k: the file downloaded from \S+ has sha256 [0-9a-f]{64}, not the pinned"
    ):
        resolve_dataset("ml-100k")
    assert not (cache / "datasets" / "ml-100k").exists()  # nothing half-installed

    # The same archive with its true digest pinned is unpacked into the cache.
    pinned = download.KnownDataset(
        "https://example.invalid/ml-100k.zip", hashlib.sha256(archive).hexdigest(), "ml-100k"
    )
    monkeypatch.setitem(download.KNOWN_DATASETS, "ml-100k", pinned)
    folder = resolve_dataset("ml-100k")
    assert folder == cache / "datasets" / "ml-100k"
    assert (folder / "u.data").read_text() == "1\t1\t5\t100\n"
    assert resolve_dataset("ml-100k") == folder  # now found in the cache


def test_user_fraction_keeps_a_seeded_share_of_the_users(data_dir):
    whole = load_dataset(data_dir / "ml-100k")
    tenth = load_dataset(data_dir / "ml-100k", user_fraction=0.1, user_seed=0)
    again = load_dataset(data_dir / "ml-100k", user_fraction=0.1, user_seed=0)
    other = load_dataset(data_dir / "ml-100k", user_fraction=0.1, user_seed=1)
    assert tenth.n_users == round(0.1 * whole.n_users) == 94
    assert list(tenth.user_ids) == list(again.user_ids) and list(tenth.user_ids) != list(other.user_ids)
    assert set(tenth.user_ids) <= set(whole.user_ids) and set(tenth.item_ids) <= set(whole.item_ids)
    # a kept user keeps every interaction; a left-out user has none
    kept = str(tenth.user_ids[0])
    assert len(tenth.interactions.sequence(0)) == len(
        whole.interactions.sequence(list(whole.user_ids).index(kept))
    )
    assert any(n.startswith("user_fraction=0.1 (seed 0): kept 94 of 943 users") for n in tenth.notices)
    with pytest.raises(ValueError, match="user_fraction"):
        load_dataset(data_dir / "ml-100k", user_fraction=0.0)


def test_the_data_stage_key_leaves_out_user_fraction_at_its_default():
    from distillrec.config import DatasetConfig
    from distillrec.stages.data import key_config

    plain = DatasetConfig(source="ml-100k")
    assert key_config(plain) == {
        k: v for k, v in plain.model_dump().items() if k not in ("user_fraction", "user_seed")
    }
    assert key_config(DatasetConfig(source="ml-100k", user_fraction=0.5))["user_fraction"] == 0.5
