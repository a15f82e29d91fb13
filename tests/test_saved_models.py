"""Saved models: every model class saves to a folder and loads back scoring exactly as the trained one; the
folder's problems are named; `recommend` answers in external ids with the evaluation's masking and ranking."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import distillrec
from distillrec.artifact import FORMAT_VERSION, READS_VERSIONS, Catalog, ModelFolderError, save_model
from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.evaluate.ranking import evaluate
from distillrec.models.registry import make_model
from distillrec.models.text_similarity import TextSimilarity
from distillrec.students.registry import make_student
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec

N_USERS, N_ITEMS, LENGTH = 60, 25, 10
TEXT = np.random.default_rng(1).normal(size=(N_ITEMS, 16)).astype(np.float32)
TORCH_COMMON = dict(max_len=8, max_epochs=2, batch_size=32, progress=False)


def _data() -> Interactions:
    """Each user walks i, i + 1, ... (mod n_items) from a random start; item 24 never occurs in training."""
    rng = np.random.default_rng(0)
    starts = rng.integers(N_ITEMS - 1, size=N_USERS)
    items = (starts[:, None] + np.arange(LENGTH)[None, :]) % (N_ITEMS - 1)
    users = np.repeat(np.arange(N_USERS), LENGTH)
    return Interactions.from_arrays(
        users, items.ravel(), np.tile(np.arange(LENGTH), N_USERS), N_USERS, N_ITEMS
    )


SPLIT = leave_one_out(_data())
CATALOG = Catalog(
    np.array([f"u{u}" for u in range(N_USERS)], dtype=object),
    np.array([f"i{i}" for i in range(N_ITEMS)], dtype=object),
    SPLIT.test_history(),
)

MODELS = {
    "mostpop": lambda: make_model("mostpop"),
    "itemknn": lambda: make_model("itemknn", k_neighbours=5),
    "ease": lambda: make_model("ease", l2=10.0),
    "ials": lambda: make_model("ials", factors=8, iterations=3),
    "bpr": lambda: make_model("bpr", factors=8, iterations=5),
    "sasrec": lambda: make_model("sasrec", dim=16, n_heads=1, n_layers=1, **TORCH_COMMON),
    "teacher": lambda: LLMEnhancedSASRec(
        TEXT, dim=16, adapter_hidden=32, n_heads=1, n_layers=1, **TORCH_COMMON
    ),
    "text_only": lambda: TextSimilarity(TEXT),
    "student_sasrec": lambda: make_student("sasrec", dim=8, **TORCH_COMMON),
    # trained in bf16, evaluated (by its stage) and served in float32
    "student_sasrec_bf16": lambda: make_student("sasrec", dim=8, bf16=True, **TORCH_COMMON),
    "student_gru4rec": lambda: make_student("gru4rec", dim=8, **TORCH_COMMON),
    "student_mf": lambda: make_student("mf", dim=8, **TORCH_COMMON),
    "student_two_tower": lambda: make_student(
        "two_tower", text_embeddings=TEXT, dim=8, text_dim=4, **TORCH_COMMON
    ),
}


def _fit(name: str):
    """A fitted model as a run would save it: refit on train + validation when its class asks for it."""
    torch.manual_seed(0)
    model = MODELS[name]()
    trained_on = SPLIT.test_history() if type(model).refit_for_test else SPLIT.train
    model.fit(trained_on, None if type(model).refit_for_test else SPLIT.valid)
    return model, trained_on


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (fitted model, its saved folder)"""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in MODELS:
        model, trained_on = _fit(name)
        out[name] = (model, save_model(model, root / name, CATALOG, trained_on, info={"name": name}))
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_loaded_model_scores_as_the_trained_one(saved, name):
    model, folder = saved[name]
    loaded = distillrec.load(folder)
    users = np.arange(N_USERS)
    history = SPLIT.test_history()
    np.testing.assert_array_equal(loaded.model.score(users, history), model.score(users, history))
    assert loaded.model.n_params() == model.n_params()
    assert loaded.info == {"name": name}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_for_a_known_user_is_the_evaluated_top10(saved, name):
    """The top-10 of `recommend(user=...)` is the list the test evaluation ranked, so HR@10 is the same."""
    model, folder = saved[name]
    loaded = distillrec.load(folder)
    evaluation = evaluate(model, SPLIT.test_history(), SPLIT.test, ks=(10,))
    results = loaded.recommend_batch(users=[f"u{u}" for u in evaluation.users], k=10)
    lists = [[int(item[1:]) for item, _ in pairs] for pairs in results]
    assert lists == evaluation.top_items[:, :10].tolist()
    targets = {int(u): int(i) for u, i in zip(SPLIT.test.users, SPLIT.test.items, strict=True)}
    hits = [targets[int(u)] in top for u, top in zip(evaluation.users, lists, strict=True)]
    assert np.mean(hits) == pytest.approx(evaluation.summary["HR@10"])


def test_saved_folder_is_plain_files(saved):
    _, folder = saved["student_sasrec"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model_class"] == "SASRecStudent"
    assert (folder / "weights.safetensors").exists()
    _, ease = saved["ease"]
    assert np.load(ease / "state" / "weights_.npy", allow_pickle=False).shape == (N_ITEMS, N_ITEMS)
    _, teacher = saved["teacher"]
    np.testing.assert_array_equal(np.load(teacher / "params" / "text_embeddings.npy"), TEXT)


def _copy(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_truncated_weights_are_named(saved, tmp_path):
    folder = _copy(saved["student_sasrec"][1], tmp_path)
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelFolderError, match=r"weights\.safetensors: truncated"):
        distillrec.load(folder)


def test_changed_bytes_are_named(saved, tmp_path):
    folder = _copy(saved["ease"][1], tmp_path)
    path = folder / "state" / "weights_.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match=r"weights_\.npy: corrupted"):
        distillrec.load(folder)


def test_missing_file_other_version_and_not_a_folder(saved, tmp_path):
    folder = _copy(saved["ease"][1], tmp_path)
    (folder / "ids.json").unlink()
    with pytest.raises(ModelFolderError, match=r"ids\.json: missing"):
        distillrec.load(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": max(READS_VERSIONS) + 1}))
    with pytest.raises(ModelFolderError, match="format version 4; this distillrec reads versions 1, 2, 3"):
        distillrec.load(folder)
    manifest_path.write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        distillrec.load(folder)
    with pytest.raises(ModelFolderError, match="no model manifest"):
        distillrec.load(tmp_path)


def test_unknown_model_class_is_named(saved, tmp_path):
    folder = _copy(saved["mostpop"][1], tmp_path)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "model_class": "os.system"}))
    with pytest.raises(ModelFolderError, match="model class 'os.system' is not one"):
        distillrec.load(folder)


def test_history_recommendations_mask_seen_and_skip_unknown_ids(saved):
    loaded = distillrec.load(saved["student_sasrec"][1])
    with pytest.warns(UserWarning, match=r"skipped item id\(s\) .*'nope'"):
        pairs = loaded.recommend(history=["i3", "nope", "i4"], k=5)
    assert len(pairs) == 5 and not {"i3", "i4"} & {item for item, _ in pairs}
    scores = [s for _, s in pairs]
    assert scores == sorted(scores, reverse=True)
    # the same request with the unknown id removed is the same answer; unmasked, seen items may come back
    assert loaded.recommend(history=["i3", "i4"], k=5) == pairs
    everything = loaded.recommend(history=["i3", "i4"], k=N_ITEMS, exclude_seen=False)
    assert len(everything) == N_ITEMS
    assert len(loaded.recommend(history=["i3", "i4"], k=100)) == N_ITEMS - 2


def test_user_and_history_read_the_known_items_then_the_new_ones(saved):
    model, folder = saved["student_gru4rec"]
    loaded = distillrec.load(folder)
    known = [f"i{i}" for i in CATALOG.history.sequence(7)]
    assert loaded.recommend(user="u7", history=["i1"], k=5) == loaded.recommend(history=[*known, "i1"], k=5)


def test_empty_history_gets_the_most_popular_items(saved):
    loaded = distillrec.load(saved["ease"][1])
    counts = SPLIT.test_history().item_counts()
    expected = [f"i{i}" for i in np.lexsort((np.arange(N_ITEMS), -counts))[:3]]
    (result,) = loaded.rank([distillrec.Request(user="stranger", history=["nope"], k=3)])
    assert result.items == expected and result.cold_start and result.unknown_user
    assert result.unknown_items == ["nope"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [i for i, _ in loaded.recommend(history=[], k=3)] == expected


def test_user_vector_models_refuse_a_new_history(saved):
    loaded = distillrec.load(saved["ials"][1])
    assert len(loaded.recommend(user="u3", k=4)) == 4
    with pytest.raises(ValueError, match="IALS scores a user by a vector learned in training"):
        loaded.recommend(history=["i1", "i2"])
    with pytest.raises(ValueError, match="cannot read a history it was not trained on"):
        loaded.recommend(user="u3", history=["i1"])
    # an unknown user alone gets the cold-start answer, also in a batch with known users
    stranger, known = loaded.rank([distillrec.Request(user="stranger"), distillrec.Request(user="u3")])
    assert stranger.cold_start and stranger.unknown_user and not known.cold_start


def test_a_teacher_evaluated_in_bf16_is_served_in_bf16(saved, tmp_path):
    """A model its stage evaluated under bfloat16 autocast (a bf16 teacher) is scored the same way, so its
    top-10 is the evaluated one; every other model is scored in float32."""
    from distillrec.train.loop import bf16_autocast

    model, _ = saved["teacher"]
    folder = save_model(model, tmp_path / "bf16", CATALOG, SPLIT.train, info={"evaluated_in_bf16": True})
    with bf16_autocast():
        evaluation = evaluate(model, SPLIT.test_history(), SPLIT.test, ks=(10,))
    results = distillrec.load(folder).recommend_batch(users=[f"u{u}" for u in evaluation.users], k=10)
    assert [[int(i[1:]) for i, _ in r] for r in results] == evaluation.top_items[:, :10].tolist()


def test_k_must_be_a_positive_integer(saved):
    loaded = distillrec.load(saved["mostpop"][1])
    with pytest.raises(ValueError, match="k must be a positive integer, got True"):
        loaded.recommend(user="u1", k=True)
    assert len(loaded.recommend(user="u1", k=np.int64(3))) == 3


def test_settings_that_do_not_fit_the_model_are_named(saved, tmp_path):
    folder = _copy(saved["ials"][1], tmp_path)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"]["factors"] = "many"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFolderError, match=r"copy: the saved settings do not fit IALS.*factors"):
        distillrec.load(folder)


def test_bad_requests_are_named(saved):
    loaded = distillrec.load(saved["mostpop"][1])
    with pytest.raises(ValueError, match="give a user id, a history"):
        loaded.recommend()
    with pytest.raises(ValueError, match="request 0: k must be a positive integer"):
        loaded.recommend(user="u1", k=0)
    with pytest.raises(TypeError, match="a history is a list of item ids"):
        loaded.recommend(history="i1")


def test_results_files_are_typed_versioned_and_read_in_the_older_shape(tmp_path):
    from distillrec.results import read_results, write_results

    row = {
        "valid": {"NDCG@10": 0.1},
        "test": {"NDCG@10": 0.2, "HR@10": 0.3},
        "params": 7,
        "grid": [{"l2": 1.0}],
    }
    path = tmp_path / "metrics.json"
    write_results(path, {"ease": {"kind": "baseline", **row}})
    written = json.loads(path.read_text())
    assert written["schema_version"] == 1 and written["models"]["ease"]["grid"] == [{"l2": 1.0}]
    assert read_results(path)["ease"].test["HR@10"] == 0.3
    path.write_text(json.dumps({"ease": row}))  # the unversioned shape of older folders
    assert read_results(path, default_kind="baseline")["ease"].kind == "baseline"
    with pytest.raises(ValueError, match="kind"):
        write_results(path, {"ease": {"kind": "oracle", **row}})
    path.write_text(json.dumps({"schema_version": 2, "models": {}}))
    with pytest.raises(ValueError, match="results schema version 2; this distillrec reads 1"):
        read_results(path)
    path.write_text("{broken")
    with pytest.raises(ValueError, match=r"metrics.json: not valid JSON"):
        read_results(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"metrics.json: expected a JSON object of results, got list"):
        read_results(path)
