"""Tracking: metrics.jsonl gets each epoch as it ends, a reused stage brings its epochs along, the console
shows only the asked-for levels while run.log gets everything, and the optional backends are strict about
their config and about a missing package. MLflow and TensorBoard are checked for real when installed."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.config import ConfigError, parse_config
from distillrec.pipeline import STAGE_FILE, _Run, run_pipeline
from distillrec.tracking import JsonlTracker, MissingExtraError, MLflowTracker, TensorBoardTracker, Trackers

RECORD = {"loss": 5.25, "valid_ndcg10": 0.125, "seconds": 1.5, "train_seconds": 1.0}


def test_jsonl_tracker_writes_each_epoch_before_close(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tracker = JsonlTracker(path)
    tracker.log_epoch("teacher", 1, RECORD, {"stage": "teacher"})
    assert json.loads(path.read_text()) == {"model": "teacher", "stage": "teacher", "epoch": 1, **RECORD}
    tracker.log_epoch(
        "sasrec (no KD)", 2, {**RECORD, "valid_ndcg10": None}, {"stage": "students/s", "seed": 3}
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[1] == {
        "model": "sasrec (no KD)",
        "stage": "students/s",
        "seed": 3,
        "epoch": 2,
        **RECORD,
        "valid_ndcg10": None,
    }
    tracker.close()
    JsonlTracker(path).close()  # reopening appends, never truncates
    assert len(path.read_text().splitlines()) == 2


def config_data(**tracking):
    return {"name": "t", "dataset": {"source": "ml-100k"}, "tracking": tracking}


@pytest.mark.parametrize(
    ("tracking", "expected"),
    [
        ({"backends": ["wandb"]}, ["tracking.backends", "['wandb']", "'mlflow'", "'tensorboard'"]),
        ({"backends": ["jsonl"]}, ["'jsonl'", "metrics.jsonl is always written"]),
        ({"backends": ["mlflow", "mlflow"]}, ["listed twice"]),
        ({"mlflow_uri": "sqlite:///x.db"}, ["mlflow_uri is set but 'mlflow' is not in backends"]),
        ({"backends": ["tensorboard"], "experiment": "e"}, ["experiment is set but 'mlflow'"]),
        ({"backend": ["mlflow"]}, ["tracking.backend: unknown key", "'backends'", "'mlflow_uri'"]),
    ],
)
def test_tracking_config_mistakes_name_the_key_and_the_choices(tracking, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(config_data(**tracking))
    for fragment in expected:
        assert fragment in str(info.value)


def test_tracking_config_defaults_to_jsonl_only():
    assert parse_config(config_data()).tracking.backends == []
    assert parse_config(config_data(backends=["mlflow"], experiment="e")).tracking.experiment == "e"


def hide_module(monkeypatch, name):
    """Make `import name` fail as it does when the package is not installed."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("backend", "make"), [("mlflow", MLflowTracker), ("tensorboard", TensorBoardTracker)]
)
def test_missing_backend_package_names_the_extra_to_install(monkeypatch, tmp_path, backend, make):
    hide_module(monkeypatch, backend)
    with pytest.raises(MissingExtraError, match=rf"pip install 'distillrec\[{backend}\]'"):
        make(tmp_path)
    # the pipeline fails before making a run folder; the command says why and exits with 2
    config = parse_config(config_data(backends=[backend]))
    with pytest.raises(MissingExtraError, match=backend):
        run_pipeline(config, runs_root=tmp_path / "runs", log=lambda m: None)
    assert not (tmp_path / "runs").exists()
    path = tmp_path / "c.yaml"
    path.write_text(f"name: t\ndataset: {{source: ml-100k}}\ntracking: {{backends: [{backend}]}}\n")
    result = CliRunner().invoke(app, ["run", str(path), "--runs-root", str(tmp_path / "runs")])
    assert result.exit_code == 2 and f"distillrec[{backend}]" in result.output


def test_quiet_and_verbose_together_are_refused(tmp_path):
    result = CliRunner().invoke(app, ["run", str(tmp_path / "c.yaml"), "--quiet", "--verbose"])
    assert result.exit_code == 2 and "use --quiet or --verbose, not both" in result.output


def new_run(root, name, level="info", messages=None):
    folder = root / name
    folder.mkdir(parents=True)
    trackers = Trackers([JsonlTracker(folder / "metrics.jsonl")])
    return _Run(folder, root, "t", (messages if messages is not None else []).append, level, trackers)


def finish(run, rel, key, lines=(), history=None):
    """A finished stage `rel` with `key` in `run`, as if its models had trained (`lines` through the trackers)."""
    folder = run.dir / rel
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"teacher": {"history": history or []}}))
    (folder / STAGE_FILE).write_text(json.dumps({"key": key, "seconds": 1.0, "summary": "test NDCG@10 0.5"}))
    for model, epoch, labels in lines:
        run.trackers.log_epoch(model, epoch, RECORD, labels)


def test_a_reused_stage_brings_its_epoch_lines(tmp_path):
    first = new_run(tmp_path, "t-1")
    finish(
        first, "teacher", "k", [("teacher", 1, {"stage": "teacher"}), ("teacher", 2, {"stage": "teacher"})]
    )
    first.trackers.log_epoch("sasrec (no KD)", 1, RECORD, {"stage": "students/sasrec-soft", "seed": 0})
    first.trackers.log_epoch("teacher", 2, {**RECORD, "loss": 4.0}, {"stage": "teacher"})  # a retried epoch
    first.close()

    messages = []
    second = new_run(tmp_path, "t-2", messages=messages)
    second.stage("teacher", "k", lambda folder: pytest.fail("a finished stage must not be recomputed"))
    second.close()
    lines = [json.loads(line) for line in (second.dir / "metrics.jsonl").read_text().splitlines()]
    assert lines == [
        {"model": "teacher", "stage": "teacher", "epoch": 1, **RECORD},
        {"model": "teacher", "stage": "teacher", "epoch": 2, **RECORD, "loss": 4.0},
    ]
    assert messages == ["[teacher] reused from t-1 (inputs unchanged): test NDCG@10 0.5"]


def test_a_stage_reused_from_a_run_without_stage_lines_brings_its_histories(tmp_path):
    first = new_run(tmp_path, "t-1")
    history = [{"epoch": 1, **RECORD}]
    finish(first, "teacher", "k", history=history)
    # old shape
    (first.dir / "metrics.jsonl").write_text(json.dumps({"model": "teacher", **history[0]}) + "\n")
    first.close()
    second = new_run(tmp_path, "t-2")
    second.stage("teacher", "k", lambda folder: pytest.fail("a finished stage must not be recomputed"))
    second.close()
    assert json.loads((second.dir / "metrics.jsonl").read_text()) == {
        "model": "teacher",
        "stage": "teacher",
        "epoch": 1,
        **RECORD,
    }


def test_console_gets_the_asked_levels_and_run_log_everything(tmp_path):
    messages = []
    run = new_run(tmp_path, "t-1", level="stage", messages=messages)
    run.log("epoch line", "debug")
    run.log("detail line")
    folder = run.stage("baselines", "k", lambda folder: "best ease")
    run.close()
    assert folder == run.dir / "baselines" and (folder / STAGE_FILE).exists()
    assert (
        len(messages) == 1
        and messages[0].startswith("[baselines] done in ")
        and messages[0].endswith(": best ease")
    )
    logged = (run.dir / "run.log").read_text()
    assert "epoch line" in logged and "detail line" in logged and messages[0] in logged


def test_mlflow_tracker_logs_nested_runs_into_the_run_folder(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    tracker = MLflowTracker(tmp_path, experiment="exp", params={"teacher": {"dim": 16}, "seeds": [0, 1]})
    for epoch in (1, 2):
        tracker.log_epoch("teacher", epoch, {**RECORD, "loss": 6.0 - epoch}, {"stage": "teacher"})
        tracker.log_epoch("sasrec (no KD)", epoch, {**RECORD, "valid_ndcg10": None}, {"seed": 0})
    tracker.close()
    assert (
        tracker.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}" and (tmp_path / "mlflow.db").exists()
    )
    client = MlflowClient(tracking_uri=tracker.uri)
    runs = {
        r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    }
    assert set(runs) == {tmp_path.name, "teacher stage=teacher", "sasrec (no KD) seed=0"}
    parent = runs[tmp_path.name]
    assert parent.data.params == {"teacher.dim": "16", "seeds.0": "0", "seeds.1": "1"}
    teacher = runs["teacher stage=teacher"]
    assert teacher.data.tags["mlflow.parentRunId"] == parent.info.run_id and teacher.info.status == "FINISHED"
    history = client.get_metric_history(teacher.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 5.0), (2, 4.0)]
    assert "valid_ndcg10" not in runs["sasrec (no KD) seed=0"].data.metrics  # None is not logged


def test_tensorboard_tracker_writes_scalars_per_training(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = TensorBoardTracker(tmp_path)
    for epoch in (1, 2):
        tracker.log_epoch(
            "sasrec-soft (KD)",
            epoch,
            {**RECORD, "loss": 6.0 - epoch},
            {"stage": "students/sasrec-soft", "seed": 1},
        )
    tracker.close()
    (folder,) = (tmp_path / "tensorboard").iterdir()
    assert folder.name == "sasrec-soft_(KD)_stage=students_sasrec-soft_seed=1"
    events = EventAccumulator(str(folder))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss", "seconds", "train_seconds", "valid_ndcg10"]
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 5.0), (2, 4.0)]
