"""`distillrec run` end to end on a small slice of MovieLens 100K: files, merged metrics, stage reuse, epoch
lines written while models train."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from conftest import write_ml100k_slice

from distillrec.config import parse_config
from distillrec.pipeline import run_pipeline


@pytest.fixture(scope="module")
def small_dataset(data_dir, tmp_path_factory):
    """The first 80 users of ml-100k, as a generic-format folder (items.tsv with title and genres)."""
    return write_ml100k_slice(data_dir, tmp_path_factory.mktemp("ml100k-slice"), n_users=80)


def config(source, student_dim=8):
    return parse_config(
        {
            "name": "t",
            "dataset": {"source": str(source), "min_item_interactions": 2},
            "baselines": {"models": ["mostpop", "ease"], "grids": {"ease": [{"l2": 100.0}]}},
            "teacher": {"dim": 16, "max_epochs": 2, "top_k": 10, "adapter_hidden": 16, "max_len": 50},
            "students": [
                {
                    "name": "sasrec",
                    "params": {"dim": student_dim, "max_epochs": 2, "max_len": 50},
                    "kd": ["soft"],
                }
            ],
            "seeds": [0],
            "compress": {"methods": ["int8"], "kd_finetune_epochs": 1},
            "progress": False,
        }
    )


def test_run_writes_every_artifact_and_reuses_unchanged_stages(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    first = run_pipeline(config(small_dataset), runs_root=runs, run_dir=runs / "t-1", log=lambda m: None)
    for name in (
        "config.yaml",
        "metrics.json",
        "metrics.jsonl",
        "report.html",
        "run.log",
        "baselines/metrics.json",
        "teacher/metrics.json",
        "teacher/positions_topk_items.npy",
        "students/sasrec-soft/metrics.json",
    ):
        assert (first / name).exists(), name
    merged = json.loads((first / "metrics.json").read_text())
    kinds = {name: row["kind"] for name, row in merged["models"].items()}
    assert kinds == {
        "mostpop": "baseline",
        "ease": "baseline",
        "text_only": "text_only",
        "teacher": "teacher",
        "sasrec-soft (KD)": "student_kd",
        "sasrec-soft (no KD)": "student_plain",
        "sasrec-soft (KD) int8": "compressed",
        "sasrec-soft (KD) int8 + fine-tune": "compressed",
    }
    assert (
        merged["models"]["ease"]["test"]
        == json.loads((first / "baselines/metrics.json").read_text())["models"]["ease"]["test"]
    )
    assert 0.0 <= merged["agreement"]["sasrec-soft (KD)"]["top10_overlap_with_teacher"] <= 1.0
    # serving cost of every model with a folder: the folder's weights on disk, one user's top-10 latency
    costs = {
        n: (r["weights_bytes"], r["latency_ms_p50"], r["latency_ms_p99"]) for n, r in merged["models"].items()
    }
    assert set(costs) == set(kinds)
    assert costs["sasrec-soft (KD)"][0] < costs["teacher"][0]  # the student is smaller on disk
    assert (
        costs["sasrec-soft (KD) int8"][0] * 2 < costs["sasrec-soft (KD)"][0]
    )  # and its int8 copy smaller still
    # the same from the command line, for a folder of a run: its teacher and data found from the folder
    from typer.testing import CliRunner

    from distillrec.cli import app

    student = first / "students" / "sasrec-soft" / "model"
    result = CliRunner().invoke(
        app,
        [
            "compress",
            str(student),
            "--method",
            "int4",
            "--out",
            str(tmp_path / "int4-ft"),
            "--kd-finetune",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "+ 1 epochs of KD fine-tuning (compression-aware)" in result.output
    assert (
        json.loads((tmp_path / "int4-ft" / "manifest.json").read_text())["info"]["fine_tuned"]["objective"][
            "terms"
        ][0]["method"]
        == "soft"
    )
    stage_rows = json.loads((first / "compressed" / "metrics.json").read_text())["models"]
    assert stage_rows["sasrec-soft (KD) int8 + fine-tune"]["aware"] is True  # int8: compression-aware
    tuned = json.loads((first / "compressed" / "sasrec-soft-int8-ft" / "manifest.json").read_text())
    assert tuned["params"]["max_epochs"] == 2  # the student's own settings, not the fine-tuning's (1 epoch)
    assert tuned["info"]["fine_tuned"]["epochs"] == 1 and "test" not in tuned["info"]
    int8 = merged["models"]["sasrec-soft (KD) int8"]["test"]["NDCG@10"]
    assert int8 == pytest.approx(merged["models"]["sasrec-soft (KD)"]["test"]["NDCG@10"], abs=0.02)
    manifest = json.loads((first / "teacher" / "model" / "manifest.json").read_text())
    stored = sum(
        f["bytes"] for n, f in manifest["files"].items() if n.startswith(("weights", "state/", "params/"))
    )
    assert costs["teacher"][0] == stored
    assert all(0 < p50 <= p99 for _, p50, p99 in costs.values())
    assert "top-10 latency" in (first / "report.html").read_text()
    check_saved_models(first)

    # A second run with only the student changed: baselines and teacher are reused, the student is recomputed.
    messages = []
    second = run_pipeline(
        config(small_dataset, student_dim=4), runs_root=runs, run_dir=runs / "t-2", log=messages.append
    )
    assert any("[data] reused from t-1" in m for m in messages)
    assert any("[baselines] reused from t-1" in m for m in messages)
    assert any("[teacher] reused from t-1" in m for m in messages)
    assert any(m.startswith("[students/sasrec-soft] done") for m in messages)
    teacher_1 = json.loads((first / "teacher/metrics.json").read_text())["models"]["teacher"]["test"]
    assert json.loads((second / "teacher/metrics.json").read_text())["models"]["teacher"]["test"] == teacher_1
    # reused stages bring their epochs
    assert epoch_lines(second, "teacher") == epoch_lines(first, "teacher") != []
    assert epoch_lines(second, "students/sasrec-soft") != epoch_lines(first, "students/sasrec-soft")
    second_merged = json.loads((second / "metrics.json").read_text())
    assert (
        second_merged["models"]["sasrec-soft (KD)"]["params"] < merged["models"]["sasrec-soft (KD)"]["params"]
    )


def epoch_lines(run_dir, stage):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["stage"] == stage]


def test_metrics_jsonl_gets_every_training_epoch_as_it_ends(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    data = config(small_dataset).model_dump(mode="json")
    sasrec = {"dim": 8, "max_epochs": 1, "max_len": 50}
    data["baselines"] = {
        "models": ["mostpop", "sasrec"],
        "grids": {"sasrec": [sasrec, {**sasrec, "dropout": 0.5}]},
    }
    data["teacher"]["compare_id_only"] = True
    run_dir = tmp_path / "runs" / "t-1"
    seen = []  # lines in metrics.jsonl when each per-epoch log line is printed

    def log(message: str) -> None:
        if re.search(r" epoch \d+: loss ", message):
            seen.append(len((run_dir / "metrics.jsonl").read_text().splitlines()))

    run_pipeline(parse_config(data), runs_root=tmp_path / "runs", run_dir=run_dir, log=log, level="debug")
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert seen == list(range(1, len(lines) + 1))  # each epoch's line was on disk when that epoch ended
    trainings = Counter(
        (line["model"], line["stage"], line.get("grid_point"), line.get("seed")) for line in lines
    )
    assert trainings == {
        ("sasrec", "baselines", 0, None): 1,
        ("sasrec", "baselines", 1, None): 1,
        ("teacher", "teacher", None, None): 2,
        ("id_only", "teacher", None, None): 2,
        ("sasrec-soft (KD)", "students/sasrec-soft", None, 0): 2,
        ("sasrec-soft (no KD)", "students/sasrec-soft", None, 0): 2,
    }
    models = json.loads((run_dir / "metrics.json").read_text())["models"]
    # the baseline's curve (max_epochs 1), through TuneResult.to_json
    assert len(models["sasrec"]["history"]) == 1
    for name in (
        "teacher",
        "sasrec-soft (KD)",
        "sasrec-soft (no KD)",
    ):  # the report's training curves read these
        history = models[name]["history"]
        assert [{k: line[k] for k in history[0]} for line in lines if line["model"] == name] == history
    # the teacher's ID-only twin keeps its curve in the teacher folder's metrics.json too
    twin = json.loads((run_dir / "teacher" / "metrics.json").read_text())["models"]["id_only"]["history"]
    assert [{k: line[k] for k in twin[0]} for line in lines if line["model"] == "id_only"] == twin
    logged = (run_dir / "run.log").read_text()
    assert "teacher epoch 2: loss" in logged and "[report]" in logged


def check_saved_models(run_dir):
    """Every model folder of a run loads, and `recommend` for each test user gives the HR@10 its stage reported
    (the same model, history and masking as the evaluation)."""
    import numpy as np

    import distillrec
    from distillrec.stages.data import read_prepared

    data = read_prepared(run_dir / "data")
    test = data.split.test
    users = [str(data.dataset.user_ids[u]) for u in test.users]
    targets = dict(zip(users, (str(data.dataset.item_ids[i]) for i in test.items), strict=True))
    folders = sorted(
        p.parent for p in run_dir.rglob("manifest.json") if '"distillrec-model"' in p.read_text()
    )
    expected = {
        "baselines/models/mostpop",
        "baselines/models/ease",
        "teacher/model",
        "teacher/text_only_model",
        "students/sasrec-soft/model",
        "students/sasrec-soft/models/student_kd-seed0",
        "students/sasrec-soft/models/student_plain-seed0",
        "compressed/sasrec-soft-int8",
        "compressed/sasrec-soft-int8-ft",
    }
    assert {f.relative_to(run_dir).as_posix() for f in folders} == expected
    compressed = json.loads((run_dir / "compressed" / "metrics.json").read_text())["models"]
    for folder in folders:
        model = distillrec.load(folder)
        results = model.recommend_batch(users=users, k=10)
        hits = [targets[u] in {item for item, _ in pairs} for u, pairs in zip(users, results, strict=True)]
        if model.info.get("name") == "mostpop":
            # popularity counts tie a lot; the evaluation breaks a tie against the target, `recommend` (which
            # knows no target) by item index: only at least as many hits
            assert np.mean(hits) >= model.info["test"]["HR@10"]
        elif "compression" in model.info:  # its own evaluation, in the compression stage's metrics.json
            row = next(r for r in compressed.values() if r["folder"] == folder.name)
            assert np.mean(hits) == pytest.approx(row["test"]["HR@10"]), folder
        else:
            assert np.mean(hits) == pytest.approx(model.info["test"]["HR@10"]), folder


def test_a_run_resumed_into_its_folder_after_a_data_change_prepares_again(
    small_dataset, tmp_path, monkeypatch
):
    """The data stage records only the files it writes, so the stage marker written beside them after an earlier
    preparation never reads as damage when the same run folder is prepared again."""
    from distillrec.stages.data import read_prepared

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    data = config(small_dataset).model_dump(mode="json")
    data["baselines"] = {"models": ["mostpop"]}
    data["students"] = []
    run_dir = tmp_path / "runs" / "t-1"
    for min_items in (2, 3):
        data["dataset"]["min_item_interactions"] = min_items
        data["teacher"]["max_epochs"] = 1
        run_pipeline(parse_config(data), runs_root=tmp_path / "runs", run_dir=run_dir, log=lambda m: None)
        assert read_prepared(run_dir / "data").dataset.interactions.item_counts().min() >= 0
