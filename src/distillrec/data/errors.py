"""The one exception type that bad user input raises.

Every reader and loader checks its input and raises `DataError` naming the file, the line (1-based, counting
the header as line 1) where it knows it, and what it expected, so a user never sees a traceback from deep
inside pandas. Parquet files have rows, not lines: there the position is `row N` (1-based, data rows only).
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data is malformed: the message names the file, the line and what was expected."""

    def __init__(
        self, path: str | Path, problem: str, line: int | None = None, *, unit: str | None = None
    ) -> None:
        if unit is None:
            unit = "row" if str(path).endswith(".parquet") else "line"
        where = f"{path}" if line is None else f"{path}, {unit} {line}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem
