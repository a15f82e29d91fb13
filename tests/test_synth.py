"""The synthetic data generator: sizes, the structure it promises (power-law popularity, drifting interests,
text naming the topic), determinism, and that the loader reads it like a user's own folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.data.dataset import load_dataset
from distillrec.data.synth import SynthSettings, synthesize


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthesize(2_000, 3_000, 60_000, tmp_path_factory.mktemp("synth"), SynthSettings(n_topics=20))


def test_sizes_lengths_and_time_order(synth):
    inter = pd.read_parquet(synth / "interactions.parquet")
    items = pd.read_parquet(synth / "items.parquet")
    assert len(inter) == 60_000 and len(items) == 3_000
    lengths = inter.groupby("user_id").size()
    assert (
        len(lengths) == 2_000 and lengths.min() >= 5 and lengths.max() > 5 * lengths.median()
    )  # a long tail
    assert inter.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()
    assert inter.duplicated(["user_id", "item_id"]).mean() < 0.05  # repeats are drawn again


def test_popularity_is_a_power_law_and_text_names_the_topic(synth):
    inter = pd.read_parquet(synth / "interactions.parquet")
    counts = np.sort(inter["item_id"].value_counts().to_numpy())[::-1]
    assert counts[:30].sum() / counts.sum() > 0.05  # the top 1% of items hold far more than 1% of the rows
    items = pd.read_parquet(synth / "items.parquet").set_index("item_id")
    assert items["genres"].nunique() == 20
    # a user's items share few topics: drifting interests, not uniform draws
    topics = inter.join(items, on="item_id").groupby("user_id")["genres"].nunique()
    lengths = inter.groupby("user_id").size()
    assert (topics[lengths >= 20] <= 8).mean() > 0.8


def test_interests_drift_from_the_first_topic_to_the_second(synth):
    inter = pd.read_parquet(synth / "interactions.parquet")
    genre = pd.read_parquet(synth / "items.parquet").set_index("item_id")["genres"]
    inter["genre"] = genre.loc[inter["item_id"]].to_numpy()
    long = inter.groupby("user_id").filter(lambda g: len(g) >= 30)
    first = long.groupby("user_id")["genre"].transform(lambda g: g.iloc[:5].mode().iloc[0])
    position = long.groupby("user_id").cumcount() / long.groupby("user_id")["genre"].transform("size")
    same = long["genre"] == first
    assert same[position < 0.2].mean() > same[position > 0.8].mean() + 0.2


def test_same_seed_same_data_and_the_loader_reads_it(synth, tmp_path):
    again = synthesize(2_000, 3_000, 60_000, tmp_path / "again", SynthSettings(n_topics=20))
    for name in ("interactions.parquet", "items.parquet"):
        assert pd.read_parquet(synth / name).equals(pd.read_parquet(again / name))
    ds = load_dataset(synth)
    assert ds.interactions.n_users == 2_000 and ds.item_text["genres"].notna().all()


def test_bad_sizes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="n_users x min_length"):
        synthesize(100, 100, 200, tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "data",
            "synth",
            "--out",
            str(tmp_path / "s"),
            "--users",
            "50",
            "--items",
            "100",
            "--interactions",
            "1000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "interactions.parquet").exists()
