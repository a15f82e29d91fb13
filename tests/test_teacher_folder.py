"""A teacher folder gives back what built it: its settings, its split and, from its checkpoint, its trained teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_ml100k_slice

from distillrec.config import TeacherConfig
from distillrec.data.dataset import load_dataset
from distillrec.data.split import make_split
from distillrec.distill.objective import KDObjective, parse_kd
from distillrec.evaluate.ranking import evaluate
from distillrec.models.cold_fallback import ColdStartFallback
from distillrec.models.text_blend import TextBlend
from distillrec.stages.data import PreparedData
from distillrec.stages.teacher import (
    build_teacher,
    make_teacher_model,
    read_teacher_folder,
    tuned_text_only,
)
from distillrec.teachers.export import TeacherArtifacts


@pytest.fixture(scope="module")
def built(data_dir, tmp_path_factory):
    """A teacher built on the first 40 users of ml-100k (2 epochs), and a second slice of other data."""
    first, other = tmp_path_factory.mktemp("first40"), tmp_path_factory.mktemp("first30")
    write_ml100k_slice(data_dir, first, 40, item_columns=("title",))
    write_ml100k_slice(data_dir, other, 30, item_columns=("title",))
    dataset = load_dataset(first)
    split = make_split(dataset.interactions, "leave_one_out")
    settings = TeacherConfig(
        dim=16,
        max_epochs=2,
        top_k=10,
        adapter_hidden=16,
        max_len=50,
        cold_fallback=True,
        text_blend=True,
        export_blend=True,
    )
    out = tmp_path_factory.mktemp("teacher")
    metrics = build_teacher(
        PreparedData(dataset, split), out, settings, seed=3, progress=False, log=lambda m: None
    )
    return dataset, split, settings, out, metrics, other


def test_a_teacher_folder_gives_back_its_settings_split_and_trained_teacher(built):
    dataset, split, settings, out, metrics, _ = built
    got_settings, got_split, seed = read_teacher_folder(out, dataset)
    assert got_settings == settings and seed == 3
    np.testing.assert_array_equal(got_split.test.items, split.test.items)
    np.testing.assert_array_equal(got_split.train.items, split.train.items)
    text = np.load(out / "text_embeddings.npy")
    teacher = make_teacher_model(text, got_settings, out, seed, progress=False).fit(
        got_split.train, got_split.valid
    )
    assert teacher.fit_result_.resumed_from == len(teacher.history_) == 2  # restored, nothing trained
    assert evaluate(teacher, got_split.test_history(), got_split.test).summary == metrics["teacher"]["test"]

    # the fallback row: the restored teacher wrapped with the recorded shift scores the same on the test
    row = metrics["teacher_cold_fallback"]
    assert "cold" in row["slices"] and float(row["shift"]) in {
        float(k) for k in row["validation_ndcg_by_shift"]
    }
    picked = max(row["validation_ndcg_by_shift"].values())
    assert row["validation_ndcg_by_shift"][row["shift"]] == picked
    fallback = ColdStartFallback(teacher, text, shift=float(row["shift"])).fit(got_split.train)
    assert evaluate(fallback, got_split.test_history(), got_split.test).summary == row["test"]
    assert json.loads((out / "manifest.json").read_text())["config"]["teacher"]["cold_fallback"] is True

    # the blend row: the restored teacher blended with the tuned text-only model at the recorded weight
    row = metrics["teacher_text_blend"]
    assert row["validation_by_weight"][str(row["weight"])]["NDCG@10"] == pytest.approx(
        row["valid"]["NDCG@10"]
    )
    blend = TextBlend(teacher, tuned_text_only(text, got_split), weight=row["weight"]).fit(got_split.train)
    assert evaluate(blend, got_split.test_history(), got_split.test).summary == row["test"]

    # export_blend: the soft labels are the blend's at its picked weight (last position: its live top-10)
    art = TeacherArtifacts(out)
    assert art.manifest["soft_labels"] == {"blend_weight": row["weight"]}
    assert KDObjective(art, parse_kd("soft")[0]).describe()["soft_labels"] == {"blend_weight": row["weight"]}
    train, user = got_split.train, 5
    live = blend.score(np.array([user]), train)[0]
    live[train.sequence(user)] = -np.inf
    assert set(art.positions_topk_items[train.indptr[user + 1] - 1]) == set(np.argsort(-live)[:10])


def test_a_teacher_folder_of_other_data_or_an_older_version_is_refused_by_name(built, tmp_path):
    dataset, _, _, out, _, other = built
    with pytest.raises(ValueError, match=r"manifest\.json: built on data with fingerprint .* but .* has "):
        read_teacher_folder(out, load_dataset(other))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["teacher"]["progress"] = True  # a key this version does not know
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"(?s)manifest\.json: its config\.teacher does not fit .*progress"):
        read_teacher_folder(tmp_path, dataset)
    del manifest["config"]["seed"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"manifest\.json: no 'seed' in it"):
        read_teacher_folder(tmp_path, dataset)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=r"manifest\.json: not valid JSON"):
        read_teacher_folder(tmp_path, dataset)
    with pytest.raises(FileNotFoundError, match="no teacher manifest"):
        read_teacher_folder(tmp_path / "missing", dataset)
