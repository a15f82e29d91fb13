"""Shared fixtures: the real datasets folder, small generic-format folders written into `tmp_path`, a small
run whose model folders the serving tests serve, and a fixed-score model for the wrappers' tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distillrec.models.base import Recommender

Table = Sequence[Sequence[object]] | str | bytes  # rows with the header first, or the file's exact content


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared datasets folder named by DISTILLREC_DATA_DIR (holding ml-100k/, ml-1m/, ...)."""
    value = os.environ.get("DISTILLREC_DATA_DIR")
    if not value:
        pytest.skip("DISTILLREC_DATA_DIR is not set: real-dataset tests need it (e.g. ../shared/datasets)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(
            f"DISTILLREC_DATA_DIR={value} is not a folder: real-dataset tests need the shared datasets"
        )
    return path


def write_table(path: Path, table: Table) -> Path:
    """Write one table: `str` as UTF-8 text and `bytes` verbatim; rows (header first) as .tsv, .csv or .parquet."""
    if isinstance(table, bytes):
        path.write_bytes(table)
    elif isinstance(table, str):
        path.write_bytes(table.encode("utf-8"))
    else:
        header, *rows = table
        frame = pd.DataFrame([list(r) for r in rows], columns=list(header))
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            lines = ["\t".join(str(v) for v in row) for row in [header, *rows]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_generic(
    folder: Path,
    interactions: Table,
    items: Table | None = None,
    users: Table | None = None,
    suffix: str = ".tsv",
) -> Path:
    """A generic-format dataset folder: interactions{suffix} and, when given, items{suffix} / users{suffix}."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, table in (("interactions", interactions), ("items", items), ("users", users)):
        if table is not None:
            write_table(folder / f"{stem}{suffix}", table)
    return folder


@pytest.fixture
def make_generic(tmp_path: Path) -> Callable[..., Path]:
    """`make_generic(interactions, items=None, users=None, suffix=".tsv", name="data")` -> a new folder."""

    def make(
        interactions: Table,
        items: Table | None = None,
        users: Table | None = None,
        suffix: str = ".tsv",
        name: str = "data",
    ) -> Path:
        return write_generic(tmp_path / name, interactions, items, users, suffix)

    return make


def write_ml100k_slice(
    data_dir: Path,
    folder: Path,
    n_users: int,
    used_items_only: bool = False,
    item_columns: tuple[str, ...] = ("title", "genres"),
    ratings: bool = False,
) -> Path:
    """The first `n_users` users of ml-100k as a generic-format folder (interactions.tsv, with the rating column
    when `ratings`; items.tsv with `item_columns`, of every item or only of the items those users have)."""
    from distillrec.data.dataset import load_dataset

    ds = load_dataset(data_dir / "ml-100k")
    inter = ds.interactions
    keep = inter.users < n_users
    table = pd.DataFrame(
        {
            "user_id": ds.user_ids[inter.users[keep]],
            "item_id": ds.item_ids[inter.items[keep]],
            "timestamp": inter.timestamps[keep],
        }
    )
    if ratings:
        table["rating"] = ds.ratings[keep]
    table.to_csv(folder / "interactions.tsv", sep="\t", index=False)
    items = ds.item_text[list(item_columns)].assign(item_id=ds.item_ids)[["item_id", *item_columns]]
    if used_items_only:
        items = items.iloc[np.unique(inter.items[keep])]
    items.to_csv(folder / "items.tsv", sep="\t", index=False)
    return folder


@pytest.fixture(scope="session")
def serve_run(data_dir, tmp_path_factory):
    """A run on the first 60 users of ml-100k: tiny teacher (MiniLM text) and a KD SASRec student."""
    from distillrec.config import parse_config
    from distillrec.pipeline import run_pipeline

    source = write_ml100k_slice(
        data_dir, tmp_path_factory.mktemp("ml100k-60"), n_users=60, used_items_only=True
    )
    config = parse_config(
        {
            "name": "serve",
            "dataset": {"source": str(source), "min_item_interactions": 3},
            "baselines": {
                "models": ["mostpop", "ease", "ials"],
                "grids": {"ease": [{"l2": 100.0}], "ials": [{"factors": 8, "iterations": 3}]},
            },
            "teacher": {"dim": 16, "max_epochs": 2, "top_k": 10, "adapter_hidden": 16, "max_len": 50},
            "students": [
                {"name": "sasrec", "params": {"dim": 8, "max_epochs": 2, "max_len": 50}, "kd": ["param_init"]}
            ],
            "seeds": [0],
            "progress": False,
        }
    )
    runs = tmp_path_factory.mktemp("runs")
    return run_pipeline(config, runs_root=runs, run_dir=runs / "serve-1", log=lambda m: None)


@pytest.fixture(scope="session")
def student_dir(serve_run):
    """The KD student of `serve_run`."""
    return serve_run / "students" / "sasrec-param_init" / "model"


class PopularityStub(Recommender):
    """A fitted model that gives every user the same item scores (the wrappers' tests put it under them)."""

    def __init__(self, item_scores: np.ndarray) -> None:
        self.item_scores = item_scores

    def fit(self, train, valid=None):
        return self

    def score(self, users, history):
        return np.tile(self.item_scores, (len(users), 1)).astype(np.float32)

    def n_params(self) -> int:
        return len(self.item_scores)
