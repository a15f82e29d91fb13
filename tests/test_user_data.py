"""A user's own data and a user's own mistakes: a shop export with its own column names, ISO dates and a
description column goes through every command with options only; time formats are recognised and said; what
preparation drops is said; no mistake prints a traceback."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.config import ConfigError, load_config
from distillrec.data.dataset import load_dataset
from distillrec.data.errors import DataError
from distillrec.data.formats import ReadOptions

N_USERS, N_ITEMS, PER_USER = 40, 16, 8


def shop_export(folder, duplicate: bool = True):
    """interactions.csv with userId, productId, rating, ts (ISO date-times), items.csv with productId, title,
    description (a pandas-quoted title among them); the first user buys one product twice."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["userId,productId,rating,ts"]
    for u in range(N_USERS):
        start = int(rng.integers(N_ITEMS))
        for t in range(PER_USER):
            day = 1 + t + (u % 5)
            lines.append(
                f"c{u},p{(start + t) % N_ITEMS},{1 + (u + t) % 5},2016-07-{day:02d}T{u % 24:02d}:00:00Z"
            )
    if duplicate:
        lines.append(lines[1].replace("T00:00:00Z", "T23:00:00Z"))
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n")
    items = ["productId,title,description"]
    items += [f'p{i},"{12 + i}"" Vinyl {i}",record number {i} with a sleeve' for i in range(N_ITEMS)]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    return folder


MAPPING = [
    "--columns",
    "user_id=userId,item_id=productId,timestamp=ts,rating=rating",
    "--item-columns",
    "item_id=productId",
]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_shop_export_goes_through_every_command_with_options_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    data = str(shop_export(tmp_path / "shop"))

    stats = run("data", "stats", data, *MAPPING, "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["interactions"] == N_USERS * PER_USER  # the repeated purchase dropped
    assert "read as ISO 8601 dates" in stats.output and "dropped 1 repeated (user, item)" in stats.output

    baselines = run(
        "baselines", data, *MAPPING, "--out", str(tmp_path / "b"), "--models", "mostpop,ease", "--quick"
    )
    assert baselines.exit_code == 0, baselines.output
    teacher = run(
        "teacher",
        data,
        *MAPPING,
        "--out",
        str(tmp_path / "t"),
        "--dim",
        "16",
        "--max-epochs",
        "2",
        "--top-k",
        "5",
    )
    assert teacher.exit_code == 0, teacher.output
    texts = (tmp_path / "t" / "item_texts.txt").read_text().splitlines()
    assert (
        texts[0] == '12" Vinyl 0. Description: record number 0 with a sleeve'
    )  # quotes read as pandas writes them
    distill = run(
        "distill", data, *MAPPING, "--teacher", str(tmp_path / "t"), "--student", "sasrec", "--kd", "soft",
        "--dim", "8", "--max-epochs", "2", "--out", str(tmp_path / "d"),
    )  # fmt: skip
    assert distill.exit_code == 0, distill.output
    top = run("recommend", str(tmp_path / "d" / "model"), "--user", "c3", "--k", "5", "--json")
    assert top.exit_code == 0 and len(json.loads(top.stdout.splitlines()[-1])["items"]) == 5


@pytest.mark.parametrize(
    ("values", "fmt", "expected", "notice"),
    [
        (["1468800000", "1468886400"], "auto", [1468800000, 1468886400], None),
        (["1468800000123", "1468886400999"], "auto", [1468800000, 1468886400], "read as Unix milliseconds"),
        (["1468800000123", "1468886400999"], "unix_ms", [1468800000, 1468886400], None),
        (["2016-07-18", "2016-07-19T00:00:00Z"], "auto", [1468800000, 1468886400], "read as ISO 8601 dates"),
        (["2016-07-18T02:00:00+02:00", "2016-07-19"], "iso", [1468800000, 1468886400], None),
        (["18/07/2016", "19/07/2016"], "%d/%m/%Y", [1468800000, 1468886400], None),
    ],
)
def test_timestamp_formats(make_generic, values, fmt, expected, notice):
    rows = [("user_id", "item_id", "timestamp"), ("u", "a", values[0]), ("u", "b", values[1])]
    dataset = load_dataset(make_generic(rows), read_options=ReadOptions(timestamp_format=fmt))
    assert dataset.interactions.timestamps.tolist() == expected
    assert any(notice in n for n in dataset.notices) if notice else not dataset.notices


@pytest.mark.parametrize(
    ("values", "fmt", "line", "message"),
    [
        (
            ["1", "soon"],
            "auto",
            3,
            "timestamp must be an integer number of seconds (Unix time), milliseconds or",
        ),
        (["2016-07-18", "18/07/2016"], "auto", 3, "must be Unix seconds, milliseconds or an ISO 8601 date"),
        (
            ["2016-07-18", "1"],
            "unix",
            2,
            "must be an integer number of seconds (Unix time), got '2016-07-18'",
        ),
        (["18/07/2016", "2016-07-18"], "%d/%m/%Y", 3, "does not match the timestamp format '%d/%m/%Y'"),
    ],
)
def test_timestamps_that_fit_no_format_are_named(make_generic, values, fmt, line, message):
    rows = [("user_id", "item_id", "timestamp"), ("u", "a", values[0]), ("u", "b", values[1])]
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_dataset(make_generic(rows), read_options=ReadOptions(timestamp_format=fmt))
    assert info.value.line == line


def test_preparation_says_what_it_dropped_and_warns_of_odd_times(make_generic):
    rows = [("user_id", "item_id", "timestamp", "rating")]
    rows += [("u1", "a", -5, 5), ("u1", "a", 1, 5), ("u1", "b", 2, 1)]  # a repeat, a low rating
    rows += [("u2", "a", 3, 5), ("u2", "c", 4, 5), ("u3", "c", 9999999999, 4)]  # u3: in the future
    notices = "\n".join(load_dataset(make_generic(rows), min_rating=2, min_user_interactions=2).notices)
    assert "1 timestamp(s) before 1970" in notices and "1 timestamp(s) in the future" in notices
    assert "min_rating=2: dropped 1 of 6 interactions" in notices
    assert "duplicates='first': dropped 1 repeated (user, item) interactions" in notices
    assert (
        "k-core (users >= 2, items >= 0 interactions): dropped 2 users, 0 items and 2 interactions" in notices
    )


def test_mapped_columns_the_file_lacks_are_named(make_generic):
    rows = [("userId", "productId", "ts"), ("u", "a", 1)]
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['stamp'\]; the header has \['userId', 'productId', 'ts'\]"
    ):
        load_dataset(
            make_generic(rows),
            read_options=ReadOptions({"user_id": "userId", "item_id": "productId", "timestamp": "stamp"}),
        )
    with pytest.raises(ValueError, match=r"columns: \['user'\] are not columns we read"):
        ReadOptions({"user": "userId"})


# Each invalid invocation: a one-line error naming what is wrong, exit code 2, never a traceback.
MISTAKES = [
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "sasrec",
            "--kd",
            "soft",
            "--dim",
            "-5",
            "--out",
            "{out}",
        ],
        "--dim",
    ),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "sasrec",
            "--kd",
            "soft",
            "--max-epochs",
            "-1",
            "--out",
            "{out}",
        ],
        "--max-epochs",
    ),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "sasrec",
            "--kd",
            "softt",
            "--out",
            "{out}",
        ],
        "softt",
    ),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "bert",
            "--kd",
            "soft",
            "--out",
            "{out}",
        ],
        "bert",
    ),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "sasrec",
            "--kd",
            "soft",
            "--seeds",
            "a",
            "--out",
            "{out}",
        ],
        "--seeds",
    ),
    (["teacher", "{data}", "--out", "{out}", "--dropout", "1.5"], "--dropout"),
    (["teacher", "{data}", "--out", "{out}", "--dim", "0"], "--dim"),
    (["baselines", "{data}", "--out", "{out}", "--models", "eas"], "eas"),
    (["baselines", "{data}", "--out", "{out}", "--split", "loo"], "--split"),
    (["data", "stats", "{data}", "--columns", "user_id"], "--columns"),
    (["data", "stats", "{data}", "--columns", "user=userId"], "user"),
    (["data", "stats", "{data}", "--timestamp-format", "weekly"], "weekly"),
    (["data", "stats", "{data}", "--min-user", "-1"], "--min-user"),
    (["data", "stats", "{data}", "--duplicates", "some"], "--duplicates"),
    (["data", "stats", "{missing}"], "no such folder"),
    (["data", "stats", "{data}", "--columns", "item_id=productId"], "productId"),
    (["recommend", "{out}", "--user", "1"], "no model manifest"),
    (["recommend", "{data}"], "--user"),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{teacher}",
            "--student",
            "sasrec",
            "--kd",
            "soft",
            "--seeds",
            "",
            "--out",
            "{out}",
        ],
        "--seeds",
    ),
    (
        [
            "distill",
            "{data}",
            "--teacher",
            "{missing}",
            "--student",
            "sasrec",
            "--kd",
            "soft",
            "--out",
            "{out}",
        ],
        "--teacher",
    ),
    (["run", "{missing}/c.yaml"], "no such config file"),
    (["tune", "{missing}/c.yaml"], "no such config file"),
    (["report", "{missing}"], "nowhere"),
]


@pytest.mark.parametrize(("args", "named"), MISTAKES, ids=[" ".join(a[:3]) + f" {n}" for a, n in MISTAKES])
def test_mistakes_get_one_line_and_no_traceback(tmp_path, make_generic, args, named):
    rows = [("user_id", "item_id", "timestamp")] + [
        (f"u{u}", f"i{(u + t) % 6}", t) for u in range(6) for t in range(4)
    ]
    data = make_generic(rows)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "manifest.json").write_text(json.dumps({"config": {"split": {"protocol": "leave_one_out"}}}))
    filled = [
        a.format(data=data, teacher=teacher, out=tmp_path / "out", missing=tmp_path / "nowhere") for a in args
    ]
    result = CliRunner().invoke(app, filled)
    output = " ".join(result.output.split())  # the message wraps where the terminal width and the path fall
    assert result.exit_code == 2, output
    assert named in output and "Traceback" not in output


def test_a_config_with_no_seeds_is_refused_at_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\ndataset: {source: ml-100k, timestamp_format: iso}\nseeds: []\n")
    with pytest.raises(ConfigError, match="seeds"):
        load_config(path)
    path.write_text("name: t\ndataset: {source: ml-100k, timestamp_format: weekly}\n")
    with pytest.raises(ConfigError, match="timestamp format 'weekly'"):
        load_config(path)


def test_tsv_quoting_is_read_as_pandas_writes_it(make_generic):
    rows = [("user_id", "item_id", "timestamp"), ("u", "a", 1), ("u", "b", 2)]
    items = 'item_id\ttitle\na\t"12"" Vinyl"\nb\t7" single, "live"\n'  # pandas' quoting; a stray quote
    dataset = load_dataset(make_generic(rows, items=items))
    assert dataset.item_text["title"].tolist() == ['12" Vinyl', '7" single, "live"']


def test_a_damaged_prepared_data_folder_is_named(make_generic, tmp_path):
    from distillrec.config import DatasetConfig, SplitConfig
    from distillrec.stages.data import prepare_data, read_prepared

    rows = [("user_id", "item_id", "timestamp")] + [
        (f"u{u}", f"i{(u + t) % 6}", t) for u in range(6) for t in range(4)
    ]
    folder = tmp_path / "prepared"
    prepared = prepare_data(DatasetConfig(source=str(make_generic(rows))), SplitConfig(), folder)
    again = read_prepared(folder)
    assert np.array_equal(again.split.test.items, prepared.split.test.items)
    (folder / "split.npz").write_bytes((folder / "split.npz").read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"split.npz: its size or checksum differs"):
        read_prepared(folder)
    (folder / "ids.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"ids.json: missing"):
        read_prepared(folder)


def test_a_missing_encoder_folder_is_found_when_the_config_loads(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"name: t\ndataset: {{source: ml-100k}}\nteacher: {{encoder: {tmp_path}/no-such-model}}\n"
    )
    with pytest.raises(ConfigError, match="teacher.encoder: .*no such encoder folder"):
        load_config(path)


def test_data_too_thin_to_split_is_one_line_before_any_training(make_generic, tmp_path):
    rows = [("user_id", "item_id", "timestamp")] + [(f"u{u}", f"i{u % 5}", u) for u in range(20)]
    result = CliRunner().invoke(app, ["baselines", str(make_generic(rows)), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "leaves no validation or test interaction" in result.output and "at least 3" in result.output


def test_a_tsv_whose_quotes_would_join_lines_is_read_as_it_is(make_generic):
    rows = [("user_id", "item_id", "timestamp"), ("u", "1", 1), ("u", "2", 2), ("u", "3", 3)]
    items = 'item_id\ttitle\n1\t"open\n2\tmiddle\n3\tclose"\n'  # stray quotes: three records, not one
    dataset = load_dataset(make_generic(rows, items=items))
    assert dataset.item_text["title"].tolist() == ['"open', "middle", 'close"']


def test_mapping_mistakes_and_1970_times_are_said(make_generic):
    with pytest.raises(
        ValueError, match=r"columns: the file's column\(s\) \['id'\] are mapped to two of ours"
    ):
        ReadOptions({"user_id": "id", "item_id": "id"})
    with pytest.raises(ValueError, match="reserved name"):
        ReadOptions({"user_id": "_line"})
    rows = [("user_id", "item_id", "timestamp"), ("u", "a", 20160718), ("u", "b", 20160719)]
    notices = load_dataset(make_generic(rows)).notices
    assert any("every timestamp is in 1970" in n and "%Y%m%d" in n for n in notices)


def test_a_data_error_in_distill_is_the_datas_not_the_teachers(make_generic, tmp_path):
    rows = [("user_id", "item_id", "timestamp"), ("u", "a", 1), ("u", "b", "soon")]
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "manifest.json").write_text(json.dumps({"config": {"split": {"protocol": "leave_one_out"}}}))
    args = [
        "distill",
        str(make_generic(rows)),
        "--teacher",
        str(teacher),
        "--student",
        "sasrec",
        "--kd",
        "soft",
    ]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert (
        result.exit_code == 2
        and "interactions.tsv, line 3" in result.output.replace("\n", "")
        and "--teacher" not in result.output
    )
