"""Readers: raw files on disk -> `RawData` (three pandas tables with string ids).

Input: a folder in one of the supported layouts, detected by the files it holds:

| layout            | files                                                          |
|-------------------|----------------------------------------------------------------|
| `ml-100k`         | `u.data` (tab: user item rating ts), `u.item` (pipe, latin-1), `u.user`, `u.genre` |
| `ml-latest-small` | `ratings.csv`, `movies.csv`, optional `tags.csv`               |
| `ml-1m`           | `ratings.dat`, `movies.dat` (latin-1), `users.dat`, `::`-separated |
| `generic`         | `interactions.{tsv,csv,parquet}`, optional `items.*`, `users.*` with headers |

Output: `RawData.interactions` with columns `user_id`, `item_id` (str), `timestamp` (int64), optionally
`rating` (float64), and `_line` (`LINE`: the 1-based line in the source file, for error messages), in file order;
`RawData.items` with `item_id` and text columns (str; genres joined with `|`); `RawData.users` (or None).
Every problem raises `DataError` naming the file and line: missing columns, rows with the wrong number of
fields, non-integer timestamps, unknown or duplicate ids, undecodable bytes, empty or header-only files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from distillrec.data.errors import DataError
from distillrec.data.timestamps import check_timestamp_format, parse_timestamps

LAYOUTS = ("ml-100k", "ml-latest-small", "ml-1m", "generic")
_GENERIC_SUFFIXES = (".tsv", ".csv", ".parquet")
LINE = "_line"  # internal column: the 1-based source line (Parquet: row) of each row, for error messages


@dataclass(frozen=True)
class ReadOptions:
    """How to read a generic-format folder whose files use other column names or time formats.

    `columns`, `item_columns`, `user_columns`: our column -> the file's column, e.g. {"user_id": "userId",
    "item_id": "productId", "timestamp": "ts", "rating": "stars"} for the interactions file and
    {"item_id": "productId"} for the items file; `timestamp_format`: see `data/timestamps.py`."""

    columns: dict[str, str] = field(default_factory=dict)
    item_columns: dict[str, str] = field(default_factory=dict)
    user_columns: dict[str, str] = field(default_factory=dict)
    timestamp_format: str = "auto"

    def __post_init__(self) -> None:
        check_timestamp_format(self.timestamp_format)
        for name, mapping, known in (
            ("columns", self.columns, ("user_id", "item_id", "timestamp", "rating")),
            ("item_columns", self.item_columns, ("item_id",)),
            ("user_columns", self.user_columns, ("user_id",)),
        ):
            unknown = sorted(set(mapping) - set(known))
            if unknown:
                raise ValueError(f"{name}: {unknown} are not columns we read; map {list(known)}")
            theirs = list(mapping.values())
            twice = sorted({c for c in theirs if theirs.count(c) > 1})
            if twice:
                raise ValueError(f"{name}: the file's column(s) {twice} are mapped to two of ours")
            if LINE in theirs:
                raise ValueError(f"{name}: {LINE!r} is a reserved name, not a column of a file")


@dataclass(frozen=True)
class RawData:
    interactions: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    layout: str
    files: tuple[Path, ...]
    notices: tuple[str, ...] = ()  # how the data was read when it was recognised (e.g. milliseconds)


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


def read_raw(folder: str | Path, options: ReadOptions | None = None) -> RawData:
    """Read a dataset folder; `options` (column names, time format) apply to the generic layout."""
    folder = Path(folder)
    layout = detect_layout(folder)
    options = options or ReadOptions()
    if layout == "generic":
        return _read_generic(folder, options)
    if options != ReadOptions():
        raise DataError(
            folder,
            f"column mapping and timestamp formats apply to the generic layout (interactions.tsv/.csv/.parquet); "
            f"this folder is the raw {layout} layout, read as it is",
        )
    reader = {"ml-100k": _read_ml100k, "ml-latest-small": _read_ml_latest, "ml-1m": _read_ml1m}[layout]
    return reader(folder)


# ---------------------------------------------------------------------------------------------- helpers


def _read_table(
    path: Path,
    sep: str,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_NONE,
    text: str | None = None,
) -> pd.DataFrame:
    """Read a delimited text file as strings; column `LINE` = 1-based line number in the file.

    `names=None`: the first non-blank line is the header. Blank (empty or whitespace-only) lines are skipped.
    Every row must have exactly as many fields as the header (or `names`); a row that does not is reported by
    its line. With `quoting=csv.QUOTE_MINIMAL` (CSV), fields may be quoted and hold separators or line breaks;
    a record's line is the line it starts on.
    """
    text = _read_text(path, encoding) if text is None else text  # `text`: the file's, already read
    if quoting == csv.QUOTE_NONE:
        table = _PlainTable.scan(path, text, sep)
    else:
        table = _QuotedTable.scan(path, text, sep)
    if table.n_records == 0:
        expected = "a header line and data rows" if names is None else f"rows of {', '.join(names)}"
        raise DataError(path, f"file is empty (expected {expected})", 1)
    header_line = None
    if names is None:
        header_line = int(table.numbers[0])
        columns = [c.strip() for c in table.pop_header()]
        _check_header(path, columns, header_line)
        if table.n_records == 0:
            raise DataError(
                path, f"only a header, no data rows (the header is on line {header_line})", header_line + 1
            )
    else:
        columns = list(names)
    bad = np.flatnonzero(table.counts != len(columns))
    if len(bad):
        i = int(bad[0])
        shown = "tab" if sep == "\t" else repr(sep)
        more = "" if len(bad) == 1 else f"; {len(bad)} rows have the wrong number of fields"
        raise DataError(
            path,
            f"{table.counts[i]} fields, expected {len(columns)} ({', '.join(columns)}) separated by {shown}{more}",
            int(table.numbers[i]),
        )
    frame = table.frame(columns)
    if len(frame) != table.n_records:  # cannot happen after the checks above; never misalign line numbers
        raise DataError(path, f"parsed {len(frame)} rows from {table.n_records} lines; unusual file layout")
    frame[LINE] = table.numbers
    frame.attrs["header_line"] = header_line
    return frame


def _read_text(path: Path, encoding: str) -> str:
    """The file's text; a decoding error names the line and byte. A UTF-8 byte-order mark is dropped."""
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a folder, expected a file")
    raw = path.read_bytes()
    if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            path,
            f"not valid {encoding} text: byte 0x{raw[exc.start]:02x} (byte {column} of the line; "
            f"is the file latin-1 / cp1252?); save the file as {encoding}",
            line,
        ) from None


_UNIT_SEP = "\x1f"  # stands in for a multi-character separator so pandas' C parser can split on it


@dataclass
class _PlainTable:
    """Unquoted text split into records: `numbers` (1-based lines) and `counts` (fields) of non-blank lines."""

    body: str  # the records, joined by "\n"
    numbers: np.ndarray  # (n_records,)
    counts: np.ndarray  # (n_records,)
    sep: str

    @staticmethod
    def scan(path: Path, text: str, sep: str) -> _PlainTable:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            line = text.count("\n", 0, text.index("\r")) + 1
            raise DataError(
                path, r"a carriage return (\r) inside a line; save the file with \n line endings", line
            )
        if len(sep) > 1:
            if _UNIT_SEP in text:
                line = text.count("\n", 0, text.index(_UNIT_SEP)) + 1
                raise DataError(path, "contains the control character 0x1f", line)
            text, sep = text.replace(sep, _UNIT_SEP), _UNIT_SEP
        # Vectorised line scan: one segment per line, each ending in its "\n" (a final one is appended).
        data = np.frombuffer((text + "\n").encode("utf-8"), dtype=np.uint8)
        starts = np.concatenate([[0], np.flatnonzero(data == 10)[:-1] + 1])
        n_sep = np.add.reduceat(data == ord(sep), starts, dtype=np.int64)
        n_content = np.add.reduceat(~np.isin(data, (9, 10, 32)), starts, dtype=np.int64)
        blank = (n_content == 0) & (n_sep == 0)
        kept = np.flatnonzero(~blank)
        last_is_empty = starts[-1] == len(data) - 1
        if blank[:-1].any() or (blank[-1] and not last_is_empty):
            lines = text.split("\n")
            body = "\n".join(lines[i] for i in kept)
        else:
            body = text
        return _PlainTable(body, kept + 1, n_sep[kept] + 1, sep)

    @property
    def n_records(self) -> int:
        return len(self.numbers)

    def pop_header(self) -> list[str]:
        header, _, self.body = self.body.partition("\n")
        self.numbers, self.counts = self.numbers[1:], self.counts[1:]
        return header.split(self.sep)

    def frame(self, columns: list[str]) -> pd.DataFrame:
        return pd.read_csv(
            io.StringIO(self.body),
            sep=self.sep,
            header=None,
            names=columns,
            dtype=str,
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
            skip_blank_lines=False,
            index_col=False,
        )


@dataclass
class _QuotedTable:
    """CSV text parsed by the `csv` module (strict quoting): records and the line each one starts on."""

    records: list[list[str]]
    numbers: np.ndarray  # (n_records,)

    @staticmethod
    def scan(path: Path, text: str, sep: str) -> _QuotedTable:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
        records: list[list[str]] = []
        numbers: list[int] = []
        previous_end = 0
        try:
            for row in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                records.append(row)
                numbers.append(start)
        except csv.Error as exc:
            raise DataError(
                path, f'cannot parse CSV ({exc}); is a quote (") left open?', previous_end + 1
            ) from None
        return _QuotedTable(records, np.asarray(numbers, dtype=np.int64))

    @property
    def n_records(self) -> int:
        return len(self.records)

    @property
    def counts(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.records), dtype=np.int64, count=len(self.records))

    def pop_header(self) -> list[str]:
        header, self.records, self.numbers = self.records[0], self.records[1:], self.numbers[1:]
        return header

    def frame(self, columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=columns, dtype=str)


def _check_header(path: Path, columns: list[str], line: int | None) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise DataError(path, f"column {column!r} appears twice in the header", line)
        seen.add(column)
    if LINE in seen:
        raise DataError(path, f"column name {LINE!r} is reserved; rename that column", line)


def _read_any(path: Path) -> pd.DataFrame:
    """A generic-format table: .tsv (tab), .csv (comma, quoted) or .parquet; all columns as strings. A .tsv
    holding quotes is read with quoting as pandas writes it (`"12"" Vinyl"` -> `12" Vinyl`) when that parses
    one record per line; otherwise (a stray quote, not quoting) its fields are read as they are."""
    if path.suffix == ".parquet":
        return _read_parquet(path)
    if path.suffix == ".csv":
        return _read_table(path, ",", quoting=csv.QUOTE_MINIMAL)
    text = _read_text(path, "utf-8")
    if '"' in text:
        try:
            quoted = _read_table(path, "\t", quoting=csv.QUOTE_MINIMAL, text=text)
        except DataError:
            quoted = None
        lines = sum(1 for line in text.splitlines() if line.strip())
        if quoted is not None and len(quoted) + 1 == lines:  # no quoted field spans lines: pandas' quoting
            return quoted
    return _read_table(path, "\t", text=text)


def read_table(path: Path) -> pd.DataFrame:
    """One generic-format table (.tsv, .csv or .parquet) as string columns, with each row's source line in the
    `LINE` column: what readers of other tables (impressions) build on."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    return _read_any(path)


def require_columns(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    """An error naming the file and the missing columns when `frame` lacks any of `columns`."""
    _require(frame, path, columns)


def _read_parquet(path: Path) -> pd.DataFrame:
    """Parquet -> string columns like the text readers give: missing values become "" (never "nan"/"None"),
    whole-number floats are written without ".0" (so float id 3.0 matches id "3" in another file)."""
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise DataError(path, f"cannot read Parquet: {type(exc).__name__}: {exc}") from None
    if table.empty:
        raise DataError(path, "no data rows")
    columns = [str(c) for c in table.columns]
    _check_header(path, columns, None)
    frame = pd.DataFrame(index=table.index)
    for name, column in zip(columns, table.columns, strict=True):
        values = table[column]
        missing = values.isna().to_numpy()
        if pd.api.types.is_float_dtype(values) and np.all(np.mod(values[~missing], 1) == 0):
            values = values.astype("Int64")
        text = values.astype(str).to_numpy(dtype=object)
        text[missing] = ""
        frame[name] = text
    frame = frame.reset_index(drop=True)
    frame[LINE] = np.arange(1, len(frame) + 1)  # for Parquet: the row number
    frame.attrs["header_line"] = None
    return frame


def _require(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = [c for c in frame.columns if c != LINE]
        raise DataError(
            path, f"missing column(s) {missing}; the header has {present}", frame.attrs.get("header_line")
        )


def _nonempty(frame: pd.DataFrame, path: Path, column: str) -> None:
    bad = frame[column].str.strip() == ""
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise DataError(path, f"empty {column!r}", int(row[LINE]))


_MAX_INT = 2**62  # int64 with headroom; larger "integers" have lost precision as floats


def _to_int(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    try:  # fast path: plain integers (pyarrow-backed strings cast in C)
        return frame[column].astype(np.int64).to_numpy()
    except (ValueError, TypeError, OverflowError):
        pass
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    if values.dtype.kind in "iu":
        return values.to_numpy(dtype=np.int64)
    with np.errstate(invalid="ignore"):
        bad = values.isna() | ~np.isfinite(values) | (values != np.floor(values)) | (values.abs() > _MAX_INT)
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise DataError(
            path,
            f"{column} must be an integer number of seconds (Unix time), got {row[column]!r}",
            int(row[LINE]),
        )
    return values.to_numpy(dtype=np.int64)


def _to_float(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    try:
        values = frame[column].astype(np.float64)
    except (ValueError, TypeError, OverflowError):
        values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise DataError(path, f"{column} must be a finite number, got {row[column]!r}", int(row[LINE]))
    return values.to_numpy(dtype=np.float64)


def _interactions(
    frame: pd.DataFrame,
    path: Path,
    user: str,
    item: str,
    ts: str,
    rating: str | None,
    timestamp_format: str = "unix",
) -> tuple[pd.DataFrame, str | None]:
    """The interactions table and a notice on how its timestamps were read (`data/timestamps.py`)."""
    _require(frame, path, [user, item, ts] + ([rating] if rating else []))
    for col in (user, item):
        _nonempty(frame, path, col)
    seconds, notice = parse_timestamps(frame, path, ts, timestamp_format)
    out = pd.DataFrame(
        {
            "user_id": frame[user].str.strip().to_numpy(),
            "item_id": frame[item].str.strip().to_numpy(),
            "timestamp": seconds,
            LINE: frame[LINE].to_numpy(),
        }
    )
    if rating:
        out["rating"] = _to_float(frame, path, rating)
    return out, notice


def _check_unique(frame: pd.DataFrame, path: Path, column: str) -> None:
    dup = frame[column].duplicated()
    if dup.any():
        row = frame.loc[dup.idxmax()]
        first = frame.loc[frame[column] == row[column], LINE].iloc[0]
        raise DataError(
            path, f"duplicate {column} {row[column]!r} (first seen on line {first})", int(row[LINE])
        )


def _check_known_items(inter: pd.DataFrame, items: pd.DataFrame, path: Path, items_path: Path) -> None:
    unknown = ~inter["item_id"].isin(set(items["item_id"]))
    if unknown.any():
        row = inter.loc[unknown.idxmax()]
        raise DataError(
            path,
            f"item_id {row['item_id']!r} is not in {items_path.name} "
            f"({int(unknown.sum())} interaction(s) name unknown items)",
            int(row[LINE]),
        )


def _check_known_users(inter: pd.DataFrame, users: pd.DataFrame, path: Path, users_path: Path) -> None:
    unknown = ~inter["user_id"].isin(set(users["user_id"]))
    if unknown.any():
        row = inter.loc[unknown.idxmax()]
        raise DataError(path, f"user_id {row['user_id']!r} is not in {users_path.name}", int(row[LINE]))


def _entity_table(frame: pd.DataFrame, path: Path, id_col: str) -> pd.DataFrame:
    _require(frame, path, [id_col])
    _nonempty(frame, path, id_col)
    frame = frame.copy()
    frame[id_col] = frame[id_col].str.strip()
    _check_unique(frame, path, id_col)
    return frame.drop(columns=LINE).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- layouts


def _renamed(frame: pd.DataFrame, path: Path, mapping: dict[str, str]) -> pd.DataFrame:
    """`frame` with the file's columns renamed to ours; a mapped column the file lacks names the ones it has."""
    if not mapping:
        return frame
    _require(frame, path, list(mapping.values()))
    clash = sorted(set(mapping) & set(frame.columns) - set(mapping.values()))
    if clash:
        raise DataError(
            path,
            f"maps other columns to {clash}, which the file also has; map or rename one of them",
            frame.attrs.get("header_line"),
        )
    renamed = frame.rename(columns={v: k for k, v in mapping.items()})
    renamed.attrs = frame.attrs
    return renamed


def _read_generic(folder: Path, options: ReadOptions) -> RawData:
    def find(stem: str) -> Path | None:
        found = [
            folder / f"{stem}{suffix}"
            for suffix in _GENERIC_SUFFIXES
            if (folder / f"{stem}{suffix}").exists()
        ]
        if len(found) > 1:
            names = " and ".join(f.name for f in found)
            raise DataError(folder, f"both {names} exist; keep one so it is clear which to read")
        return found[0] if found else None

    inter_path = find("interactions")
    if inter_path is None:
        raise DataError(folder, "no interactions.tsv, interactions.csv or interactions.parquet")
    frame = _renamed(_read_any(inter_path), inter_path, options.columns)
    has_rating = "rating" in frame.columns
    inter, notice = _interactions(
        frame,
        inter_path,
        "user_id",
        "item_id",
        "timestamp",
        "rating" if has_rating else None,
        options.timestamp_format,
    )
    files = [inter_path]
    items = users = None
    items_path = find("items")
    if items_path is not None:
        items_frame = _renamed(_read_any(items_path), items_path, options.item_columns)
        items = _entity_table(items_frame, items_path, "item_id")
        _check_known_items(inter, items, inter_path, items_path)
        files.append(items_path)
    elif options.item_columns:
        raise DataError(
            folder, "item columns are mapped, but there is no items.tsv, items.csv or items.parquet"
        )
    users_path = find("users")
    if users_path is not None:
        users_frame = _renamed(_read_any(users_path), users_path, options.user_columns)
        users = _entity_table(users_frame, users_path, "user_id")
        _check_known_users(inter, users, inter_path, users_path)
        files.append(users_path)
    elif options.user_columns:
        raise DataError(
            folder, "user columns are mapped, but there is no users.tsv, users.csv or users.parquet"
        )
    return RawData(inter, items, users, "generic", tuple(files), (notice,) if notice else ())


def _read_ml100k(folder: Path) -> RawData:
    data_path = folder / "u.data"
    frame = _read_table(data_path, "\t", names=["user", "item", "rating", "ts"])
    inter, _ = _interactions(frame, data_path, "user", "item", "ts", "rating")
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
            LINE: raw_items[LINE],
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
    order = np.argsort(_to_int(frame, path, "index"), kind="stable")
    return list(frame["genre"].to_numpy()[order])


def _read_ml_latest(folder: Path) -> RawData:
    ratings_path = folder / "ratings.csv"
    frame = _read_table(ratings_path, ",", quoting=csv.QUOTE_MINIMAL)
    inter, _ = _interactions(frame, ratings_path, "userId", "movieId", "timestamp", "rating")
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
    inter, _ = _interactions(frame, ratings_path, "user", "item", "ts", "rating")
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
