"""Optuna search (`tune/search.py`): strict search spaces, finding a known optimum, resuming from the sqlite
study, pruning through the training loop's callbacks, and a best config that `distillrec run` can read.

The training function is replaced by a cheap fake with a known optimum (lr = 10**-2.5, dim = 32) that reports a
rising validation score per epoch through the callbacks, as `fit_loop` does."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
import yaml

from distillrec.config import ConfigError, load_config
from distillrec.train.loop import EpochEnd
from distillrec.tune import search

CONFIG = """
name: tuned
dataset: {source: ml-100k}
students:
  - {name: sasrec, params: {dim: 8}, kd: [soft]}
tune:
  target: teacher
  space:
    teacher.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
    teacher.dim: {type: categorical, choices: [16, 32, 64]}
  trials: 30
  sampler: tpe
  seed: 0
  pruning: false
"""
EPOCHS = 6


def write(tmp_path, text=CONFIG, overrides=()):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, overrides)


def fake_score(config) -> float:
    return 0.5 - (math.log10(config.teacher.lr) + 2.5) ** 2 / 10 + (0.05 if config.teacher.dim == 32 else 0.0)


@pytest.fixture
def fake_training(monkeypatch):
    calls = []

    def train_target(config, target, data, callbacks):
        calls.append(config)
        final = fake_score(config)
        for epoch in range(1, EPOCHS + 1):
            record = {"epoch": epoch, "valid_ndcg10": final * epoch / EPOCHS}
            for callback in callbacks:
                callback(EpochEnd(epoch, record, None, None))
        return final

    monkeypatch.setattr(search, "train_target", train_target)
    return calls


def test_search_space_parses(tmp_path):
    config = write(tmp_path)
    lr, dim = config.tune.space["teacher.lr"], config.tune.space["teacher.dim"]
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-1, True)
    assert dim.choices == [16, 32, 64] and config.tune.target == "teacher" and config.tune.pruning is False


LR = "teacher.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            LR,
            "teacher.lr: {type: float, lw: 1.0e-4, high: 1.0e-1}",
            ["tune.space.teacher.lr", "['lw']", "'low'"],
        ),
        (LR, "teacher.lr: {type: floaty, low: 1.0e-4, high: 0.1}", ["tune.space.teacher.lr.type", "'float'"]),
        (LR, "teacher.lr: {type: float, low: 0.5, high: 0.1}", ["tune.space.teacher.lr", "must be below"]),
        (LR, "teacher.lr: {type: int, low: 0.5, high: 2}", ["tune.space.teacher.lr", "integer `low`"]),
        ("choices: [16, 32, 64]", "choices: []", ["tune.space.teacher.dim", "non-empty `choices`"]),
        ("sampler: tpe", "sampler: bayes", ["tune.sampler", "'tpe'", "'grid'"]),
        ("sampler: tpe", "sampler: grid", ["tune", "['teacher.lr']", "'float'"]),
        ("target: teacher", "target: 'student:3'", ["tune.target", "1 student"]),
        ("trials: 30", "trialz: 30", ["tune.trialz: unknown key", "'trials'"]),
    ],
)
def test_bad_search_space_errors_name_the_key(tmp_path, old, new, expected):
    assert old in CONFIG
    with pytest.raises(ConfigError) as info:
        write(tmp_path, CONFIG.replace(old, new))
    for fragment in expected:
        assert fragment in str(info.value)


def test_unknown_or_foreign_config_key_in_space_is_an_error(tmp_path):
    bad = CONFIG.replace("teacher.dim:", "teacher.dimm:")
    with pytest.raises(
        ConfigError, match=r"tune.space.teacher.dimm: no key 'dimm' here; valid keys: \[.*'dim'"
    ):
        write(tmp_path, bad)
    foreign = CONFIG.replace("teacher.dim:", "students.0.params.dim:")
    with pytest.raises(
        ConfigError, match=r"tune.space.students.0.params.dim: target 'teacher' tunes keys under"
    ):
        write(tmp_path, foreign)
    student = write(
        tmp_path,
        foreign.replace("target: teacher", "target: 'student:0'").replace(
            "teacher.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}",
            "students.0.params.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}",
        ),
    )
    assert set(student.tune.space) == {"students.0.params.lr", "students.0.params.dim"}
    typo = foreign.replace("target: teacher", "target: 'student:0'").replace("params.dim:", "params.dimm:")
    typo = typo.replace("teacher.lr: {type", "students.0.params.lr: {type")
    with pytest.raises(
        ConfigError, match=r"params.dimm: no hyperparameter 'dimm' for this student; valid: \[.*'dim'"
    ):
        write(tmp_path, typo)


def test_study_finds_the_known_optimum_and_writes_a_runnable_best_config(tmp_path, fake_training):
    config = write(tmp_path)
    result = search.tune(config, tmp_path / "run", log=lambda _: None)
    assert result.n_complete == 30 and len(fake_training) == 30
    assert result.best_params["teacher.dim"] == 32
    assert abs(math.log10(result.best_params["teacher.lr"]) + 2.5) < 0.5
    assert result.best_value == pytest.approx(fake_score(result.best_config))

    best_path = tmp_path / "run" / "best_config.yaml"
    assert "tune" not in yaml.safe_load(best_path.read_text())
    loaded = load_config(best_path)
    assert loaded.tune is None
    assert loaded.teacher.lr == result.best_params["teacher.lr"] and loaded.teacher.dim == 32
    assert loaded.teacher.max_epochs == config.teacher.max_epochs and loaded.students == config.students
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(trials) == 30 and trials["value"].max() == pytest.approx(result.best_value)


def test_second_call_resumes_from_the_sqlite_study(tmp_path, fake_training):
    config = write(tmp_path, overrides=["tune.sampler=random"])
    run = tmp_path / "run"
    search.tune(config, run, trials=4, log=lambda _: None)
    first = pd.read_csv(run / "trials.csv")
    result = search.tune(config, run, trials=7, log=lambda _: None)
    again = pd.read_csv(run / "trials.csv")
    assert len(fake_training) == 7 and result.n_complete == 7 and len(again) == 7
    # earlier trials kept as they were
    pd.testing.assert_frame_equal(again.iloc[:4].reset_index(drop=True), first)
    assert again["params_teacher.lr"].nunique() == 7  # the resumed sampler does not redraw earlier points
    search.tune(config, run, trials=7, log=lambda _: None)
    assert len(fake_training) == 7  # nothing left to do


def test_grid_sampler_covers_an_int_and_categorical_grid(tmp_path, fake_training):
    text = CONFIG.replace(
        "teacher.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}",
        "teacher.n_layers: {type: int, low: 1, high: 2}",
    )
    result = search.tune(
        write(tmp_path, text), tmp_path / "run", trials=20, sampler="grid", log=lambda _: None
    )
    seen = {(c.teacher.n_layers, c.teacher.dim) for c in fake_training}
    assert result.n_complete == 6 and seen == {(n, d) for n in (1, 2) for d in (16, 32, 64)}


def test_callback_raises_trial_pruned_when_reported_values_are_bad():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    good = study.ask()
    for epoch in (1, 2):
        good.report(0.5, epoch)
    study.tell(good, 0.5)

    above = search.pruning_callback(study.ask())
    above(EpochEnd(1, {"valid_ndcg10": 0.6}, None, None))  # above the median of step 1: goes on
    above(EpochEnd(2, {"valid_ndcg10": 0.55}, None, None))
    below = search.pruning_callback(study.ask())
    below(EpochEnd(1, {"valid_ndcg10": None}, None, None))  # not validated this epoch: nothing reported
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        below(EpochEnd(1, {"valid_ndcg10": 0.1}, None, None))


def test_tune_prunes_bad_trials_through_the_training_callbacks(tmp_path, fake_training):
    config = write(tmp_path, overrides=["tune.pruning=true", "tune.sampler=random"])
    result = search.tune(config, tmp_path / "run", trials=20, log=lambda _: None)
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    pruned = trials[trials["state"] == "PRUNED"]
    assert result.n_pruned == len(pruned) > 0 and result.n_complete + result.n_pruned == 20
    # no trial is pruned before the pruner's startup trials have run to the end
    assert (pruned["number"] >= search.PRUNER_STARTUP_TRIALS).all()
    complete = trials[trials["state"] == "COMPLETE"]
    assert complete["value"].notna().all() and result.best_value == pytest.approx(complete["value"].max())


class _Stop(Exception):
    """Raised by the spy instead of training."""


def test_the_real_teacher_target_gets_every_teacher_option(tmp_path, monkeypatch):
    """The tuner's teacher is the stage's teacher: every `teacher.*` option that is a model argument reaches the
    model it trains (the tuner once dropped id_dropout and softmax_over_trained), checked on the real target
    with the real text encoder over a small generic dataset, every option set away from its default."""
    from conftest import write_generic

    from distillrec.config import TeacherConfig
    from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    rows = [("user_id", "item_id", "timestamp")]
    rows += [(f"u{u}", f"i{(u + t) % 12}", t) for u in range(20) for t in range(6)]
    items = [("item_id", "title")] + [(f"i{i}", f"movie number {i}") for i in range(12)]
    folder = write_generic(tmp_path / "data", rows, items)
    changed = {
        "dim": 24,
        "n_layers": 1,
        "n_heads": 3,
        "max_len": 20,
        "dropout": 0.3,
        "adapter_hidden": 32,
        "id_init": "random",
        "softmax_over_trained": True,
        "id_dropout": 0.25,
        "max_epochs": 3,
        "batch_size": 16,
        "lr": 0.002,
        "patience": 2,
        "bf16": True,
        "length_buckets": True,
        "negatives": 8,
        "fusion": "nullspace",
        "semantic_dims": 8,
        "train_text": True,
    }
    options = set(TeacherConfig.model_fields) & set(LLMEnhancedSASRec.params_model.model_fields)
    assert options == set(changed), "a teacher option that is a model argument is missing from this test"
    for key, value in changed.items():
        assert getattr(TeacherConfig(), key) != value, key
    config = write(tmp_path, overrides=[f"dataset.source={folder}", "progress=false"])
    config = search.apply_values(config, {f"teacher.{k}": v for k, v in changed.items()})

    seen = {}

    def spy(self, *args, **kwargs):
        seen.update(self.get_params())
        raise _Stop

    monkeypatch.setattr(LLMEnhancedSASRec, "fit", spy)
    with pytest.raises(_Stop):
        search.train_target(config, "teacher", search._Data(config, tmp_path / "study"), [])
    assert {k: seen[k] for k in changed} == changed
