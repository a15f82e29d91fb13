"""Compressed model folders: each codec round-trips within its stated error, a compressed model loads and
recommends like the float one (int8 within a tolerance), and the size really shrinks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import distillrec
from distillrec.artifact import Catalog, save_model
from distillrec.codecs import decode, encode
from distillrec.compress import compress_model
from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.evaluate.ranking import evaluate
from distillrec.models.registry import make_model
from distillrec.students.registry import make_student

RNG = np.random.default_rng(0)
X = RNG.normal(size=(301, 48)).astype(np.float32)


@pytest.mark.parametrize(
    ("steps", "bound"),
    [
        # half a step per row (the float16 scale can round a row's largest value by up to 0.1% more)
        (["int8"], lambda x: np.abs(x).max(axis=1, keepdims=True) * (1 / 127 / 2 + 1e-3)),
        (["int4"], lambda x: np.abs(x).max(axis=1, keepdims=True) * (1 / 7 / 2 + 1e-3)),
    ],
)
def test_quantisation_errs_by_at_most_half_a_step_per_row(steps, bound):
    parts, spec = encode(X, steps)
    assert (np.abs(decode(parts, spec) - X) <= bound(X)).all()


def test_pruning_keeps_the_largest_entries_exactly_and_stores_them_sparse():
    parts, spec = encode(X, ["prune"], sparsity=0.75)
    y = decode(parts, spec)
    kept = y != 0
    assert kept.mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_array_equal(y[kept], X[kept])
    assert np.abs(X[~kept]).max() <= np.abs(X[kept]).min()
    assert sum(p.nbytes for p in parts.values()) < 0.45 * X.nbytes  # values + int16 column indices


def test_lowrank_is_the_best_rank_r_approximation():
    low = RNG.normal(size=(301, 4)) @ RNG.normal(size=(4, 48))
    parts, spec = encode(low.astype(np.float32), ["lowrank"], energy=0.999)
    assert spec["steps"][0]["rank"] == 4
    np.testing.assert_allclose(decode(parts, spec), low, atol=1e-4)
    _, spec = encode(X, ["lowrank"], rank=48)  # no smaller than the matrix: kept whole
    assert spec["steps"] == []


def test_bad_methods_are_named():
    for steps, message in ((["int9"], "unknown compression method"), (["int8", "int4"], "give one")):
        with pytest.raises(ValueError, match=message):
            encode(X, steps)


def split_and_catalog(items: np.ndarray, n_items: int):
    """(leave-one-out split, catalog "u<user>" / "i<item>") of histories `items` (n_users, length), in order."""
    n_users, length = items.shape
    data = Interactions.from_arrays(
        np.repeat(np.arange(n_users), length),
        items.ravel(),
        np.tile(np.arange(length), n_users),
        n_users,
        n_items,
    )
    split = leave_one_out(data)
    ids = (np.array([f"u{u}" for u in range(n_users)]), np.array([f"i{i}" for i in range(n_items)]))
    return split, Catalog(*ids, split.test_history())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A SASRec student and EASE saved from a small split, and the split."""
    n_users, n_items = 80, 120
    rng = np.random.default_rng(1)
    starts = rng.integers(n_items, size=n_users)
    split, catalog = split_and_catalog((starts[:, None] + np.arange(12)[None, :] * 7) % n_items, n_items)
    root = tmp_path_factory.mktemp("compress")
    student = make_student("sasrec", dim=64, max_len=12, max_epochs=3, progress=False).fit(
        split.train, split.valid
    )
    ease = make_model("ease", l2=10.0).fit(split.train)
    return {
        "student": save_model(student, root / "student", catalog, split.train),
        "ease": save_model(ease, root / "ease", catalog, split.train),
        "split": split,
    }


def _ndcg(folder, split) -> float:
    return evaluate(distillrec.load(folder).model, split.test_history(), split.test, ks=(10,)).summary[
        "NDCG@10"
    ]


@pytest.mark.parametrize("name", ["student", "ease"])
def test_int8_is_about_4x_smaller_and_ranks_within_a_tolerance(folders, tmp_path, name):
    result = compress_model(folders[name], tmp_path / "int8", ["int8"])
    big = [a for a in result.arrays]
    assert big and all(a.bytes_before / a.bytes_after > 3.5 for a in big)
    split = folders["split"]
    assert _ndcg(tmp_path / "int8", split) == pytest.approx(_ndcg(folders[name], split), rel=0.05, abs=0.005)
    users = [f"u{u}" for u in range(20)]
    float_top = distillrec.load(folders[name]).recommend_batch(users=users, k=10)
    int8_top = distillrec.load(tmp_path / "int8").recommend_batch(users=users, k=10)
    overlap = np.mean(
        [len({i for i, _ in a} & {i for i, _ in b}) / 10 for a, b in zip(float_top, int8_top, strict=True)]
    )
    assert overlap >= 0.9
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["info"]["compression"]["methods"] == ["int8"] and manifest["encoding"]


@pytest.mark.parametrize(
    "methods", [["int4"], ["prune"], ["lowrank"], ["prune", "int8"], ["lowrank", "int4"]]
)
def test_every_method_gives_a_folder_that_loads_and_recommends(folders, tmp_path, methods):
    result = compress_model(folders["student"], tmp_path / "c", methods, sparsity=0.5, rank=8)
    assert result.weights_bytes_after < result.weights_bytes_before
    pairs = distillrec.load(tmp_path / "c").recommend(user="u3", k=5)
    assert len(pairs) == 5 and all(np.isfinite(s) for _, s in pairs)


def test_a_damaged_compressed_part_is_named(folders, tmp_path):
    compress_model(folders["ease"], tmp_path / "c", ["int8"])
    part = next((tmp_path / "c" / "state").glob("weights_#*.q.npy"))
    part.write_bytes(part.read_bytes()[:-4])
    with pytest.raises(distillrec.ModelFolderError, match="truncated"):
        distillrec.load(tmp_path / "c")


def test_compress_command(folders, tmp_path):
    from distillrec.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["compress", str(folders["student"]), "--out", str(out), "--method", "prune,int8"]
    )
    assert result.exit_code == 0, result.output
    assert "smaller" in result.output and distillrec.load(out).recommend(user="u1", k=3)
    bad = CliRunner().invoke(app, ["compress", str(folders["student"]), "--out", str(out), "--method", "zip"])
    assert bad.exit_code == 2 and "--method" in bad.output and "Traceback" not in bad.output


def test_array_parameters_such_as_a_text_table_are_compressed_too(folders, tmp_path):
    from distillrec.models.text_similarity import TextSimilarity

    split = folders["split"]
    text = np.random.default_rng(2).normal(size=(split.train.n_items, 64)).astype(np.float32)
    model = TextSimilarity(text).fit(split.train)
    catalog = distillrec.load(folders["ease"]).catalog
    source = save_model(model, tmp_path / "text", catalog, split.train)
    result = compress_model(source, tmp_path / "int8", ["int8"])
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert "text_embeddings" in manifest["param_encoding"] and result.ratio > 3.5
    loaded = distillrec.load(tmp_path / "int8").model
    np.testing.assert_allclose(loaded.text_embeddings, text, atol=np.abs(text).max() / 127)


def test_rows_too_large_or_too_small_for_float16_scales_keep_float32_ones():
    x = np.array([[1e7, -3e6, 1.0], [1e-9, -2e-9, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    for steps, half_step in ((["int8"], 1 / 254), (["int4"], 1 / 14)):
        parts, spec = encode(x, steps)
        y = decode(parts, spec)
        assert np.isfinite(y).all() and parts["matrix.scale"].dtype == np.float32
        assert (np.abs(y - x) <= np.abs(x).max(axis=1, keepdims=True) * half_step * 1.001).all()


def test_pruning_zeroes_exactly_the_asked_fraction_even_with_ties():
    parts, spec = encode(np.ones((10, 10), dtype=np.float32), ["prune"], sparsity=0.3)
    assert (decode(parts, spec) != 0).sum() == 70


def test_a_compressed_or_exported_folder_is_not_compressed_again(folders, tmp_path):
    compress_model(folders["ease"], tmp_path / "c", ["int8"])
    with pytest.raises(ValueError, match="already compressed"):
        compress_model(tmp_path / "c", tmp_path / "c2", ["int4"])


def test_array_names_with_the_part_separator_are_refused(folders, tmp_path):
    ease = distillrec.load(folders["ease"]).model
    ease.weights_ = ease.weights_  # a fitted EASE; add an array whose name holds '#'
    ease.__dict__["odd#name_"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="array names may not hold '#'"):
        save_model(ease, tmp_path / "odd", distillrec.load(folders["ease"]).catalog, folders["split"].train)


def test_pq_rows_are_their_nearest_centroids_and_shrink_a_table():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(16, 32)).astype(np.float32)
    table = centres[rng.integers(16, size=4000)] + rng.normal(scale=0.01, size=(4000, 32)).astype(np.float32)
    parts, spec = encode(table, ["pq"])
    assert spec["steps"] == [{"step": "pq", "subvectors": 8}]
    assert parts["codes"].shape == (4000, 8) and parts["codes"].dtype == np.uint8
    assert parts["codebooks"].shape == (8, 256, 4)
    decoded = decode(parts, spec)
    # every piece is its nearest centroid: no other centroid is closer than the chosen one
    pieces, chosen = table.reshape(4000, 8, 4), decoded.reshape(4000, 8, 4)
    best = ((pieces[:, :, None, :] - parts["codebooks"][None]) ** 2).sum(-1).min(axis=2)
    np.testing.assert_allclose(((pieces - chosen) ** 2).sum(-1), best, rtol=1e-4, atol=1e-6)
    assert np.abs(decoded - table).max() < 0.1  # 16 clusters: 256 centroids fit them closely
    # 4000 x 32 floats (512,000 bytes) -> 8 bytes a row (32,000) + codebooks 8 x 256 x 4 floats (32,768)
    assert sum(p.nbytes for p in parts.values()) == 64_768
    small, small_spec = encode(X, ["pq"])  # 301 rows: too few, kept whole
    assert small_spec["steps"] == [] and np.array_equal(decode(small, small_spec), X)
    with pytest.raises(ValueError, match="pq replaces every row"):
        encode(table, ["pq", "lowrank"])
    # pq,int8: codebook rows quantised (256 x 8 rows of 4 values: 4 bytes + a float16 scale each)
    parts8, spec8 = encode(table, ["pq", "int8"])
    assert [s["step"] for s in spec8["steps"]] == ["pq", "int8"]
    assert sum(p.nbytes for p in parts8.values()) == 4000 * 8 + 8 * 256 * (4 + 2)
    assert np.abs(decode(parts8, spec8) - decoded).max() <= np.abs(parts["codebooks"]).max() / 127
    small8, small8_spec = encode(X, ["pq", "int8"])  # too few rows for pq: int8 alone
    assert [s["step"] for s in small8_spec["steps"]] == ["int8"]


def test_pq_compresses_a_students_item_table_in_its_folder(tmp_path):
    pytest.importorskip("faiss")
    split, catalog = split_and_catalog(np.random.default_rng(4).integers(1100, size=(60, 10)), 1100)
    student = make_student("sasrec", dim=32, max_len=10, max_epochs=1, progress=False).fit(split.train)
    folder = save_model(student, tmp_path / "student", catalog, split.train)
    result = compress_model(folder, tmp_path / "pq", ["pq"])
    (table,) = [a for a in result.arrays if a.name == "item_embedding.embedding.weight"]
    assert table.steps == [{"step": "pq", "subvectors": 8}]
    assert table.bytes_after == 1101 * 8 + 8 * 256 * 4 * 4  # one byte a piece, and the codebooks
    assert len(distillrec.load(tmp_path / "pq").recommend(user="u3", k=10)) == 10


def test_channel_pruning_removes_whole_ffn_channels_and_loads_as_the_smaller_model(folders, tmp_path):
    from distillrec.artifact import read_model
    from distillrec.channels import expand_channels, find_pairs, prune_channels

    state = read_model(folders["student"]).state
    assert find_pairs(state) == [("blocks.0.ffn.0", "blocks.0.ffn.3")]  # not across a LayerNorm
    # hand-made pair: channel norms products 1*4, 3*1, 2*2, 0.5*1 -> the two largest are channels 0 and 2
    hand = {
        "f.0.weight": np.array([[1.0, 0], [0, 3], [2, 0], [0.5, 0]], np.float32),
        "f.0.bias": np.array([1.0, 2, 3, 4], np.float32),
        "f.3.weight": np.array([[4.0, 1, 2, 1]], np.float32),
    }
    pruned, record = prune_channels(hand, 0.5)
    assert record == {"f.0": {"second": "f.3", "width": 4, "kept": [0, 2]}}
    assert np.array_equal(pruned["f.0.bias"], [1.0, 3]) and np.array_equal(pruned["f.3.weight"], [[4.0, 2]])
    full = expand_channels(pruned, record)
    assert np.array_equal(full["f.3.weight"], [[4.0, 0, 2, 0]]) and full["f.0.weight"].shape == (4, 2)

    result = compress_model(
        folders["student"], tmp_path / "channels", ["channels", "int8"], sparsity=0.5, min_size=3000
    )
    assert result.methods == ["channels", "int8"]
    # the FFN layers are encoded by their built size (64 x 64 >= 3,000), though pruned to 2,048 values each
    assert {"blocks.0.ffn.0.weight", "blocks.0.ffn.3.weight"} <= {a.name for a in result.arrays}
    manifest = json.loads((tmp_path / "channels" / "manifest.json").read_text())
    assert len(manifest["channels"]["blocks.0.ffn.0"]["kept"]) == 32  # 64 -> 32 channels
    assert manifest["format_version"] == 3  # a reader of version 2 could not restore the pruned layers
    model = distillrec.load(tmp_path / "channels").model
    ffn = model.module_.blocks[0].ffn
    assert ffn[0].weight.shape == (64, 64) and int((ffn[3].weight.abs().sum(0) == 0).sum()) == 32
    # the loaded model scores as the float model with those channels' second-layer columns zeroed
    reference = distillrec.load(folders["student"]).model
    removed = sorted(set(range(64)) - set(manifest["channels"]["blocks.0.ffn.0"]["kept"]))
    with torch.no_grad():
        reference.module_.blocks[0].ffn[3].weight[:, removed] = 0
    split = folders["split"]
    users = np.arange(40)
    unquantised = compress_model(folders["student"], tmp_path / "channels-only", ["channels"], sparsity=0.5)
    np.testing.assert_allclose(
        distillrec.load(unquantised.folder).model.score(users, split.test_history()),
        reference.score(users, split.test_history()),
        rtol=1e-5,
        atol=1e-6,
    )
    assert unquantised.weights_bytes_after < unquantised.weights_bytes_before
    # a deeper stack: a layer is in one pair only, and the folder reads back
    deep = {f"m.{i}.weight": np.ones((8, 8), np.float32) * (i + 1) for i in (0, 2, 4)}
    assert find_pairs(deep) == [("m.0", "m.2")]
    with pytest.raises(ValueError, match="no pair of linear layers"):
        compress_model(folders["ease"], tmp_path / "ease-channels", ["channels"])
    with pytest.raises(ValueError, match="channels prunes by --sparsity too"):
        compress_model(folders["student"], tmp_path / "both", ["channels", "prune"])
