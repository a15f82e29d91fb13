"""Readers: raw files on disk -> `RawData` (three pandas tables with string ids).

Input: a folder in one of the supported layouts, detected by the files it holds:

| layout            | files                                                          |
|-------------------|----------------------------------------------------------------|
| `ml-100k`         | `u.data` (tab: user item rating ts), `u.item` (pipe, latin-1), `u.user`, `u.genre` |
| `ml-latest-small` | `ratings.csv`, `movies.csv`, optional `tags.csv`               |
| `ml-1m`           | `ratings.dat`, `movies.dat` (latin-1), `users.dat`, `::`-separated |
| `generic`         | `interactions.{tsv,csv,parquet}`, optional `items.*`, `users.*` with headers |

Output: `RawData.interactions` with columns `user_id`, `item_id` (str), `timestamp` (int64), optionally
`rating` (float64), and `line` (the 1-based line in the source file, for error messages), in file order;
`RawData.items` with `item_id` and text columns (str; genres joined with `|`); `RawData.users` (or None).
Every problem raises `DataError` naming the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distillrec.data.errors import DataError

LAYOUTS = ("ml-100k", "ml-latest-small", "ml-1m", "generic")
_GENERIC_SUFFIXES = (".tsv", ".csv", ".parquet")


@dataclass(frozen=True)
class RawData:
    interactions: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    layout: str
    files: tuple[Path, ...]


def detect_layout(folder: Path) -> str:
    """Which layout a folder holds; a `DataError` lists what was looked for when none matches."""
    if not folder.is_dir():
        raise DataError(folder, "not a folder (expected a dataset folder or a known dataset name)")
    if (folder / "u.data").exists():
        return "ml-100k"
    if (folder / "ratings.dat").exists():
        return "ml-1m"
    if (folder / "ratings.csv").exists() and (folder / "movies.csv").exists():
        return "ml-latest-small"
    if any((folder / f"interactions{s}").exists() for s in _GENERIC_SUFFIXES):
        return "generic"
    raise DataError(
        folder,
        "no known dataset layout: expected interactions.tsv/.csv/.parquet (generic format), "
        "u.data (MovieLens 100K), ratings.dat (MovieLens 1M) or ratings.csv + movies.csv (MovieLens latest)",
    )


def read_raw(folder: str | Path) -> RawData:
    folder = Path(folder)
    layout = detect_layout(folder)
    reader = {
        "ml-100k": _read_ml100k,
        "ml-latest-small": _read_ml_latest,
        "ml-1m": _read_ml1m,
        "generic": _read_generic,
    }[layout]
    return reader(folder)


# ---------------------------------------------------------------------------------------------- helpers


def _read_table(
    path: Path,
    sep: str,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_NONE,
) -> pd.DataFrame:
    """Read a delimited text file as strings; `line` column = 1-based line number in the file."""
    if not path.exists():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        with open(path, encoding=encoding, newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(path, f"not valid {encoding} text (byte {exc.start}); save the file as {encoding}", line) from None
    header = 0 if names is None else None
    multi = len(sep) > 1
    try:
        from io import StringIO

        frame = pd.read_csv(
            StringIO(text),
            sep=sep,
            header=header,
            names=names,
            dtype=str,
            keep_default_na=False,
            quoting=quoting,
            engine="python" if multi else "c",
            skip_blank_lines=True,
            index_col=False,
        )
    except pd.errors.ParserError as exc:
        raise DataError(path, f"cannot parse: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(path, "file is empty") from None
    if names is None:
        frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(path, "no data rows")
    # Line numbers: blank lines are skipped by pandas, so count them.
    lines = np.array([i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip() != ""], dtype=np.int64)
    first_data = 1 if names is None else 0
    frame["line"] = lines[first_data : first_data + len(frame)]
    return frame


def _read_any(path: Path) -> pd.DataFrame:
    """A generic-format table: .tsv (tab), .csv (comma, quoted) or .parquet; all columns as strings."""
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise DataError(path, f"cannot read Parquet: {exc}") from None
        if frame.empty:
            raise DataError(path, "no data rows")
        frame.columns = [str(c) for c in frame.columns]
        frame = frame.astype(str) if len(frame.columns) else frame
        frame["line"] = np.arange(1, len(frame) + 1)  # for Parquet: row number
        return frame
    if path.suffix == ".csv":
        return _read_table(path, ",", quoting=csv.QUOTE_MINIMAL)
    return _read_table(path, "\t")


def _require(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = [c for c in frame.columns if c != "line"]
        raise DataError(path, f"missing column(s) {missing}; the header has {present}", 1)


def _nonempty(frame: pd.DataFrame, path: Path, column: str) -> None:
    bad = frame[column].str.strip() == ""
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise DataError(path, f"empty {column!r}", int(row["line"]))


def _to_int(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | (values != np.floor(values))
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise DataError(path, f"{column} must be an integer (seconds), got {row[column]!r}", int(row["line"]))
    return values.to_numpy(dtype=np.int64)


def _to_float(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    if values.isna().any():
        row = frame.loc[values.isna().idxmax()]
        raise DataError(path, f"{column} must be a number, got {row[column]!r}", int(row["line"]))
    return values.to_numpy(dtype=np.float64)


def _interactions(frame: pd.DataFrame, path: Path, user: str, item: str, ts: str, rating: str | None):
    _require(frame, path, [user, item, ts] + ([rating] if rating else []))
    for col in (user, item):
        _nonempty(frame, path, col)
    out = pd.DataFrame(
        {
            "user_id": frame[user].str.strip().to_numpy(),
            "item_id": frame[item].str.strip().to_numpy(),
            "timestamp": _to_int(frame, path, ts),
            "line": frame["line"].to_numpy(),
        }
    )
    if rating:
        out["rating"] = _to_float(frame, path, rating)
    return out


def _check_unique(frame: pd.DataFrame, path: Path, column: str) -> None:
    dup = frame[column].duplicated()
    if dup.any():
        row = frame.loc[dup.idxmax()]
        first = frame.loc[frame[column] == row[column], "line"].iloc[0]
        raise DataError(path, f"duplicate {column} {row[column]!r} (first seen on line {first})", int(row["line"]))


def _check_known_items(inter: pd.DataFrame, items: pd.DataFrame, path: Path, items_path: Path) -> None:
    unknown = ~inter["item_id"].isin(set(items["item_id"]))
    if unknown.any():
        row = inter.loc[unknown.idxmax()]
        raise DataError(
            path,
            f"item_id {row['item_id']!r} is not in {items_path.name} "
            f"({int(unknown.sum())} interaction(s) name unknown items)",
            int(row["line"]),
        )


def _check_known_users(inter: pd.DataFrame, users: pd.DataFrame, path: Path, users_path: Path) -> None:
    unknown = ~inter["user_id"].isin(set(users["user_id"]))
    if unknown.any():
        row = inter.loc[unknown.idxmax()]
        raise DataError(path, f"user_id {row['user_id']!r} is not in {users_path.name}", int(row["line"]))


def _entity_table(frame: pd.DataFrame, path: Path, id_col: str) -> pd.DataFrame:
    _require(frame, path, [id_col])
    _nonempty(frame, path, id_col)
    frame = frame.copy()
    frame[id_col] = frame[id_col].str.strip()
    _check_unique(frame, path, id_col)
    return frame.drop(columns="line").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- layouts


def _read_generic(folder: Path) -> RawData:
    def find(stem: str) -> Path | None:
        for suffix in _GENERIC_SUFFIXES:
            if (folder / f"{stem}{suffix}").exists():
                return folder / f"{stem}{suffix}"
        return None

    inter_path = find("interactions")
    assert inter_path is not None
    frame = _read_any(inter_path)
    has_rating = "rating" in frame.columns
    inter = _interactions(frame, inter_path, "user_id", "item_id", "timestamp", "rating" if has_rating else None)
    files = [inter_path]
    items = users = None
    items_path = find("items")
    if items_path is not None:
        items = _entity_table(_read_any(items_path), items_path, "item_id")
        _check_known_items(inter, items, inter_path, items_path)
        files.append(items_path)
    users_path = find("users")
    if users_path is not None:
        users = _entity_table(_read_any(users_path), users_path, "user_id")
        _check_known_users(inter, users, inter_path, users_path)
        files.append(users_path)
    return RawData(inter, items, users, "generic", tuple(files))


def _read_ml100k(folder: Path) -> RawData:
    data_path = folder / "u.data"
    frame = _read_table(data_path, "\t", names=["user", "item", "rating", "ts"])
    inter = _interactions(frame, data_path, "user", "item", "ts", "rating")
    genre_names = _ml100k_genres(folder / "u.genre")
    item_path = folder / "u.item"
    cols = ["item_id", "title", "release_date", "video_release_date", "url"] + genre_names
    raw_items = _read_table(item_path, "|", names=cols, encoding="latin-1")
    flags = raw_items[genre_names].to_numpy() == "1"
    genres = ["|".join(g for g, f in zip(genre_names, row, strict=True) if f) for row in flags]
    items = pd.DataFrame(
        {
            "item_id": raw_items["item_id"].str.strip(),
            "title": raw_items["title"].str.strip(),
            "genres": genres,
            "release_date": raw_items["release_date"].str.strip(),
            "line": raw_items["line"],
        }
    )
    items = _entity_table(items, item_path, "item_id")
    _check_known_items(inter, items, data_path, item_path)
    files = [data_path, item_path]
    users = None
    user_path = folder / "u.user"
    if user_path.exists():
        raw_users = _read_table(user_path, "|", names=["user_id", "age", "gender", "occupation", "zip"])
        users = _entity_table(raw_users, user_path, "user_id")
        files.append(user_path)
    return RawData(inter, items, users, "ml-100k", tuple(files))


def _ml100k_genres(path: Path) -> list[str]:
    if not path.exists():  # the 19 genres of MovieLens 100K, in u.item's column order
        return (
            "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir "
            "Horror Musical Mystery Romance Sci-Fi Thriller War Western"
        ).split()
    frame = _read_table(path, "|", names=["genre", "index"])
    return list(frame.sort_values("index", key=lambda s: s.astype(int))["genre"])


def _read_ml_latest(folder: Path) -> RawData:
    ratings_path = folder / "ratings.csv"
    frame = _read_table(ratings_path, ",", quoting=csv.QUOTE_MINIMAL)
    inter = _interactions(frame, ratings_path, "userId", "movieId", "timestamp", "rating")
    movies_path = folder / "movies.csv"
    movies = _read_table(movies_path, ",", quoting=csv.QUOTE_MINIMAL)
    _require(movies, movies_path, ["movieId", "title", "genres"])
    movies = movies.rename(columns={"movieId": "item_id"})
    movies["genres"] = movies["genres"].replace("(no genres listed)", "")
    items = _entity_table(movies, movies_path, "item_id")
    _check_known_items(inter, items, ratings_path, movies_path)
    files = [ratings_path, movies_path]
    tags_path = folder / "tags.csv"
    if tags_path.exists():
        tags = _read_table(tags_path, ",", quoting=csv.QUOTE_MINIMAL)
        _require(tags, tags_path, ["movieId", "tag"])
        items["tags"] = items["item_id"].map(_top_tags(tags)).fillna("")
        files.append(tags_path)
    return RawData(inter, items, None, "ml-latest-small", tuple(files))


def _top_tags(tags: pd.DataFrame, limit: int = 10) -> dict[str, str]:
    """movieId -> its most frequent distinct tags (case-folded), `|`-joined."""
    tags = tags.assign(tag=tags["tag"].str.strip().str.lower(), movieId=tags["movieId"].str.strip())
    tags = tags[tags["tag"] != ""]
    counts = tags.groupby(["movieId", "tag"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True], kind="stable")
    return {m: "|".join(g["tag"].head(limit)) for m, g in counts.groupby("movieId", sort=False)}


def _read_ml1m(folder: Path) -> RawData:
    ratings_path = folder / "ratings.dat"
    frame = _read_table(ratings_path, "::", names=["user", "item", "rating", "ts"])
    inter = _interactions(frame, ratings_path, "user", "item", "ts", "rating")
    files = [ratings_path]
    items = users = None
    movies_path = folder / "movies.dat"
    if movies_path.exists():
        movies = _read_table(movies_path, "::", names=["item_id", "title", "genres"], encoding="latin-1")
        items = _entity_table(movies, movies_path, "item_id")
        _check_known_items(inter, items, ratings_path, movies_path)
        files.append(movies_path)
    users_path = folder / "users.dat"
    if users_path.exists():
        raw = _read_table(users_path, "::", names=["user_id", "gender", "age", "occupation", "zip"])
        users = _entity_table(raw, users_path, "user_id")
        files.append(users_path)
    return RawData(inter, items, users, "ml-1m", tuple(files))
