"""The one exception type that bad user input raises.

Every reader and loader checks its input and raises `DataError` naming the file, the line (1-based, counting
the header as line 1) where it knows it, and what it expected, so a user never sees a traceback from deep
inside pandas.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data is malformed: the message names the file, the line and what was expected."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem
