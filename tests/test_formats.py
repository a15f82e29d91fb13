"""Readers (`distillrec.data.formats`): the real datasets, every layout, and every way a file can be wrong.

Each bad-input test asserts the three things a user needs to fix the file: which file, which line, what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_generic, write_table

from distillrec.data.dataset import load_dataset, prepare
from distillrec.data.errors import DataError
from distillrec.data.formats import LINE, read_raw

INTERACTIONS = [
    ("user_id", "item_id", "timestamp", "rating"),
    ("u1", "10", 100, 5),
    ("u1", "2", 200, 3),
    ("u2", "10", 150, 4),
    ("u2", "3", 160, 1),
]
ITEMS = [
    ("item_id", "title", "genres"),
    ("2", "Heat, the remake", "Action|Crime"),
    ("3", "Amélie", "Comedy|Romance"),
    ("10", 'The "Quoted" One', "Drama"),
]


# ---------------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ml1m_raw(data_dir):
    return read_raw(data_dir / "ml-1m")


def test_ml100k_raw(data_dir):
    raw = read_raw(data_dir / "ml-100k")
    assert raw.layout == "ml-100k"
    inter = raw.interactions
    assert len(inter) == 100_000
    assert inter["user_id"].nunique() == 943 and inter["item_id"].nunique() == 1682
    assert inter[LINE].tolist()[:3] == [1, 2, 3]  # no header in u.data
    # first line of u.data: "196	242	3	881250949"
    assert inter.iloc[0][["user_id", "item_id", "rating", "timestamp"]].tolist() == [
        "196",
        "242",
        3.0,
        881250949,
    ]
    items = raw.items.set_index("item_id")
    assert len(items) == 1682
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "genres"] == "Animation|Children's|Comedy"
    # u.item is latin-1: byte 0xe9 must come out as "é", not mojibake or an error
    assert items.loc["543", "title"] == "Misérables, Les (1995)"
    assert items.loc["1233", "title"] == "Nénette et Boni (1996)"
    assert len(raw.users) == 943 and raw.users.iloc[0].tolist() == ["1", "24", "M", "technician", "85711"]

    dataset = prepare(raw, name="ml-100k")
    assert (dataset.n_users, dataset.n_items, len(dataset.interactions)) == (943, 1682, 100_000)
    assert (dataset.item_text["title"] != "").all()


def test_ml_latest_small_raw(data_dir):
    raw = read_raw(data_dir / "ml-latest-small")
    assert raw.layout == "ml-latest-small"
    assert len(raw.interactions) == 100_836
    assert raw.interactions["user_id"].nunique() == 610
    assert raw.interactions[LINE].iloc[0] == 2  # line 1 is the header
    items = raw.items.set_index("item_id")
    assert len(items) == 9742
    assert items.loc["11", "title"] == "American President, The (1995)"  # a quoted CSV field with a comma
    assert items.loc["1", "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert items.loc["1", "tags"] == "pixar|fun"  # most frequent tags first, case-folded
    assert (items["tags"] != "").sum() == 1572  # movies with at least one tag

    dataset = prepare(raw, name="ml-latest-small")
    assert (dataset.n_users, dataset.n_items, len(dataset.interactions)) == (610, 9724, 100_836)
    cold = prepare(raw, name="ml-latest-small", keep_cold_items=True)
    assert cold.n_items == 9742 and cold.stats()["items_never_interacted"] == 9742 - 9724


def test_ml1m_generic(ml1m_raw):
    raw = ml1m_raw
    assert raw.layout == "generic"
    assert len(raw.interactions) == 999_611
    assert raw.interactions["user_id"].nunique() == 6040
    assert raw.interactions["item_id"].nunique() == 3416
    assert "rating" not in raw.interactions.columns  # the README: no rating values
    items = raw.items.set_index("item_id")
    assert len(items) == 3883
    assert (
        items.loc["1", "title"] == "Toy Story (1995)"
        and items.loc["1", "genres"] == "Animation|Children's|Comedy"
    )
    assert (
        list(raw.users.columns) == ["user_id", "gender", "age", "occupation", "zip"]
        and len(raw.users) == 6040
    )

    dataset = prepare(raw, name="ml-1m")
    assert (dataset.n_users, dataset.n_items, len(dataset.interactions)) == (6040, 3416, 999_611)
    assert prepare(raw, name="ml-1m", keep_cold_items=True).n_items == 3883
    assert dataset.user_attrs.iloc[0].tolist() == [
        "F",
        "1",
        "10",
        "48067",
    ]  # user "1", first line of users.tsv


def test_amazon_beauty_generic(data_dir):
    dataset = load_dataset(data_dir / "amazon-beauty")
    assert (dataset.n_users, dataset.n_items, len(dataset.interactions)) == (22_284, 12_101, 197_983)
    stats = dataset.stats()
    assert stats["seq_len_min"] == 5  # a 5-core
    assert 0.998 < stats["text_coverage_title"] < 1.0  # README: titles for 99.9% of items
    assert stats["text_coverage_asin"] == 1.0
    assert dataset.item_text["title"].iloc[0] == "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce"


# ---------------------------------------------------------------------------------------------- ml-1m raw


def _write_ml1m_raw(folder: Path, ratings: str) -> Path:
    folder.mkdir()
    (folder / "ratings.dat").write_text(ratings, encoding="ascii")
    movies = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Misérables, Les (1995)::Drama|Musical\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n", encoding="ascii")
    return folder


def test_ml1m_raw_layout(tmp_path):
    folder = _write_ml1m_raw(
        tmp_path / "ml1m", "1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n"
    )
    raw = read_raw(folder)
    assert raw.layout == "ml-1m"
    inter = raw.interactions
    assert inter[["user_id", "item_id"]].to_numpy().tolist() == [["1", "1"], ["1", "2"], ["2", "2"]]
    assert inter["rating"].tolist() == [5.0, 3.0, 4.0]
    assert inter["timestamp"].tolist() == [978300760, 978302109, 978301968]
    assert inter[LINE].tolist() == [1, 2, 3]
    assert raw.items.set_index("item_id").loc["2", "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert raw.users.set_index("user_id").loc["2"].tolist() == ["M", "56", "16", "70072"]


def test_ml1m_raw_wrong_field_count(tmp_path):
    folder = _write_ml1m_raw(tmp_path / "ml1m", "1::1::5::978300760\n1::2::3\n")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    _assert_error(err.value, "ratings.dat", 2, "3 fields, expected 4")


# ---------------------------------------------------------------------------------------------- generic variants


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".parquet"])
def test_generic_variants_agree(tmp_path, suffix):
    """The same table as TSV, CSV (quotes, commas in titles) and Parquet reads to the same dataset."""
    reference = load_dataset(write_generic(tmp_path / "tsv", INTERACTIONS, ITEMS, suffix=".tsv"))
    dataset = load_dataset(write_generic(tmp_path / suffix[1:], INTERACTIONS, ITEMS, suffix=suffix))
    assert dataset.item_ids.tolist() == ["2", "3", "10"]  # numeric ids in numeric order, as strings
    assert dataset.user_ids.tolist() == reference.user_ids.tolist() == ["u1", "u2"]
    for name in ("users", "items", "timestamps"):
        np.testing.assert_array_equal(
            getattr(dataset.interactions, name), getattr(reference.interactions, name)
        )
    # u1: item 10 (t=100), item 2 (t=200); u2 ...
    np.testing.assert_array_equal(dataset.ratings, [5, 3, 4, 1])
    pd.testing.assert_frame_equal(dataset.item_text, reference.item_text)
    assert dataset.item_text["title"].tolist() == ["Heat, the remake", "Amélie", 'The "Quoted" One']


def test_csv_quoted_field_over_two_lines_keeps_line_numbers(make_generic):
    text = 'item_id,title\n1,"A title\nover two lines"\n2,Plain\n2,Again\n'
    folder = make_generic("user_id,item_id,timestamp\nu,1,1\n", items=text, suffix=".csv")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    _assert_error(err.value, "items.csv", 5, "duplicate item_id '2' (first seen on line 4)")


def test_parquet_missing_values_become_empty_text_and_float_ids_match(make_generic):
    inter = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": [1.0, 2.0], "timestamp": [5, 6]})
    items = pd.DataFrame({"item_id": [1, 2], "title": ["One", None]})
    folder = make_generic("", suffix=".parquet")
    inter.to_parquet(folder / "interactions.parquet")
    items.to_parquet(folder / "items.parquet")
    raw = read_raw(folder)
    assert raw.interactions["item_id"].tolist() == ["1", "2"]  # not "1.0": matches the items' int ids
    assert raw.items["title"].tolist() == ["One", ""]  # not "None"


def test_parquet_bad_value_is_reported_by_row(make_generic):
    inter = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "item_id": ["a", "b", "c"], "timestamp": ["1", "2", "soon"]}
    )
    folder = make_generic("", suffix=".parquet")
    inter.to_parquet(folder / "interactions.parquet")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    assert err.value.line == 3 and "interactions.parquet, row 3: timestamp must be an integer" in str(
        err.value
    )


def test_crlf_bom_and_blank_lines(make_generic):
    """Windows line endings, a UTF-8 byte-order mark and blank lines are read; line numbers stay physical."""
    text = "\ufeffuser_id\titem_id\ttimestamp\r\nu1\ti1\t1\r\n\r\n   \r\nu1\ti2\tlater\r\n"
    with pytest.raises(DataError) as err:
        read_raw(make_generic(text))
    _assert_error(err.value, "interactions.tsv", 5, "timestamp must be an integer")
    ok = read_raw(make_generic(text.replace("later", "2"), name="ok"))
    assert ok.interactions[["item_id", "timestamp", LINE]].to_numpy().tolist() == [["i1", 1, 2], ["i2", 2, 5]]


# ---------------------------------------------------------------------------------------------- bad input


def _assert_error(error: DataError, file: str, line: int | None, problem: str) -> None:
    message = str(error)
    assert Path(error.path).name == file, message
    assert error.line == line, message
    where = file if line is None else f"{file}, line {line}"
    assert where in message, message
    assert problem in message, message


HEADER = "user_id\titem_id\ttimestamp\n"
GOOD_ITEMS = "item_id\ttitle\ni1\tOne\ni2\tTwo\n"

BAD_INPUTS = {
    "missing column": (
        "user_id\titem_id\ttime\nu1\ti1\t1\n",
        None,
        "interactions.tsv",
        1,
        "missing column(s) ['timestamp']; the header has ['user_id', 'item_id', 'time']",
    ),
    "non-integer timestamp": (
        HEADER + "u1\ti1\t1\nu1\ti2\t12.5\n",
        None,
        "interactions.tsv",
        3,
        "timestamp must be an integer number of seconds (Unix time), milliseconds or an ISO 8601 date",
    ),
    "a date among integer timestamps": (
        HEADER + "u1\ti1\t1\nu1\ti2\t2020-01-01\n",
        None,
        "interactions.tsv",
        3,
        "got '2020-01-01'",
    ),
    "unknown item id": (
        HEADER + "u1\ti1\t1\nu1\ti2\t2\nu2\tzzz\t3\n",
        GOOD_ITEMS,
        "interactions.tsv",
        4,
        "item_id 'zzz' is not in items.tsv",
    ),
    "duplicate item id": (
        HEADER + "u1\ti1\t1\n",
        "item_id\ttitle\ni1\tOne\ni2\tTwo\ni1\tOne again\n",
        "items.tsv",
        4,
        "duplicate item_id 'i1' (first seen on line 2)",
    ),
    "wrong encoding": (
        HEADER + "u1\ti1\t1\n",
        b"item_id\ttitle\ni1\tOne\ni2\tCaf\xe9\n",
        "items.tsv",
        3,
        "not valid utf-8 text: byte 0xe9",
    ),
    "empty file": ("", None, "interactions.tsv", 1, "file is empty"),
    "header only": (HEADER, None, "interactions.tsv", 2, "only a header, no data rows"),
    "too many fields": (
        HEADER + "u1\ti1\t1\nu1\ti2\t2\tx\n",
        None,
        "interactions.tsv",
        3,
        "4 fields, expected 3 (user_id, item_id, timestamp) separated by tab",
    ),
    "too few fields": (
        HEADER + "u1\ti1\t1\n\nu1\ti2\n",
        None,  # the blank line 3 still counts
        "interactions.tsv",
        4,
        "2 fields, expected 3",
    ),
    "too few fields in items": (
        HEADER + "u1\ti1\t1\n",
        "item_id\ttitle\tgenres\ni1\tOne\tDrama\ni2\tTwo\n",
        "items.tsv",
        3,
        "2 fields, expected 3 (item_id, title, genres)",
    ),
    "empty user id": (HEADER + "u1\ti1\t1\n \ti2\t2\n", None, "interactions.tsv", 3, "empty 'user_id'"),
    "duplicate column": (
        "user_id\titem_id\titem_id\ttimestamp\nu\ti\ti\t1\n",
        None,
        "interactions.tsv",
        1,
        "column 'item_id' appears twice",
    ),
    "stray carriage return": (
        HEADER + "u1\ti1\t1\nu1\ti\r2\t2\n",
        None,
        "interactions.tsv",
        3,
        "carriage return",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_file_line_and_problem(make_generic, case):
    interactions, items, file, line, problem = BAD_INPUTS[case]
    folder = make_generic(interactions, items=items)
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    _assert_error(err.value, file, line, problem)


def test_bad_csv(make_generic):
    folder = make_generic('user_id,item_id,timestamp\nu1,i1,1\nu1,"i2,2\nu2,i3,3\n', suffix=".csv")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    _assert_error(err.value, "interactions.csv", 3, 'is a quote (") left open?')
    folder = make_generic('user_id,item_id,timestamp\nu1,i1,1\nu1,"i,2",2,9\n', suffix=".csv", name="b")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    _assert_error(err.value, "interactions.csv", 3, "4 fields, expected 3")


def test_ml100k_too_many_fields(tmp_path, data_dir):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.genre"):
        (folder / name).write_bytes((data_dir / "ml-100k" / name).read_bytes())
    write_table(folder / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\t7\n")
    with pytest.raises(DataError) as err:
        read_raw(folder)
    _assert_error(err.value, "u.data", 2, "5 fields, expected 4")


def test_two_interaction_files_is_an_error(make_generic):
    folder = make_generic(HEADER + "u1\ti1\t1\n")
    write_table(folder / "interactions.csv", "user_id,item_id,timestamp\nu1,i1,1\n")
    with pytest.raises(DataError, match="both interactions.tsv and interactions.csv exist"):
        read_raw(folder)


def test_unknown_layout_lists_what_was_looked_for(tmp_path):
    (tmp_path / "ratings.txt").write_text("1 2 3\n")
    with pytest.raises(
        DataError, match=r"expected interactions\.tsv/\.csv/\.parquet .*u\.data .*ratings\.dat"
    ):
        read_raw(tmp_path)
