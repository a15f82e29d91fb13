"""Behavioural suite for every registered baseline, hand-computed EASE / ItemKNN values, and the tuning protocol."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import distillrec
import distillrec.models.grid_search as grid_module
from distillrec.cli import app
from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.evaluate.ranking import evaluate
from distillrec.models.ease import EASE
from distillrec.models.grid_search import tune_and_test
from distillrec.models.ials import IALS
from distillrec.models.itemknn import ItemKNN
from distillrec.models.registry import BASELINES, GRIDS, make_model

# Hyperparameters that let each model generalise on the tiny block data below (defaults are sized for real
# datasets): with too little regularization EASE, iALS and BPR memorise each user's seen items and can score
# an unseen item of the user's own block below the other block (EASE l2=1 fails for 10% of users).
BLOCK_PARAMS: dict[str, dict] = {
    "mostpop": {},
    "itemknn": {"k_neighbours": 5},
    "ease": {"l2": 10.0},
    "ials": {"factors": 4, "regularization": 10.0, "alpha": 10.0},
    "bpr": {"factors": 8},
    "sasrec": {
        "dim": 16,
        "n_layers": 1,
        "n_heads": 1,
        "max_len": 8,
        "max_epochs": 40,
        "dropout": 0.0,
        "lr": 5e-3,
        "progress": False,
    },
}
N_ITEMS, HALF, PER_USER = 20, 10, 6


def _interactions(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    users, items = zip(*pairs, strict=True)
    return Interactions.from_arrays(users, items, np.arange(len(pairs)), n_users, n_items)


def block_data(n_users: int = 40, seed: int = 0) -> Interactions:
    """Users 0..n/2-1 consume items 0..9, the others items 10..19; each user 6 random items of their half."""
    rng = np.random.default_rng(seed)
    pairs = []
    for user in range(n_users):
        offset = 0 if user < n_users // 2 else HALF
        pairs += [(user, offset + int(i)) for i in rng.choice(HALF, size=PER_USER, replace=False)]
    return _interactions(pairs, n_users, N_ITEMS)


def test_every_baseline_has_a_grid_of_valid_points():
    assert set(GRIDS) == set(BASELINES)
    for name, points in GRIDS.items():
        assert 1 <= len(points) <= 12, name
        for params in points:
            assert make_model(name, **params).get_params() == {**make_model(name).get_params(), **params}


def test_make_model_rejects_typos_listing_valid_choices():
    with pytest.raises(ValueError, match="unknown model 'eas'.*'ease'"):
        make_model("eas")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['lambda'\].*'l2'"):
        make_model("ease", **{"lambda": 10.0})


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_recovers_block_pattern(name):
    train = block_data()
    model = make_model(name, **BLOCK_PARAMS[name]).fit(train)
    users = np.arange(train.n_users)
    scores = model.score(users, train)
    assert scores.shape == (train.n_users, N_ITEMS) and scores.dtype == np.float32
    if name == "mostpop":
        np.testing.assert_array_equal(scores[0], train.item_counts())
        return
    seen = train.user_items.toarray() > 0
    for user in users:
        own = slice(0, HALF) if user < train.n_users // 2 else slice(HALF, N_ITEMS)
        other = slice(HALF, N_ITEMS) if user < train.n_users // 2 else slice(0, HALF)
        own_unseen = scores[user, own][~seen[user, own]]
        assert own_unseen.min() > scores[user, other].max(), f"{name}, user {user}"


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_same_seed_gives_same_model(name):
    train = block_data()
    users = np.arange(train.n_users)
    first = make_model(name, **BLOCK_PARAMS[name]).fit(train).score(users, train)
    second = make_model(name, **BLOCK_PARAMS[name]).fit(train).score(users, train)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "name", sorted(n for n, cls in BASELINES.items() if not cls.refit_for_test and n != "mostpop")
)
def test_history_reading_models_follow_the_given_history(name):
    """Models without `refit_for_test` must score from `history`, not from what they were fitted on."""
    train = block_data()
    model = make_model(name, **BLOCK_PARAMS[name]).fit(train)
    # User 0 (a first-block user) now presents a history of second-block items only.
    moved = _interactions([(0, HALF + i) for i in range(PER_USER)], train.n_users, N_ITEMS)
    scores = model.score(np.array([0]), moved)[0]
    unseen_second = scores[HALF + PER_USER :]
    assert unseen_second.min() > scores[:HALF].max()


def test_factor_models_count_what_they_store():
    train = block_data()
    n_rows = train.n_users + N_ITEMS
    assert make_model("ials", factors=4).fit(train).n_params() == n_rows * 4
    bpr = make_model("bpr", factors=8, iterations=1).fit(train)
    assert bpr.n_params() == n_rows * (8 + 1)  # + implicit's bias column


# Hand-computed example: 4 users x 3 items.
#   u0: {0, 1}, u1: {1, 2}, u2: {0, 1, 2}, u3: {0}
#   X^T X = [[3, 2, 1], [2, 3, 2], [1, 2, 2]]; item norms sqrt(3), sqrt(3), sqrt(2).
SMALL = _interactions([(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 0)], 4, 3)


def test_ease_matches_hand_computed_weights():
    # X^T X + I = [[4, 2, 1], [2, 4, 2], [1, 2, 3]], det 24, P = [[8, -4, 0], [-4, 11, -6], [0, -6, 12]] / 24,
    # B_ij = -P_ij / P_jj.
    expected = np.array([[0.0, 4 / 11, 0.0], [1 / 2, 0.0, 1 / 2], [0.0, 6 / 11, 0.0]])
    model = EASE(l2=1.0).fit(SMALL)
    assert model.weights_.dtype == np.float32
    np.testing.assert_allclose(model.weights_, expected, atol=1e-6)
    np.testing.assert_array_equal(np.diag(model.weights_), 0.0)
    np.testing.assert_allclose(model.score(np.array([3]), SMALL)[0], expected[0], atol=1e-6)  # u3's row = {0}


def test_ease_diagonal_is_zero_on_block_data():
    assert np.all(np.diag(EASE(l2=10.0).fit(block_data()).weights_) == 0.0)


def test_itemknn_matches_hand_computed_cosine():
    s6 = np.sqrt(6.0)
    # Full neighbourhoods, shrink 1: sim = co-count / (|x_i||x_j| + 1).
    full = ItemKNN(k_neighbours=2, shrink=1.0).fit(SMALL).similarity_.toarray()
    expected = np.array(
        [[0.0, 2 / 4, 1 / (s6 + 1)], [2 / 4, 0.0, 2 / (s6 + 1)], [1 / (s6 + 1), 2 / (s6 + 1), 0.0]]
    )
    np.testing.assert_allclose(full, expected, rtol=1e-6)
    # One neighbour per column, no shrink: item 0 keeps item 1 (2/3), items 1 and 2 keep each other (2/sqrt 6).
    model = ItemKNN(k_neighbours=1, shrink=0.0).fit(SMALL)
    pruned = np.array([[0.0, 0.0, 0.0], [2 / 3, 0.0, 2 / s6], [0.0, 2 / s6, 0.0]])
    np.testing.assert_allclose(model.similarity_.toarray(), pruned, rtol=1e-6)
    assert model.n_params() == 3
    # {0, 1}
    np.testing.assert_allclose(model.score(np.array([0]), SMALL)[0], [2 / 3, 0.0, 2 / s6], rtol=1e-6)


# ---- tuning protocol on a real slice -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k_split():
    data_dir = os.environ.get("DISTILLREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-100k").is_dir():
        pytest.skip(
            f"needs ml-100k under DISTILLREC_DATA_DIR (set to {data_dir!r}); see /work/shared/datasets"
        )
    from distillrec.data.dataset import load_dataset

    inter = load_dataset("ml-100k", download=False).interactions
    # The first 200 users and 600 items: EASE's cubic inverse stays fast on a shared 2-core machine.
    first = inter.select((inter.users < 200) & (inter.items < 600))
    sliced = Interactions(first.users, first.items, first.timestamps, 200, 600)
    return leave_one_out(sliced)


@pytest.fixture
def counted_evaluate(monkeypatch):
    """Wraps the `evaluate` that `tune_and_test` calls; records which targets each call scored."""
    calls = []

    def counting(model, history, targets, **kwargs):
        calls.append((history, targets))
        return evaluate(model, history, targets, **kwargs)

    monkeypatch.setattr(grid_module, "evaluate", counting)
    return calls


def test_tune_picks_best_valid_point_and_touches_test_once(ml100k_split, counted_evaluate):
    split = ml100k_split
    grid = [{"l2": 3000.0}, {"l2": 100.0}, {"l2": 1.0}]
    result = tune_and_test("ease", split, grid=grid, progress=False)

    models = [EASE(**params).fit(split.train) for params in grid]
    independent = [evaluate(m, split.train, split.valid).summary["NDCG@10"] for m in models]
    assert len(set(independent)) == len(grid)  # the grid points really differ
    best = int(np.argmax(independent))
    assert result.best_hparams == grid[best]
    assert [p.valid["NDCG@10"] for p in result.grid] == pytest.approx(independent)

    test_calls = [c for c in counted_evaluate if c[1] is split.test]
    valid_calls = [c for c in counted_evaluate if c[1] is split.valid]
    assert len(test_calls) == 1 and counted_evaluate[-1] is test_calls[0]
    assert len(valid_calls) == len(grid) and all(h is split.train for h, _ in valid_calls)
    # EASE reads the longer history: the tested model is the best point's, fitted on train, scored on train+valid.
    assert len(test_calls[0][0]) == len(split.train) + len(split.valid)
    expected = evaluate(models[best], split.test_history(), split.test).summary
    assert result.test == pytest.approx(expected)
    assert result.n_params == 600**2


def test_tune_refits_per_user_models_on_train_and_valid(ml100k_split, counted_evaluate):
    split = ml100k_split
    grid = [
        {"factors": 8, "regularization": 1.0, "iterations": 3},
        {"factors": 8, "alpha": 5.0, "iterations": 3},
    ]
    result = tune_and_test("ials", split, grid=grid, progress=False)
    assert sum(targets is split.test for _, targets in counted_evaluate) == 1
    refit = IALS(**result.best_hparams).fit(split.test_history())
    on_train = IALS(**result.best_hparams).fit(split.train)
    np.testing.assert_array_equal(result.model.user_factors_, refit.user_factors_)
    assert not np.array_equal(result.model.user_factors_, on_train.user_factors_)
    assert result.test == pytest.approx(evaluate(refit, split.test_history(), split.test).summary)


def test_cli_runs_into_one_folder_keep_every_models_metrics_and_manifest_entry(make_generic, tmp_path):
    rows = [("user_id", "item_id", "timestamp")]
    rows += [(f"u{u}", str((u + t) % 12), t) for u in range(30) for t in range(6)]
    folder = make_generic(rows)
    out = tmp_path / "out"
    for model in ("mostpop", "itemknn"):
        result = CliRunner().invoke(
            app, ["baselines", str(folder), "--out", str(out), "--models", model, "--quick"]
        )
        assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert metrics["schema_version"] == 1
    assert set(metrics["models"]) == set(manifest["config"]["models"]) == {"mostpop", "itemknn"}
    assert {row["kind"] for row in metrics["models"].values()} == {"baseline"}
    for model in ("mostpop", "itemknn"):  # each tested model saved, and it loads
        assert distillrec.load(out / "models" / model).recommend(history=["1"], k=3)
    assert manifest["config"]["models"]["itemknn"]["grid"]  # the grid each model was tuned on


def test_the_stage_adds_to_a_metrics_file_of_the_older_shape(make_generic, tmp_path):
    """A baselines folder written before results files were versioned (rows at the top level) takes another
    model: its rows are kept, as baselines, in the versioned file."""
    from distillrec.cli import app

    folder = make_generic(
        [("user_id", "item_id", "timestamp")]
        + [(f"u{u}", f"i{(u + t) % 9}", t) for u in range(12) for t in range(5)]
    )
    out = tmp_path / "out"
    out.mkdir()
    old = {
        "valid": {"NDCG@10": 0.1},
        "test": {"HR@10": 0.3, "NDCG@10": 0.2, "MRR": 0.1, "Recall@20": 0.4, "NDCG@20": 0.25},
        "params": 9,
        "train_seconds": 1.0,
    }
    (out / "metrics.json").write_text(json.dumps({"ease": old}))
    result = CliRunner().invoke(
        app, ["baselines", str(folder), "--out", str(out), "--models", "mostpop", "--quick"]
    )
    assert result.exit_code == 0, result.output
    models = json.loads((out / "metrics.json").read_text())["models"]
    assert set(models) == {"ease", "mostpop"} and models["ease"]["kind"] == "baseline"
    assert models["ease"]["test"] == old["test"]


def test_a_manifest_of_the_older_shape_keeps_its_models(make_generic, tmp_path):
    from distillrec.data.dataset import load_dataset
    from distillrec.manifest import record_in_manifest, write_manifest

    rows = [("user_id", "item_id", "timestamp")] + [
        (f"u{u}", str((u + t) % 5), t) for u in range(4) for t in range(3)
    ]
    dataset = load_dataset(make_generic(rows))
    write_manifest(
        tmp_path,
        {"command": "baselines", "models": ["ease"], "grids": {"ease": [{"l2": 1.0}]}, "seed": 0},
        inputs=dataset,
    )
    record_in_manifest(tmp_path, "sasrec", {"grid": [{"dim": 8}]}, inputs=dataset)
    models = json.loads((tmp_path / "manifest.json").read_text())["config"]["models"]
    assert models == {
        "ease": {"command": "baselines", "seed": 0, "grid": [{"l2": 1.0}]},
        "sasrec": {"grid": [{"dim": 8}]},
    }
