"""The result schema: what a stage writes to its `metrics.json` about the models it evaluated, typed and versioned.

The baselines and teacher stages write `{"schema_version": 1, "models": {name: ModelResult}}`; each
`ModelResult` carries its `kind` (how the report lists it: "baseline", "text_only", "teacher"), its validation
and test summaries, its parameter count and training time, and optionally its head/tail/cold slices and
training curve, plus the stage's own details (a baseline's grid, the teacher's encoder, ...). Readers go through
`read_results`, which also reads the unversioned shape written before the schema existed (rows at the top
level, `schema_version` 0), as the committed benchmark results have it. The students' `metrics.json` and the
run's merged one carry their own `schema_version` (`stages/distill.py`, `stages/report.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["SCHEMA_VERSION", "ModelResult", "StageResults", "read_results", "write_results"]

SCHEMA_VERSION = 1
Kind = Literal["baseline", "text_only", "teacher", "student_kd", "student_plain", "compressed"]


class ModelResult(BaseModel):
    model_config = ConfigDict(extra="allow")  # a stage's own details (grid, encoder, best_epoch, ...)

    kind: Kind
    valid: dict[str, float | int]
    test: dict[str, float | int]
    params: int
    train_seconds: float = 0.0
    slices: dict[str, dict[str, float | int]] | None = None  # {"head": {"users": n, "NDCG@10": ...}, ...}
    history: list[dict[str, Any]] | None = None


class StageResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    models: dict[str, ModelResult]


def read_results(path: str | Path, default_kind: str | None = None) -> dict[str, ModelResult]:
    """The models of a stage's `metrics.json`. A file in the unversioned shape gets `default_kind` for rows
    that name none; another schema version, or a row that does not fit, is an error naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of results, got {type(data).__name__}")
    if "schema_version" not in data:  # version 0: {name: row}
        rows = {n: r for n, r in data.items() if isinstance(r, dict)}
        data = {
            "schema_version": SCHEMA_VERSION,
            "models": {n: {"kind": default_kind, **r} for n, r in rows.items()},
        }
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: results schema version {data.get('schema_version')!r}; this distillrec reads {SCHEMA_VERSION}"
        )
    try:
        return StageResults.model_validate(data).models
    except ValidationError as exc:
        raise ValueError(f"{path}: not a results file of this version:\n{exc}") from None


def write_results(path: str | Path, models: dict[str, dict | ModelResult]) -> None:
    """Write `models` as a versioned results file, checked against the schema first (atomically: a reader never
    sees half a file)."""
    path = Path(path)
    rows = {n: ModelResult.model_validate(r) for n, r in models.items()}
    checked = StageResults(schema_version=SCHEMA_VERSION, models=rows)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(checked.model_dump(mode="json", exclude_unset=True), indent=2, default=str))
    tmp.replace(path)
