"""Cross-domain transfer through item text: a teacher of one slice of ml-100k carried to other users and items
(`stages/transfer.py`), its mapping quality by hand, the saved copy equal to the carried-over model, and KD from
it through the usual student stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_ml100k_slice
from typer.testing import CliRunner

from distillrec.cli import app
from distillrec.config import DatasetConfig, SplitConfig, StudentConfig
from distillrec.recommend import load
from distillrec.stages.data import prepare_data
from distillrec.stages.distill import run_students
from distillrec.stages.transfer import ID_MATCH, mapping_quality, nearest_items, transfer_teacher


@pytest.fixture(scope="module")
def target_folder(data_dir, tmp_path_factory):
    """Users 60..139 of ml-100k (the source teacher of `serve_run` saw users 0..59) with their items."""
    folder = write_ml100k_slice(data_dir, tmp_path_factory.mktemp("target"), n_users=140)
    inter = pd.read_csv(folder / "interactions.tsv", sep="\t")
    first = inter["user_id"].drop_duplicates().iloc[:60]
    inter[~inter["user_id"].isin(first)].to_csv(folder / "interactions.tsv", sep="\t", index=False)
    return folder


@pytest.fixture(scope="module")
def target(target_folder):
    return prepare_data(DatasetConfig(source=str(target_folder), min_item_interactions=3), SplitConfig())


@pytest.fixture(scope="module")
def transferred(serve_run, target, tmp_path_factory):
    out = tmp_path_factory.mktemp("transferred")
    return out, transfer_teacher(serve_run / "teacher", target, out, progress=False, log=lambda m: None)


def test_nearest_items_and_mapping_quality_by_hand():
    source = np.array([[1.0, 0.0], [0.0, 2.0]])
    target = np.array([[3.0, 0.0], [1.0, 1.1], [-1.0, 0.0]])  # nearest: 0 (cos 1), 1 (cos 0.74), 1 (cos 0)
    nearest, cosine = nearest_items(target, source)
    assert nearest.tolist() == [0, 1, 1]
    np.testing.assert_allclose(cosine, [1.0, 1.1 / np.hypot(1.0, 1.1), 0.0], atol=1e-6)
    quality = mapping_quality(cosine)
    assert quality["median_cosine"] == pytest.approx(1.1 / np.hypot(1.0, 1.1), rel=1e-6)
    assert quality["share_at_least_0.9"] == pytest.approx(1 / 3)
    assert quality["share_at_least_0.7"] == pytest.approx(2 / 3)


def test_transferred_teacher_folder(serve_run, target, transferred):
    out, metrics = transferred
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["transfer"]["source"] == str(serve_run / "teacher")
    assert manifest["dataset"]["items"] == target.dataset.n_items  # the target's item space
    items = np.load(out / "positions_topk_items.npy")
    assert items.shape[0] == len(target.split.train) and items.max() < target.dataset.n_items
    assert np.load(out / "item_embeddings.npy").shape[0] == target.dataset.n_items
    # the slices share movies: those items find themselves in the source catalogue
    assert manifest["config"]["transfer"]["share_at_least_0.9"] > 0.5
    assert 0.0 < metrics["teacher"]["test"]["NDCG@10"] <= 1.0
    # an item of both slices (the same movie, text cosine 1) takes the source teacher's ID vector for it
    source_ids = load(serve_run / "teacher" / "model").model.module_.item_embedding.ids.weight
    target_ids = load(out / "model").model.module_.item_embedding.ids.weight
    nearest, cosine = nearest_items(
        np.load(out / "text_embeddings.npy"), np.load(serve_run / "teacher" / "text_embeddings.npy")
    )
    same = int(np.flatnonzero(cosine >= ID_MATCH)[0])
    torch.testing.assert_close(target_ids[same + 1], source_ids[nearest[same] + 1])
    assert not target_ids[int(np.flatnonzero(cosine < ID_MATCH)[0]) + 1].any()  # no match: text alone
    assert manifest["config"]["transfer"]["share_with_source_id"] == pytest.approx(
        float((cosine >= ID_MATCH).mean())
    )


def test_saved_transferred_teacher_scores_as_the_carried_over_model(target, transferred):
    out, _ = transferred
    saved = load(out / "model")
    users = np.arange(10)
    again = saved.model.score(users, target.split.train)
    top = np.load(out / "positions_topk_items.npy")
    # the export's top-1 at each user's last training position is the loaded model's best unseen item
    indptr, _ = target.split.train.sequences()
    for user in users:
        row = indptr[user + 1] - 1
        seen = target.split.train.sequence(int(user))
        scores = again[user].copy()
        scores[seen] = -np.inf
        assert int(np.argmax(scores)) == int(top[row, 0])


def test_students_distil_from_the_transferred_teacher(target, transferred, tmp_path):
    out, _ = transferred
    student = StudentConfig(
        name="sasrec", params={"dim": 8, "max_epochs": 2, "max_len": 50}, kd=["param_init", "soft"]
    )
    comparison = run_students(target, out, student, [0], tmp_path, progress=False)
    assert comparison.summary("student_kd")["test"]["NDCG@10"] >= 0.0
    assert (tmp_path / "model").exists()


def test_transfer_needs_the_adapter_fusion(serve_run, target, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    manifest = json.loads((serve_run / "teacher" / "manifest.json").read_text())
    manifest["config"]["teacher"]["fusion"] = "pca_init"
    (source / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="fusion 'adapter'"):
        transfer_teacher(source, target, tmp_path / "out", progress=False)


def test_distill_command_with_transfer(serve_run, target_folder, tmp_path):
    """Without --transfer a teacher of other data is refused; with it, OUT/teacher is the carried-over teacher."""
    args = ["distill", str(target_folder), "--teacher", str(serve_run / "teacher"), "--student", "sasrec"]
    args += ["--kd", "param_init", "--out", str(tmp_path / "kd"), "--dim", "8", "--max-epochs", "1"]
    args += ["--min-item", "3"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "other data" in refused.output.replace("\n", " ")
    done = CliRunner().invoke(app, [*args, "--transfer"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "kd" / "teacher" / "transfer.json").exists() and (tmp_path / "kd" / "model").exists()


def test_a_run_config_with_a_transfer_section(serve_run, target_folder, tmp_path, monkeypatch):
    """`transfer:` in a run config: the run's teacher stage carries the source teacher over, its students distil
    from it, the report lists it; with a `teacher:` section too, the config is refused."""
    from distillrec.config import ConfigError, parse_config
    from distillrec.pipeline import run_pipeline

    monkeypatch.setenv("DISTILLREC_CACHE_DIR", str(tmp_path / "cache"))
    raw = {
        "name": "carried",
        "dataset": {"source": str(target_folder), "min_item_interactions": 3},
        "baselines": {"models": ["mostpop"]},
        "transfer": {"source": str(serve_run / "teacher")},
        "students": [
            {"name": "sasrec", "params": {"dim": 8, "max_epochs": 1, "max_len": 50}, "kd": ["param_init"]}
        ],
        "progress": False,
    }
    run = run_pipeline(
        parse_config(raw),
        runs_root=tmp_path / "runs",
        run_dir=tmp_path / "runs" / "carried-1",
        log=lambda m: None,
    )
    assert json.loads((run / "teacher" / "transfer.json").read_text())["source"] == str(serve_run / "teacher")
    merged = json.loads((run / "metrics.json").read_text())
    assert {"teacher", "sasrec-param_init (KD)"} <= set(merged["models"])
    again = run_pipeline(
        parse_config(raw),
        runs_root=tmp_path / "runs",
        run_dir=tmp_path / "runs" / "carried-2",
        log=lambda m: None,
    )
    assert "[teacher] reused from carried-1" in (again / "run.log").read_text()  # the same source, not redone
    # the low-data curve: the teacher carried to half of the users too; the run's own stages are reused
    curved = run_pipeline(
        parse_config({**raw, "transfer": {"source": str(serve_run / "teacher"), "fractions": [0.5]}}),
        runs_root=tmp_path / "runs",
        run_dir=tmp_path / "runs" / "carried-3",
        log=lambda m: None,
    )
    log = (curved / "run.log").read_text()
    assert "[teacher] reused from carried-" in log and "[students/sasrec-param_init] reused" in log
    curve = json.loads((curved / "metrics.json").read_text())["transfer_curve"]
    assert list(curve["points"]) == ["0.5", "1.0"]
    half, full = curve["points"]["0.5"], curve["points"]["1.0"]
    assert half["users"] == round(0.5 * full["users"]) or abs(half["users"] - full["users"] / 2) <= 1
    assert (
        full["students"]["sasrec-param_init"]["kd"]
        == merged["models"]["sasrec-param_init (KD)"]["test"]["NDCG@10"]
    )
    assert 0 <= half["students"]["sasrec-param_init"]["plain"] <= 1 and 0 <= half["teacher"] <= 1
    assert "low-data curve" in (curved / "report.html").read_text()
    # a share added later is trained alone: the earlier one is reused
    more = {"source": str(serve_run / "teacher"), "fractions": [0.5, 0.75]}
    again = run_pipeline(
        parse_config({**raw, "transfer": more}),
        runs_root=tmp_path / "runs",
        run_dir=tmp_path / "runs" / "carried-4",
        log=lambda m: None,
    )
    log = (again / "run.log").read_text()
    assert "[transfer_curve/0.5] reused from carried-3" in log and "[transfer_curve/0.75] done" in log
    assert list(json.loads((again / "metrics.json").read_text())["transfer_curve"]["points"]) == [
        "0.5",
        "0.75",
        "1.0",
    ]
    with pytest.raises(ConfigError, match="a share of the target's users in"):
        parse_config({**raw, "transfer": {"source": "x", "fractions": [0.0]}})
    with pytest.raises(ConfigError, match="the run's own share"):
        parse_config({**raw, "transfer": {"source": "x", "fractions": [1.0]}})
    with pytest.raises(ConfigError, match="leave out teacher"):
        parse_config({**raw, "teacher": {"dim": 16}})
