"""The LLM-enhanced teacher, the text-only model and the teacher export.

Synthetic data where the text decides the pattern: items come in twins (2k, 2k + 1) with identical text
vectors; users walk the chain of even items 0 -> 2 -> 4 -> ...; odd items never appear in training. A model that
reads text can rank the odd twin of the next item high (it shares the even one's text), an ID-only model cannot.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from distillrec.data.interactions import Interactions
from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import history_windows
from distillrec.models.sasrec import SASRec
from distillrec.models.text_similarity import TextSimilarity
from distillrec.teachers.export import TeacherArtifacts, export_teacher
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec, TextItemEmbedding
from distillrec.train.loop import bf16_autocast, cpu_bf16_supported

N_PAIRS = 12
N_ITEMS = 2 * N_PAIRS


def twin_text(seed: int = 0, d_text: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(N_PAIRS, d_text)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    return np.repeat(base, 2, axis=0)  # (N_ITEMS, d_text): rows 2k and 2k + 1 identical


def chain_data(n_users: int = 60, length: int = 8, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        start = rng.integers(N_PAIRS)
        for t in range(length):
            users.append(u)
            items.append(2 * ((start + t) % N_PAIRS))
    return Interactions.from_arrays(users, items, np.arange(len(users)), n_users, N_ITEMS)


FAST = dict(
    dim=32,
    n_layers=1,
    n_heads=1,
    max_len=10,
    dropout=0.0,
    max_epochs=60,
    batch_size=32,
    lr=5e-3,
    patience=60,
    progress=False,
    seed=0,
)


def test_text_embedding_table_pads_with_zero_and_starts_from_pca():
    text = twin_text()
    layer = TextItemEmbedding(text, dim=8, adapter_hidden=16, dropout=0.0, id_init="pca")
    table = layer.table()
    assert table.shape == (N_ITEMS + 1, 8)
    assert torch.all(table[0] == 0)
    expected = pca_compress(torch.from_numpy(text), 8, whiten=True) * 8**-0.5
    assert torch.allclose(layer.ids.weight[1:], expected, atol=1e-6)
    table.sum().backward()
    assert layer.adapter[0].weight.grad is not None and layer.ids.weight.grad is not None
    assert not layer.text.requires_grad


def test_id_dropout_drops_whole_id_vectors_in_training_only():
    text = twin_text()
    has_ids = np.arange(N_ITEMS) % 2 == 0  # odd items: no ID vector at all
    layer = TextItemEmbedding(text, dim=8, adapter_hidden=16, dropout=0.0, has_ids=has_ids, id_dropout=0.5)
    with torch.no_grad():
        text_only = layer.adapter(layer.text)[1:]
        with_ids = text_only + layer.ids.weight[1:]
        layer.eval()
        torch.testing.assert_close(
            layer.table()[1:], torch.where(torch.from_numpy(has_ids)[:, None], with_ids, text_only)
        )
        layer.train()
        torch.manual_seed(0)
        tables = [layer.table()[1:] for _ in range(200)]
    kept = []
    for table in tables:  # every row is either text + ID or text alone, never anything in between
        is_full = torch.isclose(table, with_ids, atol=1e-6).all(dim=1)
        assert torch.all(is_full | torch.isclose(table, text_only, atol=1e-6).all(dim=1))
        assert not is_full[~torch.from_numpy(has_ids)].any()
        kept.append(is_full[torch.from_numpy(has_ids)].float().mean())
    assert abs(float(torch.stack(kept).mean()) - 0.5) < 0.03  # 200 draws of 12 items (seeded): sd about 0.01
    with pytest.raises(ValueError, match="id_dropout must be in"):
        TextItemEmbedding(text, dim=8, id_dropout=1.0)


def test_rows_of_a_batch_equal_the_table_and_cost_only_their_items():
    """forward(ids) reads each distinct id through the adapter once, with the values of the whole table's rows."""
    text = twin_text()
    layer = TextItemEmbedding(text, dim=8, adapter_hidden=16, dropout=0.0, has_ids=np.arange(N_ITEMS) % 3 > 0)
    layer.eval()
    ids = torch.tensor([[0, 3, 3, 5], [0, 0, 7, 3]])
    rows_seen = []
    hook = layer.adapter.register_forward_hook(lambda module, args, out: rows_seen.append(out.shape[0]))
    with torch.no_grad():
        got = layer(ids)
        table = layer.table()
    hook.remove()
    torch.testing.assert_close(got, table[ids])
    assert rows_seen == [4, N_ITEMS + 1]  # the batch: ids 0, 3, 5, 7; then the whole table
    assert torch.all(got[0, 0] == 0)  # padding


def test_teacher_checkpoint_meta_names_new_options_only_when_set():
    """Checkpoints written before `softmax_over_trained` / `id_dropout` existed still resume at their defaults."""
    default = LLMEnhancedSASRec(twin_text(), **FAST)._checkpoint_meta()
    assert "softmax_over_trained" not in default and "id_dropout" not in default
    meta = LLMEnhancedSASRec(
        twin_text(), softmax_over_trained=True, id_dropout=0.3, **FAST
    )._checkpoint_meta()
    assert meta["softmax_over_trained"] is True and meta["id_dropout"] == 0.3


@pytest.mark.parametrize(
    "cold_option",
    [
        {},
        {"softmax_over_trained": True},
        {"id_dropout": 0.3},
        {"fusion": "nullspace"},
    ],
)
def test_teacher_ranks_unseen_twin_through_text_and_id_only_cannot(cold_option):
    train = chain_data()
    text = twin_text()
    teacher = LLMEnhancedSASRec(text, adapter_hidden=32, id_init="pca", **cold_option, **FAST).fit(train)
    plain = SASRec(**FAST).fit(train)
    users = np.arange(train.n_users)
    nxt = np.array([(train.sequence(u)[-1] + 2) % N_ITEMS for u in users])  # the next even item
    odd_twin = nxt + 1  # never seen in training
    for model, expect_good in ((teacher, True), (plain, False)):
        scores = model.score(users, train)
        rank_of_twin = (scores > scores[users, odd_twin][:, None]).sum(axis=1)  # 0 = best
        # the twin ranks right behind the true next item through its text; by id alone it is noise
        # (measured: teacher rank <= 3 for 60/60 users, ID-only SASRec for 0/60)
        if expect_good:
            assert np.mean(rank_of_twin <= 3) > 0.9
        else:
            assert np.mean(rank_of_twin <= 3) < 0.2


def test_a_pca_init_teacher_keeps_only_some_text_for_items_it_never_trained_on():
    """pca_init reads the text only through its initial table, which training then moves: an unseen twin ranks
    better than by ID alone (it starts where its twin starts) but not at its twin's side as with the text kept."""
    train = chain_data()
    users = np.arange(train.n_users)
    odd_twin = np.array([(train.sequence(u)[-1] + 2) % N_ITEMS for u in users]) + 1

    def twin_ranks(model) -> np.ndarray:
        scores = model.score(users, train)
        return (scores > scores[users, odd_twin][:, None]).sum(axis=1)

    pca = twin_ranks(LLMEnhancedSASRec(twin_text(), fusion="pca_init", **FAST).fit(train))
    plain = twin_ranks(SASRec(**FAST).fit(train))
    kept = twin_ranks(LLMEnhancedSASRec(twin_text(), fusion="nullspace", **FAST).fit(train))
    # measured: mean rank 7.1 (pca_init), 11.5 (ID only), 1.0 (nullspace), of 24 items
    assert pca.mean() < plain.mean() - 2 and kept.mean() < pca.mean() - 2


def test_text_similarity_scores_are_cosines_of_decayed_history_mean():
    text = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    train = Interactions.from_arrays([0, 0], [0, 1], [1, 2], 1, 3)
    model = TextSimilarity(text, decay=0.5).fit(train)
    # q = 0.5 * e0 + 1.0 * e1 = (0.5, 1) / |(0.5, 1)|; items normalised: e2 = (1, 1) / sqrt 2
    q = np.array([0.5, 1.0]) / np.hypot(0.5, 1.0)
    expected = [q[0], q[1], (q[0] + q[1]) / np.sqrt(2)]
    assert np.allclose(model.score(np.array([0]), train)[0], expected, atol=1e-6)
    assert model.n_params() == 6
    # centred: the mean (2/3, 2/3) is taken out, then each row normalised: e0 = (1, -2) / sqrt 5,
    # e1 = (-2, 1) / sqrt 5, e2 = (1, 1) / sqrt 2; q = 0.5 e0 + e1 = (-1.5, 0) / sqrt 5 -> (-1, 0)
    centred = TextSimilarity(text, decay=0.5, centre=True).fit(train)
    expected = [-1 / np.sqrt(5), 2 / np.sqrt(5), -1 / np.sqrt(2)]
    assert np.allclose(centred.score(np.array([0]), train)[0], expected, atol=1e-6)


def test_text_similarity_prefix_scores_equal_scoring_each_shorter_history():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(12, 4)).astype(np.float32)
    sequence = rng.permutation(12)[:9]
    model = TextSimilarity(text, max_history=3, decay=0.7, centre=True).fit(
        Interactions.from_arrays([0] * 9, sequence, np.arange(9), 1, 12)
    )
    prefix = model.prefix_scores(sequence, 5)  # after items 4, 5, ..., 8 of the sequence
    assert prefix.shape == (5, 12)
    for j, end in enumerate(range(4, 9)):
        history = Interactions.from_arrays([0] * (end + 1), sequence[: end + 1], np.arange(end + 1), 1, 12)
        np.testing.assert_allclose(prefix[j], model.score(np.array([0]), history)[0], atol=1e-6)


def test_the_text_only_model_is_centred_where_validation_says_so():
    from distillrec.data.split import make_split
    from distillrec.stages.teacher import tuned_text_only

    # items 0-2 share one large common direction; a user's next item is the one whose own part matches
    rng = np.random.default_rng(0)
    own = rng.normal(size=(30, 8)).astype(np.float32)
    text = own + 20.0  # the shared offset drowns the items' own parts in raw cosines
    users, items, times = [], [], []
    for u in range(60):
        start = u % 28
        for t, i in enumerate((start, start + 1, start + 2, start + 1, start)):  # back and forth
            users.append(u), items.append(i), times.append(t)
    split = make_split(Interactions.from_arrays(users, items, times, 60, 30), "leave_one_out")
    assert tuned_text_only(text, split).centre  # centring wins on validation here
    assert not tuned_text_only(own - own.mean(0), split).centre  # nothing to take out: a tie keeps it raw


@pytest.fixture(scope="module")
def fitted_teacher():
    train = chain_data(n_users=40)
    teacher = LLMEnhancedSASRec(twin_text(), adapter_hidden=32, **dict(FAST, max_epochs=5)).fit(train)
    return teacher, train


@pytest.mark.parametrize("bf16", [False, True])
def test_exported_outputs_equal_live_teacher(tmp_path, fitted_teacher, bf16):
    """Also under bf16 autocast: the export then equals the live teacher scored under the same autocast."""
    teacher, train = fitted_teacher
    art_dir = export_teacher(
        teacher,
        train,
        tmp_path / "t",
        {"teacher": "test"},
        top_k=5,
        position_hidden=True,
        chunk_users=7,
        progress=False,
        bf16=bf16,
    )
    art = TeacherArtifacts(art_dir)
    users = np.arange(train.n_users)
    with bf16_autocast(bf16):
        live = teacher.score(users, train)  # after each user's whole train sequence
        live_hidden = teacher.encode(users, train)
    live[train.users, train.items] = -np.inf  # the export excludes what each user has seen
    last_rows = train.indptr[1:] - 1
    live_top = np.argsort(-live, axis=1, kind="stable")[:, :5]
    assert np.array_equal(np.sort(art.positions_topk_items[last_rows], axis=1), np.sort(live_top, axis=1))
    assert np.allclose(art.positions_topk_scores[last_rows], np.take_along_axis(live, live_top, 1), atol=1e-5)
    assert np.allclose(art.user_hidden, live_hidden, atol=1e-5)
    # an earlier position equals the live teacher's output at that position of the same input window
    u, t = 3, 4
    with torch.inference_mode(), bf16_autocast(bf16):
        hidden = teacher.module_(history_windows(np.array([u]), train, teacher.max_len))[0]  # (len, dim)
    with torch.inference_mode():
        live_logits = teacher.module_.logits(hidden[t].float()).numpy()
    live_logits[train.sequence(u)[: t + 1]] = -np.inf  # seen up to and including position t; later items stay
    row = train.indptr[u] + t
    assert np.allclose(np.sort(art.positions_topk_scores[row]), np.sort(live_logits)[-5:], atol=1e-5)
    assert set(art.positions_topk_items[row]).isdisjoint(train.sequence(u)[: t + 1])
    assert art.manifest["coverage"] == 1.0
    assert np.allclose(art.item_embeddings, teacher.item_embeddings())


def test_an_export_of_the_text_blend_equals_the_live_blend(tmp_path, fitted_teacher):
    """Soft labels of `TextBlend`: at every position the blend of the teacher's logits and the text model's
    scores after the same items, in the teacher's units; weight 0 exports the teacher's own logits."""
    from distillrec.models.text_blend import TextBlend, blend_in_model_units

    teacher, train = fitted_teacher
    text = TextSimilarity(twin_text()).fit(train)
    blend = TextBlend(teacher, text, weight=0.7).fit(train)
    art = TeacherArtifacts(
        export_teacher(teacher, train, tmp_path / "b", {}, top_k=5, progress=False, blend=blend)
    )
    assert art.manifest["soft_labels"] == {"blend_weight": 0.7}
    users = np.arange(train.n_users)
    raw, live = teacher.score(users, train), blend.score(users, train)
    assert not np.array_equal(np.argsort(-raw, 1)[:, :5], np.argsort(-live, 1)[:, :5])  # the text did move it
    expected = blend_in_model_units(raw, text.score(users, train), 0.7)
    expected[train.users, train.items] = -np.inf
    top = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    last_rows = train.indptr[1:] - 1
    assert np.array_equal(np.sort(art.positions_topk_items[last_rows], 1), np.sort(top, 1))
    assert np.allclose(art.positions_topk_scores[last_rows], np.take_along_axis(expected, top, 1), atol=1e-4)
    # an earlier position: the blend of that position's logits and the text after the same items
    u, t = 3, 4
    with torch.inference_mode():
        hidden = teacher.module_(history_windows(np.array([u]), train, teacher.max_len))[0]
        logits = teacher.module_.logits(hidden[t]).numpy()[None]
    seq = train.sequence(u)
    mid = blend_in_model_units(logits, text.prefix_scores(seq[: t + 1], 1), 0.7)[0]
    mid[seq[: t + 1]] = -np.inf
    row = train.indptr[u] + t
    assert np.allclose(np.sort(art.positions_topk_scores[row]), np.sort(mid)[-5:], atol=1e-4)
    # weight 0: the teacher's own export
    own = TeacherArtifacts(export_teacher(teacher, train, tmp_path / "own", {}, top_k=5, progress=False))
    zero = TextBlend(teacher, text, weight=0.0).fit(train)
    flat = TeacherArtifacts(
        export_teacher(teacher, train, tmp_path / "w0", {}, top_k=5, progress=False, blend=zero)
    )
    assert np.array_equal(flat.positions_topk_items, own.positions_topk_items)
    assert np.allclose(flat.positions_topk_scores, own.positions_topk_scores, atol=1e-4)
    assert "soft_labels" not in own.manifest
    with pytest.raises(ValueError, match="another model than the teacher"):
        export_teacher(TextBlend(teacher, text, weight=0.5), train, tmp_path / "x", {}, blend=zero)


def test_export_blend_needs_a_text_blend_to_export():
    from distillrec.config import TeacherConfig
    from distillrec.stages.teacher import export_as_configured

    with pytest.raises(ValueError, match="set text_blend too"):
        TeacherConfig(export_blend=True)
    with pytest.raises(ValueError, match="text_blend_drift changes how .* set text_blend too"):
        TeacherConfig(text_blend_drift=True)
    settings = TeacherConfig(text_blend=True, export_blend=True)
    with pytest.raises(ValueError, match="no fitted text blend"):
        export_as_configured(None, None, None, {}, settings)


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_teacher_scores_under_bf16_autocast_through_a_float32_head(fitted_teacher):
    teacher, train = fitted_teacher
    users = np.arange(train.n_users)
    with bf16_autocast():
        scores, state = teacher.score(users, train), teacher.encode(users, train)
    assert state.dtype == scores.dtype == np.float32
    np.testing.assert_allclose(scores, state @ teacher.item_embeddings().T, rtol=1e-5, atol=1e-5)
    assert not np.array_equal(state, teacher.encode(users, train))  # the network itself did run in bfloat16


def test_a_new_export_into_an_old_folder_drops_its_stale_hidden_states(tmp_path, fitted_teacher):
    teacher, train = fitted_teacher
    folder = tmp_path / "t"
    export_teacher(teacher, train, folder, {"t": 1}, top_k=3, position_hidden=True, progress=False)
    assert TeacherArtifacts(folder).positions_hidden is not None
    export_teacher(teacher, train, folder, {"t": 2}, top_k=3, position_hidden=False, progress=False)
    assert not (folder / "positions_hidden.npy").exists()
    assert TeacherArtifacts(folder).positions_hidden is None


def test_an_export_restarted_with_a_new_manifest_is_unfinished_until_it_ends(
    tmp_path, fitted_teacher, monkeypatch
):
    """The arrays are rewritten from scratch when the manifest changes; stopping right after that must not leave
    a folder that reads as complete (the old progress.json said every user was done)."""
    import distillrec.teachers.export as export

    teacher, train = fitted_teacher
    folder = tmp_path / "t"
    export_teacher(teacher, train, folder, {"t": 1}, top_k=3, progress=False)
    opened = []
    original_open = export._open

    def open_then_stop(*args, **kwargs):  # stop right after the first array is truncated
        if opened:
            raise KeyboardInterrupt
        opened.append(original_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(export, "_open", open_then_stop)
    with pytest.raises(KeyboardInterrupt):
        export_teacher(teacher, train, folder, {"t": 2}, top_k=3, progress=False)
    with pytest.raises(RuntimeError, match="export stopped after 0"):
        TeacherArtifacts(folder)


def test_export_resumes_after_interruption(tmp_path, fitted_teacher, monkeypatch):
    teacher, train = fitted_teacher
    full = TeacherArtifacts(
        export_teacher(teacher, train, tmp_path / "full", {"t": 1}, top_k=4, chunk_users=8, progress=False)
    )
    calls = {"n": 0}
    original = teacher.module_.forward

    def flaky(ids):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(ids)

    monkeypatch.setattr(teacher.module_, "forward", flaky)
    with pytest.raises(KeyboardInterrupt):
        export_teacher(teacher, train, tmp_path / "cut", {"t": 1}, top_k=4, chunk_users=8, progress=False)
    assert json.loads((tmp_path / "cut" / "progress.json").read_text())["done_users"] == 16
    with pytest.raises(RuntimeError, match="export stopped after 16"):
        TeacherArtifacts(tmp_path / "cut")
    monkeypatch.setattr(teacher.module_, "forward", original)
    resumed = TeacherArtifacts(
        export_teacher(teacher, train, tmp_path / "cut", {"t": 1}, top_k=4, chunk_users=8, progress=False)
    )
    assert np.array_equal(resumed.positions_topk_items, full.positions_topk_items)
    assert np.array_equal(resumed.positions_topk_scores, full.positions_topk_scores)


def test_a_finished_export_run_again_keeps_its_manifest_byte_for_byte(tmp_path, fitted_teacher, monkeypatch):
    """The student runs of `benchmarks/distill.py` are keyed by the manifest's bytes: running a finished teacher's
    command again (a new `created` time) must neither redo the export nor rewrite its manifest."""
    from distillrec.manifest import build_manifest

    teacher, train = fitted_teacher
    folder = tmp_path / "t"
    export_teacher(teacher, train, folder, build_manifest({"t": 1}), top_k=3, progress=False)
    before = (folder / "manifest.json").read_bytes()

    def no_forward(ids):
        raise AssertionError("a finished export ran the teacher again")

    monkeypatch.setattr(teacher.module_, "forward", no_forward)
    again = dict(build_manifest({"t": 1}), created="a later run", versions={"torch": "a newer one"})
    export_teacher(teacher, train, folder, again, top_k=3, progress=False)
    assert (folder / "manifest.json").read_bytes() == before


def test_options_added_later_enter_the_manifest_only_when_set():
    from distillrec.config import TeacherConfig
    from distillrec.stages.teacher import LATER_OPTIONS, manifest_config

    assert not set(LATER_OPTIONS) & set(manifest_config(TeacherConfig()))
    config = manifest_config(TeacherConfig(id_dropout=0.3, length_buckets=True))
    assert config["id_dropout"] == 0.3 and config["length_buckets"] is True
    assert "softmax_over_trained" not in config and config["dim"] == 128


@pytest.mark.parametrize(
    ("option", "value"), [("--id-dropout", "1.5"), ("--dropout", "-0.1"), ("--dim", "0")]
)
def test_teacher_command_names_an_out_of_range_option_before_reading_data(tmp_path, option, value):
    from typer.testing import CliRunner

    from distillrec.cli import app

    result = CliRunner().invoke(app, ["teacher", "no-such-dataset", "--out", str(tmp_path), option, value])
    text = " ".join(result.output.replace("│", " ").split())  # the error box may wrap the message
    assert result.exit_code == 2 and "Traceback" not in text
    assert f"Invalid value for {option}" in text and f"got {value}" in text


def test_teacher_command_names_a_rule_between_options_before_reading_data(tmp_path):
    from typer.testing import CliRunner

    from distillrec.cli import app

    result = CliRunner().invoke(app, ["teacher", "no-such-dataset", "--out", str(tmp_path), "--export-blend"])
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "Traceback" not in text
    assert "set text_blend too (--text-blend)" in text
