"""Timestamps of any common form -> integer Unix seconds, with the line of the first value that is not one.

`timestamp_format`:
- "auto" (the default): integers are Unix seconds, or milliseconds when they reach 1e11 (the year 5138 in
  seconds, 1973 in milliseconds; said in a notice); anything else must be an ISO 8601 date or date-time
  (`2016-07-18`, `2016-07-18T00:00:00Z`, `2016-07-18 13:05:00+02:00`; said in a notice);
- "unix": integer seconds; "unix_ms": integer milliseconds; "iso": ISO 8601 dates and date-times;
- any `strftime` pattern holding a "%" (e.g. "%d/%m/%Y %H:%M").
Dates without a time are midnight UTC; date-times without an offset are read as UTC; fractions of a second are
dropped (floor).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from distillrec.data.errors import DataError

__all__ = ["TIMESTAMP_FORMATS", "check_timestamp_format", "parse_timestamps"]

TIMESTAMP_FORMATS = ("auto", "unix", "unix_ms", "iso")
_MILLISECONDS_FROM = 1e11
_MAX_INT = 2**62  # int64 with headroom; larger "integers" have lost precision as floats
_LINE = "_line"


def check_timestamp_format(fmt: str) -> str:
    if fmt not in TIMESTAMP_FORMATS and "%" not in fmt:
        raise ValueError(
            f"timestamp format {fmt!r}: choose one of {list(TIMESTAMP_FORMATS)} or a strftime pattern such as "
            "'%d/%m/%Y'"
        )
    return fmt


def parse_timestamps(
    frame: pd.DataFrame, path: Path, column: str, fmt: str = "auto"
) -> tuple[np.ndarray, str | None]:
    """(n,) int64 Unix seconds of `frame[column]` (strings), and a notice saying how they were read when the
    format was recognised ("auto") as other than seconds."""
    check_timestamp_format(fmt)
    if fmt in ("auto", "unix", "unix_ms"):  # fast path: plain integers (pyarrow-backed strings cast in C)
        try:
            fast = frame[column].astype(np.int64).to_numpy()
        except (ValueError, TypeError, OverflowError):
            fast = None
        if fast is not None and (
            fmt == "unix" or (fmt == "auto" and np.abs(fast).max(initial=0) < _MILLISECONDS_FROM)
        ):
            return fast, None
    text = frame[column].astype(str).str.strip()
    if fmt in ("auto", "unix", "unix_ms"):
        numbers = pd.to_numeric(text, errors="coerce")
        with np.errstate(invalid="ignore"):
            integral = (
                numbers.notna()
                & np.isfinite(numbers)
                & (numbers == np.floor(numbers))
                & (numbers.abs() <= _MAX_INT)
            )
        if fmt == "auto" and not integral.all() and not integral.any():
            return _dates(frame, path, column, text, None, auto=True)
        if not integral.all():
            what = "milliseconds" if fmt == "unix_ms" else "seconds (Unix time)"
            hint = "" if fmt != "auto" else ", milliseconds or an ISO 8601 date (2016-07-18T00:00:00Z)"
            _fail(frame, path, column, ~integral, f"must be an integer number of {what}{hint}")
        values = numbers.to_numpy(dtype=np.float64)
        try:  # exact for plain integer strings (a float would round values beyond 2**53)
            seconds = text.astype(np.int64).to_numpy()
        except (ValueError, TypeError, OverflowError):
            seconds = values.astype(np.int64)
        milliseconds = fmt == "unix_ms" or (fmt == "auto" and np.abs(values).max() >= _MILLISECONDS_FROM)
        if not milliseconds:
            return seconds, None
        notice = None
        if fmt == "auto":
            notice = (
                f"{path.name}: {column} read as Unix milliseconds (values up to {int(np.abs(values).max()):,} are too "
                "large for seconds); give --timestamp-format unix to read them as seconds"
            )
        return np.floor_divide(seconds, 1000), notice
    return _dates(frame, path, column, text, None if fmt == "iso" else fmt, auto=False)


def _dates(frame, path: Path, column: str, text: pd.Series, pattern: str | None, auto: bool):
    parsed = pd.to_datetime(text, utc=True, format=pattern or "ISO8601", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        expected = (
            "must be Unix seconds, milliseconds or an ISO 8601 date (2016-07-18 or 2016-07-18T00:00:00Z); give "
            "--timestamp-format with a strftime pattern for another form"
            if auto
            else f"does not match the timestamp format {pattern or 'ISO 8601'!r}"
        )
        _fail(frame, path, column, bad, expected)
    seconds = parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)
    notice = f"{path.name}: {column} read as ISO 8601 dates (UTC when no offset is given)" if auto else None
    return seconds, notice


def _fail(frame: pd.DataFrame, path: Path, column: str, bad: pd.Series, expected: str) -> None:
    first = frame.loc[bad.to_numpy().argmax()]
    count = int(bad.sum())
    more = "" if count == 1 else f" ({count} such values)"
    raise DataError(path, f"{column} {expected}, got {first[column]!r}{more}", int(first[_LINE]))
