"""Tuning the text encoder for recommendation: the pairs it learns from, and that it pulls them together."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillrec.data.interactions import Interactions
from distillrec.teachers.text_encoder import TextEncoder
from distillrec.teachers.tuned_encoder import (
    TuningSettings,
    batch_order,
    cooccurrence_pairs,
    read_tuning,
    tune_encoder,
)


def test_pairs_are_consecutive_items_of_one_user_without_repeats():
    # user 0: 3 1 1 4; user 1: (none); user 2: 2 0
    data = Interactions.from_arrays([0, 0, 0, 0, 2, 2], [3, 1, 1, 4, 2, 0], [0, 1, 2, 3, 0, 1], 3, 5)
    pairs = {tuple(p) for p in cooccurrence_pairs(data, n=100).tolist()}
    assert pairs == {(3, 1), (1, 4), (2, 0)}  # not (1, 1), not (4, 2) across users
    assert len(cooccurrence_pairs(data, n=2)) == 2


def test_batches_hold_every_pair_once_and_sorted_ones_hold_similar_lengths():
    lengths = np.array([5, 40, 7, 38, 6, 41, 8, 39, 100])
    plain = batch_order(lengths, 2, np.random.default_rng(0))
    # random batches: a seeded permutation cut in order (what tuning did before `length_sorted`)
    np.testing.assert_array_equal(np.concatenate(plain), np.random.default_rng(0).permutation(9))
    batches = batch_order(lengths, 2, np.random.default_rng(0), length_sorted=True)
    assert sorted(np.concatenate(batches).tolist()) == list(range(9))
    spreads = sorted(int(np.ptp(lengths[b])) for b in batches)
    assert spreads == [0, 1, 1, 1, 1], spreads  # {5,6} {7,8} {38,39} {40,41} and {100} alone
    assert [len(b) for b in batches].count(1) == 1


def test_a_tuning_recorded_before_length_sorted_existed_matches_random_batches():
    assert "length_sorted" not in TuningSettings().record()  # random batches, as every earlier tuning read
    assert TuningSettings(length_sorted=True).record()["length_sorted"] is True


def test_tuning_pulls_items_taken_together_closer_and_saves_an_encoder(tmp_path):
    pytest.importorskip("sentence_transformers")
    texts = [
        "a quiet romantic comedy in paris",
        "a loud space battle with robots",
        "a documentary about deep sea fish",
        "a cartoon about a talking dog",
        "a courtroom drama about a murder trial",
        "a horror film in a haunted house",
    ]
    # users always take item 0 then item 1, and item 2 then item 3 (texts that have nothing in common)
    users = np.repeat(np.arange(40), 2)
    items = np.tile([0, 1], 40)
    items[40:] = np.tile([2, 3], 20)
    data = Interactions.from_arrays(users, items, np.tile([0, 1], 40), 40, len(texts))
    settings = TuningSettings(pairs=80, text_views=6, epochs=2, batch_size=8, lr=5e-5, seed=0)
    base = TextEncoder("all-MiniLM-L6-v2", progress=False).encode(texts)
    folder = tune_encoder("all-MiniLM-L6-v2", texts, data, tmp_path / "tuned", settings, progress=False)
    tuned = TextEncoder(folder, progress=False).encode(texts)  # loads like any other model folder
    before, after = base[0] @ base[1], tuned[0] @ tuned[1]
    assert after > before + 0.1, (before, after)
    assert tuned[2] @ tuned[3] > base[2] @ base[3] + 0.1
    record = json.loads((folder / "tuning.json").read_text())
    assert record["pairs"] == 40 + 6 and np.mean(record["losses"][-3:]) < np.mean(record["losses"][:3])
    assert read_tuning(folder) == {k: v for k, v in record.items() if k != "losses"}
    stamp = (folder / "tuning.json").stat().st_mtime_ns
    assert (
        tune_encoder("all-MiniLM-L6-v2", texts, data, tmp_path / "tuned", settings, progress=False) == folder
    )
    assert (folder / "tuning.json").stat().st_mtime_ns == stamp  # finished: not tuned again


def test_a_teacher_with_a_tuned_encoder_keeps_it_and_serving_reads_texts_with_it(
    data_dir, tmp_path, monkeypatch
):
    from conftest import write_ml100k_slice

    from distillrec.config import parse_config
    from distillrec.pipeline import run_pipeline
    from distillrec.serve.knowledge import TextKnowledge

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    source = write_ml100k_slice(data_dir, tmp_path / "data", n_users=30, used_items_only=True)
    config = parse_config(
        {
            "name": "t",
            "dataset": {"source": str(source), "min_item_interactions": 2},
            "baselines": {"models": ["mostpop"]},
            "teacher": {
                "dim": 8,
                "max_epochs": 1,
                "top_k": 5,
                "adapter_hidden": 8,
                "max_len": 20,
                "encoder_tuning_pairs": 40,
            },
            "progress": False,
        }
    )
    run = run_pipeline(
        config, runs_root=tmp_path / "runs", run_dir=tmp_path / "runs" / "t-1", log=lambda m: None
    )
    tuned = run / "teacher" / "tuned_encoder"
    tuning = json.loads((tuned / "tuning.json").read_text())
    settings = tuning["record"]["settings"]
    assert settings["pairs"] == 40 and "length_sorted" not in settings  # random batches unless asked
    metrics = json.loads((run / "teacher" / "metrics.json").read_text())
    assert tuning["seconds"] > 0
    assert metrics["models"]["teacher"]["encoder_tuning_seconds"] == tuning["seconds"]
    knowledge = TextKnowledge(run / "teacher")
    assert knowledge.encoder_name == str(tuned)
    # the stored text vectors were read by the tuned encoder (the manifest names it), and serving encodes with it
    manifest = json.loads((run / "teacher" / "manifest.json").read_text())
    assert manifest["config"]["encoder"].startswith(str(tuned.resolve()) + "|sha256:")
    np.testing.assert_allclose(knowledge.encode(knowledge.texts[3]), knowledge.text_vectors[3], atol=2e-2)
