"""Distillation: teacher labels land on the right window positions, a KD student learns what the teacher knows
beyond the data, the objective parser is strict, the significance functions give the textbook values, and the
`distill` command runs end to end on a slice of ml-100k.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

from distillrec.data.interactions import Interactions
from distillrec.data.split import leave_one_out
from distillrec.distill.kd_data import TeacherLabels
from distillrec.distill.objective import KDObjective, TermSpec, parse_kd, sample_negatives
from distillrec.evaluate.ranking import evaluate
from distillrec.evaluate.significance import bootstrap_ci, bootstrap_diff_ci, paired_test, seed_summary
from distillrec.layers.softmax_ce import logsumexp_scores
from distillrec.losses.registry import KD_METHODS
from distillrec.losses.schedules import confidence_temperature, confidence_weights
from distillrec.losses.student_scores import scores_at
from distillrec.students.base import StudentModule, make_windows
from distillrec.students.registry import make_student
from distillrec.teachers.export import TeacherArtifacts


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models train faster on one thread (and leave the second core to the rest of the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_artifacts(
    folder: Path, train: Interactions, topk_items, topk_scores, dim: int = 4, seed: int = 0
) -> Path:
    """A hand-made teacher folder in the layout of `teachers/export.py`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "positions_topk_items.npy", np.asarray(topk_items, dtype=np.int32))
    np.save(folder / "positions_topk_scores.npy", np.asarray(topk_scores, dtype=np.float32))
    np.save(folder / "user_hidden.npy", rng.normal(size=(train.n_users, dim)).astype(np.float32))
    np.save(folder / "item_embeddings.npy", rng.normal(size=(train.n_items, dim)).astype(np.float32))
    manifest = {
        "n_train": len(train),
        "n_users": train.n_users,
        "n_items": train.n_items,
        "top_k": int(np.shape(topk_items)[1]),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "progress.json").write_text(json.dumps({"done_users": train.n_users}))
    return folder


# ---------------------------------------------------------------- alignment

# user 0: rows 0-4, items 3 1 4 1 5; user 1: rows 5-7, items 0 2 6; user 2: row 8, item 6
TINY = Interactions.from_arrays([0] * 5 + [1] * 3 + [2], [3, 1, 4, 1, 5, 0, 2, 6, 6], np.arange(9), 3, 7)


def tiny_teacher(tmp_path: Path) -> TeacherArtifacts:
    """Row r's top-2 is (r mod 7, (r + 1) mod 7) with scores (r, 0); rows 0 and 5 are not covered (-1)."""
    rows = np.arange(len(TINY))
    items = np.stack([rows % 7, (rows + 1) % 7], axis=1)
    scores = np.stack([rows.astype(float), np.zeros(len(rows))], axis=1)
    items[[0, 5]] = -1
    return TeacherArtifacts(write_artifacts(tmp_path / "tiny", TINY, items, scores))


@pytest.mark.parametrize("last_position", [False, True])
def test_row_r_soft_labels_land_on_the_position_whose_input_is_row_r(tmp_path, last_position):
    labels = TeacherLabels(tiny_teacher(tmp_path), TINY)
    windows = make_windows(TINY, max_len=3, last_position=last_position)
    rows = torch.from_numpy(windows.rows)
    mask = labels.mask(rows)
    if last_position:  # user 0 reads rows 2 3 4, user 1 rows 5 6 7 (row 5 uncovered); user 2 has one item
        np.testing.assert_array_equal(windows.rows, [[2, 3, 4], [5, 6, 7]])
        np.testing.assert_array_equal(mask.numpy(), [[True, True, True], [False, True, True]])
    else:  # user 0 reads rows 1 2 3 (predicting rows 2 3 4), user 1 rows 5 6
        np.testing.assert_array_equal(windows.rows, [[1, 2, 3], [-1, 5, 6]])
        np.testing.assert_array_equal(mask.numpy(), [[True, True, True], [False, False, True]])
    items, scores = labels.topk(rows[mask], 2)
    expected_rows = windows.rows[mask.numpy()]
    np.testing.assert_array_equal(items[:, 0].numpy(), expected_rows % 7)  # the labels are row r's, in order
    np.testing.assert_array_equal(scores[:, 0].numpy(), expected_rows)
    with pytest.raises(ValueError, match="did not cover"):
        labels.topk(torch.tensor([0]), 2)


class OneHotModule(StudentModule):
    """A free 'student': its state after an input item is a free vector (3 x one-hot(item) at the start) and so
    is its item table (the identity at the start), so logits = state @ table.T = state at the start."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.dim = n_items
        self.states = torch.nn.Parameter(torch.cat([torch.zeros(1, n_items), torch.eye(n_items) * 3.0]))
        self.table = torch.nn.Parameter(torch.eye(n_items))

    def forward(self, ids, users):
        return self.states[ids]  # (batch, seq_len, n_items)

    def logits(self, hidden):
        return hidden @ self.table.T

    def item_table(self):
        return self.table


def test_soft_term_equals_kl_over_the_covered_positions_by_hand(tmp_path):
    artifacts = tiny_teacher(tmp_path)
    objective = KDObjective(
        artifacts, [TermSpec.make("soft", temperature=1.0)], ce_weight=0.0, last_position=True
    )
    module = OneHotModule(7)
    bound = objective.bind(TINY, module)
    windows = make_windows(TINY, max_len=3, last_position=True)
    batch = {
        name: torch.from_numpy(getattr(windows, name)) for name in ("inputs", "targets", "rows", "users")
    }
    loss = bound(module, {**batch, "progress": 0.0})
    # covered positions: rows 2 3 4 6 7 (row 5 is not); at row r the teacher puts logits (r, 0) on items
    # (r mod 7, r + 1 mod 7) and -inf elsewhere; the student's logits are 3 x one-hot(item of row r).
    kls = []
    for r in (2, 3, 4, 6, 7):
        p = np.zeros(7)
        p[[r % 7, (r + 1) % 7]] = np.exp([r, 0.0]) / np.exp([r, 0.0]).sum()
        s = np.zeros(7)
        s[TINY.items[r]] = 3.0
        log_q = s - np.log(np.exp(s).sum())
        kls.append(sum(p[i] * (math.log(p[i]) - log_q[i]) for i in range(7) if p[i] > 0))
    assert loss.item() == pytest.approx(np.mean(kls), rel=1e-5)
    assert bound.last_parts["soft"].item() == pytest.approx(np.mean(kls), rel=1e-5)


class RandomModule(StudentModule):
    """Free float64 states and item table with random values (no ties among the scores)."""

    def __init__(self, n_items: int, dim: int = 5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.dim = dim
        self.states = torch.nn.Parameter(torch.randn(n_items + 1, dim, generator=g, dtype=torch.float64))
        self.table = torch.nn.Parameter(torch.randn(n_items, dim, generator=g, dtype=torch.float64))

    def forward(self, ids, users):
        return self.states[ids]  # (batch, seq_len, dim)

    def logits(self, hidden):
        return hidden @ self.table.T

    def item_table(self):
        return self.table


def dense_objective(bound, module: StudentModule, batch: dict) -> torch.Tensor:
    """The objective written the direct way: every top-k term reads the student's (m, n_items) scores and the
    teacher's items as catalogue columns (soft: the teacher's logits are -inf outside its top-k)."""
    targets, rows = batch["targets"], batch["rows"]
    hidden = module(batch["inputs"], batch["users"])
    ce_mask, kd_mask = targets >= 0, bound.labels.mask(rows)
    logits = module.logits(hidden[ce_mask | kd_mask])  # (n, n_items)
    used_ce, used_kd = ce_mask[ce_mask | kd_mask], kd_mask[ce_mask | kd_mask]
    total = torch.nn.functional.cross_entropy(logits[used_ce], targets[ce_mask])  # CE weight 1
    student = logits[used_kd]  # (m, n_items)
    items, scores = bound.labels.topk(rows[kd_mask], bound.k_max)
    for method, spec in bound.specs.items():
        loss, k = bound.composite.terms[method], bound.k[method]
        top, top_scores = items[:, :k], scores[:, :k]
        negatives = sample_negatives(top, bound.n_items, spec.negatives) if spec.negatives else None
        if method == "soft":
            t = spec.loss_params.get("temperature", 1.0)
            if spec.t_min is not None:
                t = confidence_temperature(top_scores, spec.t_min, spec.t_max)
            if spec.full:
                dense_teacher = torch.full_like(student, float("-inf")).scatter(1, top, top_scores.double())
                value = loss(student, dense_teacher, temperature=t)
            else:
                value = loss(
                    student,
                    teacher_topk_items=top,
                    teacher_topk_scores=top_scores,
                    negative_items=negatives,
                    temperature=t,
                )
        elif method == "dllm2rec":
            value = loss(student, top, confidence=top_scores, negative_items=negatives)
        else:  # rd (its rank weights from the full scores), rrd
            value = loss(student, top, negatives)
        if spec.confidence != "none":
            value = confidence_weights(top_scores, spec.confidence, normalize=True) * value
        total = total + spec.weight * value.mean()
    return total


def random_teacher_batch(
    tmp_path: Path, spec: str, uncovered: tuple[int, ...] = (2, 11, 12)
) -> tuple[KDObjective, Interactions, dict]:
    """4 users over 30 items, a teacher with a random top-8 per row (`uncovered` rows not covered), one batch
    of windows."""
    rng = np.random.default_rng(0)
    lengths = [9, 6, 12, 4]
    data = Interactions.from_arrays(
        np.repeat(np.arange(4), lengths), rng.integers(0, 30, sum(lengths)), np.arange(sum(lengths)), 4, 30
    )
    items = np.stack([rng.permutation(30)[:8] for _ in range(len(data))])  # (rows, 8)
    items[list(uncovered)] = -1  # rows the teacher did not cover: CE only at their positions
    scores = -np.sort(-rng.normal(size=items.shape) * 3, axis=1)
    objective = KDObjective(write_artifacts(tmp_path / "t", data, items, scores), parse_kd(spec)[0])
    windows = make_windows(data, max_len=6, last_position=True)
    batch = {
        name: torch.from_numpy(getattr(windows, name)) for name in ("inputs", "targets", "rows", "users")
    }
    return objective, data, batch


@pytest.mark.parametrize(
    "spec",
    [
        "soft",
        "soft:temperature=2.5",
        "soft:t_min=0.5:t_max=3",
        "soft:full=false:negatives=4",
        "rd:k=5",
        "rd:k=5:mu=0.5",
        "rrd:k=5",
        "dllm2rec:k=5",
        "soft:k=6,rd:k=3,dllm2rec:k=4:negatives=3",
        "soft:confidence=top1,rrd:k=5:confidence=entropy",
    ],
)
@pytest.mark.parametrize("gather_cost", [0.0, 1e9], ids=["gathered", "full"])
def test_top_k_terms_on_their_columns_equal_the_terms_on_the_full_scores(
    tmp_path, monkeypatch, spec, gather_cost
):
    """The objective never builds the student's (positions x items) scores (but for small catalogues, where
    one GEMM is cheaper than the gathers): each top-k term reads its columns, the catalogue log-sum-exp, ranks
    and top-K in row chunks (`losses.student_scores`). Loss and gradients equal the direct form's, rows
    crossing chunk boundaries."""
    monkeypatch.setattr("distillrec.layers.softmax_ce.CHUNK_ELEMENTS", 60)  # 2 rows per chunk of 30 items
    monkeypatch.setattr("distillrec.losses.student_scores.GATHER_COST", gather_cost)
    objective, data, batch = random_teacher_batch(tmp_path, spec)
    got, want = [], []
    for form, out in (("columns", got), ("dense", want)):
        module = RandomModule(30)
        bound = objective.bind(data, module)
        torch.manual_seed(5)  # the same sampled negatives
        value = (
            bound(module, {**batch, "progress": 0.0})
            if form == "columns"
            else dense_objective(bound, module, batch)
        )
        value.backward()
        out.extend([value.detach(), module.states.grad, module.table.grad])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "spec, computed", [("soft", 1), ("soft:temperature=2", 2), ("soft:t_min=0.5:t_max=3", 2)]
)
def test_soft_at_temperature_one_shares_the_catalogue_log_sum_exp_with_ce(
    tmp_path, monkeypatch, spec, computed
):
    """At a constant T = 1 the soft term's normaliser is CE's log-sum-exp over the same rows: one chunked pass
    over the catalogue per step, not two (the values are checked against the direct form above)."""
    import distillrec.layers.softmax_ce as softmax_ce_module

    real, calls = softmax_ce_module.logsumexp_scores, []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("temperature"))
        return real(*args, **kwargs)

    monkeypatch.setattr("distillrec.layers.softmax_ce.logsumexp_scores", counting)
    monkeypatch.setattr("distillrec.distill.objective.logsumexp_scores", counting)
    monkeypatch.setattr("distillrec.losses.soft_label_kd.logsumexp_scores", counting)
    objective, data, batch = random_teacher_batch(tmp_path, spec)
    module = RandomModule(30)
    objective.bind(data, module)(module, {**batch, "progress": 0.0}).backward()
    assert len(calls) == computed


@pytest.mark.parametrize("uncovered", [(2, 11, 12), ()], ids=["some-rows-uncovered", "all-rows-covered"])
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_soft_with_a_shared_log_sum_exp_equals_soft_with_its_own(tmp_path, uncovered, bf16):
    """Sharing CE's log-sum-exp changes where the normaliser is computed, not the loss or its gradients:
    with rows the teacher did not cover (the soft term takes a subset of CE's) or none, in fp32 and bf16."""
    objective, data, batch = random_teacher_batch(tmp_path, "soft", uncovered)
    got = {}
    for share in (True, False):
        module = RandomModule(30).float() if bf16 else RandomModule(30)
        bound = objective.bind(data, module)
        assert bound.share_lse
        bound.share_lse = share
        with torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext():
            value = bound(module, {**batch, "progress": 0.0})
        value.backward()
        got[share] = [value.detach(), bound.last_parts["soft"], module.states.grad, module.table.grad]
    tolerance = {"rtol": 1e-2, "atol": 2e-3} if bf16 else {"rtol": 1e-10, "atol": 1e-12}  # bf16: ~1 ulp
    for a, b in zip(got[True], got[False], strict=True):
        torch.testing.assert_close(a, b, **tolerance)


def test_under_bf16_the_student_log_probabilities_of_the_columns_never_exceed_zero():
    """The normaliser divides the same rounded scores by T as the soft term does with its columns (dividing
    h by T before the GEMM rounds differently, and the top item's log q could come out above 0)."""
    g = torch.Generator().manual_seed(0)
    hidden, table = torch.randn(64, 16, generator=g) * 3, torch.randn(300, 16, generator=g)
    items = torch.randint(0, 300, (64, 20), generator=g)
    items[:, 0] = (hidden @ table.T).argmax(dim=1)  # the item that dominates each row's softmax
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_q = (
            scores_at(hidden, table, items) / 0.3 - logsumexp_scores(hidden, table, temperature=0.3)[:, None]
        )
    assert log_q.max().item() <= 0.0


def test_soft_term_under_bf16_autocast_stays_close_to_float32_and_non_negative(tmp_path):
    objective, data, batch = random_teacher_batch(tmp_path, "soft:temperature=0.3")
    values = {}
    for name, context in (
        ("fp32", contextlib.nullcontext()),
        ("bf16", torch.autocast("cpu", torch.bfloat16)),
    ):
        module = RandomModule(30).float()
        bound = objective.bind(data, module)
        with context:
            values[name] = bound(module, {**batch, "progress": 0.0}).item(), bound.last_parts["soft"].item()
    assert values["bf16"][1] >= 0.0
    assert values["bf16"][0] == pytest.approx(values["fp32"][0], rel=0.05)
    assert values["bf16"][1] == pytest.approx(values["fp32"][1], rel=0.05)


def test_a_batch_without_covered_positions_gets_cross_entropy_only(tmp_path):
    artifacts = tiny_teacher(tmp_path)
    objective = KDObjective(artifacts, [TermSpec.make("soft")], ce_weight=0.5)
    module = OneHotModule(7)
    bound = objective.bind(TINY, module)
    # user 1's first position only: input row 5 (uncovered), target row 6's item 2
    batch = {
        "inputs": torch.tensor([[1]]),
        "targets": torch.tensor([[2]]),
        "rows": torch.tensor([[5]]),
        "users": torch.tensor([1]),
        "progress": 0.3,
    }
    expected = 0.5 * torch.nn.functional.cross_entropy(torch.eye(7)[[0]] * 3.0, torch.tensor([2]))
    assert bound(module, batch).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("method", sorted(set(KD_METHODS) - {"ced"}))  # ced has no term (its own test)
def test_every_kd_method_alone_moves_the_student_to_the_teacher(tmp_path, method):
    """KD only (CE weight 0), a free one-hot student, a teacher whose row r says 'item(r) + 1, then item(r) + 2':
    the listwise terms (soft, rrd) must make item + 1 the student's top-1 after every input item, the pointwise
    ones (rd, dllm2rec) the pair its top-2; hint, de and the parameter terms must drive their distance to ~zero."""
    inputs_items = TINY.items.astype(np.int64)
    items = np.stack([(inputs_items + 1) % 7, (inputs_items + 2) % 7], axis=1)
    scores = np.tile([2.0, 1.0], (len(TINY), 1))
    folder = write_artifacts(tmp_path / "teacher", TINY, items, scores, dim=8)
    options = {"k": 2, "negatives": 2} if method in ("rd", "rrd", "dllm2rec") else {}
    if method == "soft":
        options = {"k": 2}
    objective = KDObjective(folder, [TermSpec.make(method, **options)], ce_weight=0.0, last_position=True)
    torch.manual_seed(0)
    module = OneHotModule(7)
    with torch.no_grad():
        module.table.copy_(torch.randn(7, 7) * 0.1)
    bound = objective.bind(TINY, module)
    optimizer = torch.optim.Adam([*module.parameters(), *bound.parameters()], lr=0.1)
    windows = make_windows(TINY, max_len=5, last_position=True)
    batch = {
        name: torch.from_numpy(getattr(windows, name)) for name in ("inputs", "targets", "rows", "users")
    }
    first = None
    for _ in range(120):
        loss = bound(module, {**batch, "progress": 0.0})
        assert torch.isfinite(loss)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seen = np.unique(inputs_items[windows.rows[windows.rows >= 0]])
    scores = module.logits(
        module(torch.from_numpy(seen)[:, None] + 1, None)[:, 0]
    ).detach()  # after each item
    if method in ("soft", "rrd"):  # listwise: the teacher's order is learned
        top1 = scores.argmax(dim=1).numpy()
        np.testing.assert_array_equal(top1, (seen + 1) % 7)
    elif method in ("rd", "dllm2rec"):  # pointwise: the top-k become positives, their order is not enforced
        top2 = np.sort(scores.topk(2, dim=1).indices.numpy(), axis=1)
        np.testing.assert_array_equal(
            top2, np.sort(np.stack([(seen + 1) % 7, (seen + 2) % 7], axis=1), axis=1)
        )
    else:
        assert loss.item() < 0.05 * first


def test_param_hard_init_starts_the_student_table_at_the_compressed_teacher_table(tmp_path):
    """`param_hard:init=true` copies the whitened PCA of the teacher's items into a stored item table before
    training; a student whose item table is computed (the two-tower's text tower) is refused by name."""
    from distillrec.layers.pca import pca_compress

    folder = write_artifacts(
        tmp_path / "teacher", TINY, np.zeros((len(TINY), 2)), np.zeros((len(TINY), 2)), dim=6
    )
    terms, ce_weight = parse_kd("param_hard:init=true:weight=0")
    assert terms[0].init and terms[0].weight == 0
    objective = KDObjective(folder, terms, ce_weight)
    student = make_student("sasrec", dim=4, progress=False)
    module = student._build_module(TINY)
    before = module.item_embedding.table()[0].detach().clone()
    objective.bind(TINY, module)
    teacher = torch.tensor(np.load(folder / "item_embeddings.npy"))
    expected = pca_compress(teacher, 4, whiten=True) * 4**-0.5
    torch.testing.assert_close(module.item_table().detach(), expected.float())
    torch.testing.assert_close(module.item_embedding.table()[0].detach(), before)  # padding row untouched
    text = np.random.default_rng(0).normal(size=(TINY.n_items, 6)).astype(np.float32)
    two_tower = make_student(
        "two_tower", text_embeddings=text, text_dim=4, dim=4, progress=False
    )._build_module(TINY)
    with pytest.raises(ValueError, match="init=true needs a student whose item_table"):
        objective.bind(TINY, two_tower)
    with pytest.raises(ValueError, match="unknown option"):
        parse_kd("soft:init=true")


def test_item_table_terms_alone_keep_the_plain_windows_so_the_last_position_trains(tmp_path):
    """With only param_* terms a KD-only last slot would get no gradient at all, yet a sequential student predicts
    from that slot at test time: the objective falls back to the plain windows; a position term keeps the slot."""
    folder = write_artifacts(
        tmp_path / "teacher", TINY, np.zeros((len(TINY), 2)), np.zeros((len(TINY), 2)), dim=6
    )
    for spec, expected in (
        ("param_init", False),
        ("param_soft,param_hard", False),
        ("soft,param_init", True),
    ):
        objective = KDObjective(folder, *parse_kd(spec), last_position=True)
        assert objective.last_position is expected, spec
        assert objective.describe()["last_position"] is expected
    torch.manual_seed(0)
    student = make_student("sasrec", dim=4, max_len=4, max_epochs=2, lr=0.05, progress=False)
    student.fit(TINY, objective=KDObjective(folder, *parse_kd("param_init")))
    torch.manual_seed(0)  # what fit() does before building its module: `start` is the student's initial state
    start = make_student("sasrec", dim=4, max_len=4, progress=False)._build_module(TINY)
    trained, initial = student.module_.position_embedding.weight, start.position_embedding.weight
    assert not torch.allclose(trained[0], initial[0])  # position 0 = the most recent item: trained


def test_de_anneals_its_temperature_with_the_training_progress(tmp_path, monkeypatch):
    """The objective hands `de` the batch's training progress, which sets its Gumbel temperature."""
    from distillrec.losses.distillation_experts import DistillationExperts

    used = []
    original = DistillationExperts.temperature
    monkeypatch.setattr(
        DistillationExperts, "temperature", lambda self, p: used.append(p) or original(self, p)
    )
    objective = KDObjective(tiny_teacher(tmp_path), [TermSpec.make("de")], last_position=True)
    module = OneHotModule(7)
    bound = objective.bind(TINY, module)
    windows = make_windows(TINY, max_len=5, last_position=True)
    batch = {
        name: torch.from_numpy(getattr(windows, name)) for name in ("inputs", "targets", "rows", "users")
    }
    for progress in (0.0, 0.5, 1.0):
        assert torch.isfinite(bound(module, {**batch, "progress": progress}))
    assert used == [0.0, 0.5, 1.0]


def test_ced_trains_through_the_teacher_table_and_leaves_a_plain_student_of_the_same_size(
    tmp_path, monkeypatch
):
    """`ced` wraps the student's item embedding for training (its projection of the teacher's item table learns)
    and folds it back afterwards, best epoch restored: the trained student has the plain student's parameters and
    scores with the folded table, whose validation score is the best one training saw; a student without an
    `ItemEmbedding` (MF) is refused by name."""
    from distillrec.losses.collaborative_embedding_kd import CollaborativeEmbedding

    folder = write_artifacts(
        tmp_path / "teacher", TINY, np.zeros((len(TINY), 2)), np.zeros((len(TINY), 2)), dim=6
    )
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['weight'\] for KD method 'ced'"):
        parse_kd("ced:weight=2")
    with pytest.raises(ValueError, match="hidden_dim=1.5 must be int"):
        parse_kd("ced:hidden_dim=1.5")
    terms, ce_weight = parse_kd("ced:gamma=0.5")
    objective = KDObjective(folder, terms, ce_weight, last_position=True)
    assert objective.last_position is False  # no term reads positions
    assert objective.describe()["terms"] == [{"method": "ced", "gamma": 0.5, "hidden_dim": None}]
    module = make_student("sasrec", dim=4, progress=False)._build_module(TINY)
    bound = objective.bind(TINY, module)
    wrapped = module.item_embedding
    assert type(wrapped).__name__ == "CollaborativeEmbedding" and wrapped.gamma == 0.5
    assert len(bound.composite.terms) == 0  # CE only: the knowledge is in the embedding
    assert "item_embedding.teacher_item_emb" not in module.state_dict()  # rebuilt at bind, not checkpointed

    layers = []  # every wrapper fit() builds, with its projection as built
    original_init = CollaborativeEmbedding.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        layers.append((self, self.project.weight.detach().clone()))

    monkeypatch.setattr(CollaborativeEmbedding, "__init__", recording_init)
    tables = []  # the wrapper's table when it is folded
    original_folded = CollaborativeEmbedding.folded
    monkeypatch.setattr(
        CollaborativeEmbedding,
        "folded",
        lambda self: tables.append(self.table().detach()) or original_folded(self),
    )
    valid = Interactions.from_arrays([0, 1, 2], [6, 4, 2], [10, 11, 12], 3, 7)
    settings = {"dim": 4, "max_len": 4, "max_epochs": 6, "lr": 0.05, "progress": False}
    torch.manual_seed(0)
    plain = make_student("sasrec", **settings).fit(TINY)
    torch.manual_seed(0)
    student = make_student("sasrec", **settings).fit(TINY, valid, objective=objective)
    assert type(student.module_.item_embedding).__name__ == "ItemEmbedding"
    assert student.n_params() == plain.n_params()
    layer, projection_at_start = layers[-1]
    assert not torch.allclose(layer.project.weight, projection_at_start)  # the projection trained
    np.testing.assert_allclose(student.item_embeddings(), tables[-1][1:].numpy())  # the served table is e
    best = evaluate(student, TINY, valid, ks=(10,), batch_size=512).summary["NDCG@10"]
    assert best == pytest.approx(student.fit_result_.best_score)

    # with param_init the student's own table starts at the compressed teacher table, and ced adds to it
    module = make_student("sasrec", dim=4, progress=False)._build_module(TINY)
    both = KDObjective(folder, *parse_kd("ced,param_init")).bind(TINY, module)
    torch.testing.assert_close(module.item_embedding.base.table()[1:], both.teacher_item_table)
    mf = make_student("mf", dim=4, progress=False)._build_module(TINY)
    with pytest.raises(ValueError, match="ced needs a student whose item_embedding is an ItemEmbedding"):
        objective.bind(TINY, mf)


def test_every_method_describes_itself_as_json_and_rejects_inherited_arguments():
    for method in KD_METHODS:
        json.dumps(TermSpec.make(method).to_json())  # no inspect._empty from nn.Module's *args, **kwargs
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['args'\] for KD method 'param_soft'"):
        parse_kd("param_soft:args=3")


def test_a_new_method_is_its_file_and_one_registry_line(tmp_path, monkeypatch):
    """A method declared as a loss plus its `KDMethod` and registered in `KD_METHODS` (nothing else changed)
    parses with its options and defaults and trains a student through the objective."""
    from distillrec.losses.method import KDMethod
    from distillrec.losses.registry import KD_METHODS as registry

    class TopMass(torch.nn.Module):
        """-scale x the mean student score of the teacher's top-k (a toy loss)."""

        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, student_logits, teacher_topk_items):
            return -self.scale * student_logits.gather(1, teacher_topk_items).mean()

    method = KDMethod(
        "topmass",
        reads="topk",
        loss=TopMass,
        defaults={"weight": 0.5, "k": 3},
        inputs=lambda batch, spec: {"student_logits": batch.student, "teacher_topk_items": batch.top},
    )
    monkeypatch.setitem(registry, "topmass", method)
    (term,), _ = parse_kd("topmass:scale=2")
    assert (term.weight, term.k, term.loss_params) == (0.5, 3, {"scale": 2})
    with pytest.raises(ValueError, match="topmass: option scale='x' must be float"):
        parse_kd("topmass:scale=x")
    objective, data, batch = random_teacher_batch(tmp_path, "topmass:scale=2")
    module = RandomModule(30)
    bound = objective.bind(data, module)
    loss = bound(module, {**batch, "progress": 0.0})
    loss.backward()
    assert set(bound.last_parts) == {"ce", "topmass"} and module.table.grad is not None


def test_every_option_of_every_method_is_type_checked():
    """Each option a method takes has a declared type (its own options' dataclass, its loss's constructor), so
    a value of the wrong type is an error naming it, never passed on unchecked."""
    from distillrec.losses.spec import _valid_keys

    for method in KD_METHODS:
        for key in sorted(_valid_keys(method)):
            with pytest.raises(ValueError, match=rf"{method}: option {key}=\[\] must be"):
                TermSpec.make(method, **{key: []})


def test_a_damaged_teacher_export_is_named(tmp_path):
    """Truncated arrays, NaN scores and item ids outside the catalogue are errors naming the file and row, when
    the export is opened (not a NaN loss or an IndexError later)."""
    rows = np.arange(len(TINY))
    items = np.stack([rows % 7, (rows + 1) % 7], axis=1)
    scores = np.stack([rows, np.zeros(len(TINY))], axis=1).astype(np.float32)
    folder = write_artifacts(tmp_path / "nan", TINY, items, np.where(rows[:, None] == 4, np.nan, scores))
    with pytest.raises(ValueError, match=r"positions_topk_scores.npy: row 4 holds a NaN or infinite value"):
        TeacherArtifacts(folder)
    bad_items = items.copy()
    bad_items[6, 1] = 7
    folder = write_artifacts(tmp_path / "ids", TINY, bad_items, scores)
    with pytest.raises(
        ValueError, match=r"positions_topk_items.npy: row 6 holds an item id outside \[-1, 7\)"
    ):
        TeacherArtifacts(folder)
    folder = write_artifacts(tmp_path / "cut", TINY, items, scores)
    path = folder / "user_hidden.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"user_hidden.npy: not a readable array \(truncated\?\)"):
        TeacherArtifacts(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["file_bytes"] = {"user_hidden.npy": 10_000}  # as `export_teacher` records them
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match=r"user_hidden.npy: truncated: \d+ bytes, the manifest records 10000"
    ):
        TeacherArtifacts(folder)


def test_teacher_built_on_other_data_is_rejected(tmp_path):
    other = Interactions.from_arrays([0, 0, 1], [0, 1, 2], [0, 1, 2], 2, 7)
    with pytest.raises(ValueError, match="same dataset and split"):
        TeacherLabels(tiny_teacher(tmp_path), other)


# ---------------------------------------------------------------- KD helps when the teacher knows more

N_RULE = 40


def noisy_rule_data(n_users: int = 60, length: int = 8, p_rule: float = 0.4, seed: int = 0) -> Interactions:
    """Sequences follow i -> i + 1 (mod 40) only 40% of the time in training (the rest is noise); the last two
    items (validation and test) always follow it. A teacher that knows the rule knows more than the data shows."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        seq = [int(rng.integers(N_RULE))]
        for t in range(1, length):
            rule = t >= length - 2 or rng.random() < p_rule
            seq.append((seq[-1] + 1) % N_RULE if rule else int(rng.integers(N_RULE)))
        users += [u] * length
        items += seq
    return Interactions.from_arrays(users, items, np.arange(len(users)), n_users, N_RULE)


def rule_teacher(folder: Path, train: Interactions, k: int = 10) -> Path:
    """Row r's top-1 is item(r) + 1 with a confident score; the other k - 1 slots are random items at score 0."""
    rng = np.random.default_rng(0)
    nxt = (train.items.astype(np.int64) + 1) % N_RULE
    others = np.stack([rng.permutation(np.setdiff1d(np.arange(N_RULE), [n]))[: k - 1] for n in nxt])
    items = np.concatenate([nxt[:, None], others], axis=1)
    scores = np.concatenate([np.full((len(nxt), 1), 6.0), np.zeros((len(nxt), k - 1))], axis=1)
    return write_artifacts(folder, train, items, scores)


def test_kd_student_learns_the_rule_the_noisy_data_hides(tmp_path):
    split = leave_one_out(noisy_rule_data())
    teacher = rule_teacher(tmp_path / "teacher", split.train)
    params = dict(
        dim=16,
        max_len=10,
        max_epochs=40,
        patience=8,
        eval_every=5,
        lr=5e-3,
        batch_size=32,
        dropout=0.0,
        progress=False,
    )
    ndcg = {}
    for variant, objective in (("plain", None), ("kd", KDObjective(teacher, *parse_kd("soft")))):
        model = make_student("sasrec", **params).fit(split.train, split.valid, objective=objective)
        ndcg[variant] = evaluate(model, split.test_history(), split.test).summary["NDCG@10"]
    # measured: plain 0.53, KD 0.96
    assert ndcg["kd"] > ndcg["plain"] + 0.2 and ndcg["kd"] > 0.85


# ---------------------------------------------------------------- objective spec


def test_parse_kd_resolves_defaults_and_overrides():
    terms, ce_weight = parse_kd("soft:temperature=2:k=50, rd:lam=1,ce:weight=0.5")
    assert ce_weight == 0.5
    soft, rd = terms
    assert (soft.method, soft.k, soft.loss_params, soft.full) == ("soft", 50, {"temperature": 2}, True)
    assert (rd.method, rd.k, rd.negatives, rd.loss_params) == ("rd", 10, 10, {"lam": 1})
    schedule = TermSpec.make("rd", schedule="linear", weight=1.0, weight_end=0.0).weight_schedule()
    assert schedule(0.25) == pytest.approx(0.75)
    # the alias param_init is param_hard with init=true and weight 0; the user's options still override it
    (alias,), _ = parse_kd("param_init")
    assert alias == TermSpec.make("param_hard", init=True, weight=0.0)
    (alias,), _ = parse_kd("param_init:weight=0.1")
    assert (alias.method, alias.init, alias.weight) == ("param_hard", True, 0.1)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sof", r"unknown KD method 'sof'"),
        ("soft:temprature=2", r"unknown option\(s\) \['temprature'\] for KD method 'soft'"),
        ("rd:k", "not key=value"),
        ("soft,soft", "given twice"),
        ("param_init,param_hard", "given twice"),
        ("param_inti", r"unknown KD method 'param_inti'.*'param_init'"),
        ("rd:schedule=linear", "needs weight_end"),
        ("ce:weight=1", "no KD method"),
        ("soft:k=abc", r"soft: option k='abc' must be int"),
        ("soft:negatives=5", "only with full=false"),
    ],
)
def test_parse_kd_rejects_bad_specs_naming_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_kd(spec)


def test_sampled_negatives_avoid_the_teacher_top_k_and_cover_the_rest():
    torch.manual_seed(0)
    exclude = torch.tensor([[0, 5, 9, 3], [9, 8, 7, 6]])
    drawn = sample_negatives(exclude, 10, 2000)  # (2, 2000)
    for row, excluded in zip(drawn, exclude, strict=True):
        counts = np.bincount(row.numpy(), minlength=10)
        assert counts[excluded.numpy()].sum() == 0
        allowed = np.setdiff1d(np.arange(10), excluded.numpy())
        assert counts[allowed].min() > 2000 / 6 * 0.8  # roughly uniform over the 6 others


# ---------------------------------------------------------------- significance


def test_paired_test_by_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 1.0, 3.0])
    result = paired_test(a, b)
    # d = 1 1 2 1: mean 1.25, sd 0.5, t = 1.25 / (0.5 / 2) = 5, two-sided p = 2 P(T_3 > 5)
    assert result.mean_diff == pytest.approx(1.25) and result.t_statistic == pytest.approx(5.0)
    assert result.t_pvalue == pytest.approx(2 * stats.t.sf(5.0, 3))
    # Wilcoxon: all 4 differences positive; exact null: 2^4 equally likely sign patterns, W- = 0 only for one,
    # so the two-sided p = 2 / 16
    assert result.wilcoxon_statistic == 0.0 and result.wilcoxon_pvalue == pytest.approx(0.125)
    assert result.n == 4 and result.n_nonzero == 4
    same = paired_test(a, a)
    assert (same.t_pvalue, same.wilcoxon_pvalue, same.mean_diff) == (1.0, 1.0, 0.0)


def test_bootstrap_intervals():
    assert bootstrap_ci(np.full(50, 0.3)) == pytest.approx((0.3, 0.3))
    x = np.random.default_rng(0).normal(1.0, 2.0, size=2000)
    low, high = bootstrap_ci(x, n_resamples=2000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # the normal-theory interval the bootstrap approximates
    assert low == pytest.approx(x.mean() - half, abs=0.2 * half) and high == pytest.approx(
        x.mean() + half, abs=0.2 * half
    )
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=2000, method="percentile", random_state=1
    ).confidence_interval
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=0.1 * half)
    b = x - 0.5
    assert bootstrap_diff_ci(x, b) == pytest.approx((0.5, 0.5))


def test_seed_summary_is_the_student_t_interval():
    summary = seed_summary([0.30, 0.32, 0.34])
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)  # sd of (0.30, 0.32, 0.34) is 0.02
    assert summary["mean"] == pytest.approx(0.32) and summary["std"] == pytest.approx(0.02)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((0.32 - half, 0.32 + half))
    assert seed_summary([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci_low": None, "ci_high": None}


# ---------------------------------------------------------------- CLI end to end


@pytest.fixture(scope="module")
def ml100k_slice(tmp_path_factory, data_dir) -> Path:
    """The first 100 users of ml-100k (and the items they rated) in the generic format."""
    raw = np.loadtxt(data_dir / "ml-100k" / "u.data", dtype=np.int64)
    raw = raw[raw[:, 0] <= 100]
    folder = tmp_path_factory.mktemp("ml100k_slice")
    lines = ["user_id\titem_id\ttimestamp"] + [f"{u}\t{i}\t{t}" for u, i, _, t in raw]
    (folder / "interactions.tsv").write_text("\n".join(lines) + "\n")
    items = sorted(set(raw[:, 1].tolist()))
    (folder / "items.tsv").write_text("item_id\ttitle\n" + "".join(f"{i}\tmovie {i}\n" for i in items))
    return folder


def tiny_real_teacher(dataset_folder: Path, out: Path) -> None:
    """A teacher folder as `distillrec teacher` writes it, from a 1-epoch LLM-enhanced SASRec on random 'text'."""
    from distillrec.data.dataset import load_dataset
    from distillrec.data.split import make_split
    from distillrec.manifest import build_manifest
    from distillrec.teachers.export import export_teacher
    from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec

    ds = load_dataset(dataset_folder)
    split = make_split(ds.interactions, "leave_one_out")
    text = np.random.default_rng(0).normal(size=(ds.n_items, 24)).astype(np.float32)
    teacher = LLMEnhancedSASRec(
        text, dim=16, adapter_hidden=16, n_layers=1, n_heads=1, max_len=50, max_epochs=1, progress=False
    ).fit(split.train)
    out.mkdir(parents=True)
    np.save(out / "text_embeddings.npy", text)
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "teacher": {
                    "valid": evaluate(teacher, split.train, split.valid).summary,
                    "test": evaluate(teacher, split.test_history(), split.test).summary,
                    "params": teacher.n_params(),
                    "train_seconds": 1.0,
                }
            }
        )
    )
    manifest = build_manifest({"split": {"protocol": split.protocol, **split.params}}, ds)
    export_teacher(teacher, split.train, out, manifest, top_k=20, progress=False)


def test_distill_command_end_to_end(tmp_path, ml100k_slice):
    from distillrec.cli import app

    teacher = tmp_path / "teacher"
    tiny_real_teacher(ml100k_slice, teacher)
    out = tmp_path / "run"
    args = [
        "distill",
        str(ml100k_slice),
        "--teacher",
        str(teacher),
        "--student",
        "sasrec",
        "--kd",
        "soft,rd",
        "--out",
        str(out),
        "--seeds",
        "0,1",
        "--dim",
        "8",
        "--max-epochs",
        "2",
        "--max-len",
        "20",
        "--length-buckets",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    teacher_params = json.loads((teacher / "metrics.json").read_text())["teacher"]["params"]
    for variant in ("student_kd", "student_plain"):
        row = metrics[variant]
        assert [s["seed"] for s in row["per_seed"]] == [0, 1]
        assert row["test"]["NDCG@10"] == pytest.approx(
            np.mean([s["test"]["NDCG@10"] for s in row["per_seed"]])
        )
        assert row["params_fraction_of_teacher"] == pytest.approx(row["params"] / teacher_params)
        for run in row["per_seed"]:  # leave-one-out: each test user's one target is in exactly one slice
            slices = run["slices"]
            assert set(slices) <= {"head", "tail", "cold"} and "head" in slices
            n_users = sum(s["users"] for s in slices.values())
            assert n_users == metrics["comparison"]["pooled"]["n"]
            weighted = sum(s["users"] * s["NDCG@10"] for s in slices.values()) / n_users
            assert weighted == pytest.approx(run["test"]["NDCG@10"])
        for name, mean in row["test_slices"].items():
            assert mean["NDCG@10"] == pytest.approx(
                np.mean([s["slices"][name]["NDCG@10"] for s in row["per_seed"]])
            )
    assert [t["method"] for t in metrics["student_kd"]["objective"]["terms"]] == ["soft", "rd"]
    pooled = metrics["comparison"]["pooled"]
    per_user = np.load(out / "per_user.npz")
    assert per_user["student_kd"].shape == (2, pooled["n"]) == per_user["student_plain"].shape
    diff = per_user["student_kd"].mean(axis=0) - per_user["student_plain"].mean(axis=0)
    assert pooled["mean_diff"] == pytest.approx(diff.mean())
    assert (
        0 <= pooled["t_pvalue"] <= 1
        and pooled["diff_ci_low"] <= pooled["mean_diff"] <= pooled["diff_ci_high"]
    )
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["student"]["name"] == "sasrec" and config["student_params"]["length_buckets"] is True
    assert "student_kd" in result.output and "teacher" in result.output

    # every run checkpointed; the same command again resumes from them, trains nothing and reports the same
    runs = sorted(f"{variant}-seed{seed}" for variant in ("student_kd", "student_plain") for seed in (0, 1))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == runs
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    replayed = json.loads((out / "metrics.json").read_text())
    for variant in ("student_kd", "student_plain"):
        assert replayed[variant]["per_seed"] == metrics[variant]["per_seed"]

    # a teacher built on other data is refused before any training
    bad = CliRunner().invoke(app, args[:2] + ["--min-user", "30"] + args[2:])
    assert bad.exit_code != 0 and "fingerprints differ" in bad.output

    # every trained student is a model folder; OUT/model is the KD student of the first seed
    assert sorted(p.name for p in (out / "models").iterdir()) == runs
    check_recommend_command(
        out / "model", metrics["student_kd"]["per_seed"][0]["test"]["HR@10"], ml100k_slice
    )


def check_recommend_command(model_dir: Path, hr10: float, dataset_folder: Path) -> None:
    """`distillrec recommend` on a saved student: a table, JSON, and a batch whose HR@10 on the test items is the
    evaluation's; bad requests are named with their line."""
    from distillrec.cli import app
    from distillrec.data.dataset import load_dataset
    from distillrec.data.split import make_split

    ds = load_dataset(dataset_folder)
    test = make_split(ds.interactions, "leave_one_out").test
    users = [str(ds.user_ids[u]) for u in test.users]
    targets = dict(zip(users, (str(ds.item_ids[i]) for i in test.items), strict=True))

    shown = CliRunner().invoke(app, ["recommend", str(model_dir), "--user", users[0], "--k", "5"])
    assert shown.exit_code == 0, shown.output
    as_json = CliRunner().invoke(app, ["recommend", str(model_dir), "--user", users[0], "--k", "5", "--json"])
    row = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert row["user_id"] == users[0] and len(row["items"]) == 5 and row["items"][0] in shown.output

    requests = model_dir.parent / "requests.jsonl"
    requests.write_text("".join(json.dumps({"user_id": u}) + "\n" for u in users))
    results = model_dir.parent / "results.jsonl"
    batch = ["recommend", str(model_dir), "--input", str(requests), "--output", str(results)]
    done = CliRunner().invoke(app, batch)
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["user_id"] for r in rows] == users
    hits = [targets[r["user_id"]] in r["items"][:10] for r in rows]
    assert np.mean(hits) == pytest.approx(hr10)

    requests.write_text('{"user_id": "1"}\n{"history": "50"}\n')
    bad = CliRunner().invoke(app, batch)
    assert bad.exit_code == 2 and "line 2: history must be a list of item ids" in bad.output
    missing = CliRunner().invoke(app, ["recommend", str(model_dir.parent), "--user", "1"])
    assert missing.exit_code == 2 and "not a distillrec model manifest" in missing.output
    assert f"did you mean {model_dir}" in missing.output.replace("\n", "")


def test_a_warm_started_student_fine_tunes_its_own_weights_and_binding_leaves_them(tmp_path):
    """`fit(warm_start=True)` continues from the weights the student holds; an objective made with
    `change_student=False` neither copies the teacher's table in (param_init) nor wraps the embedding (ced)."""
    folder = write_artifacts(
        tmp_path / "teacher", TINY, np.zeros((len(TINY), 2)), np.zeros((len(TINY), 2)), dim=6
    )
    student = make_student("sasrec", dim=4, max_len=4, max_epochs=2, lr=0.05, progress=False).fit(TINY)
    trained = {k: v.clone() for k, v in student.module_.state_dict().items()}
    module = student.module_
    KDObjective(folder, *parse_kd("ced,param_init"), change_student=False).bind(TINY, module)
    assert type(module.item_embedding).__name__ == "ItemEmbedding"  # not wrapped
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, trained[key])  # nothing copied in
    student.lr = 1e-12  # epochs that cannot move the weights: what it starts from is what it ends with
    student.fit(
        TINY, objective=KDObjective(folder, *parse_kd("param_init"), change_student=False), warm_start=True
    )
    for key, value in student.module_.state_dict().items():
        torch.testing.assert_close(value, trained[key])
    student.lr = 0.05
    student.fit(TINY, warm_start=True)
    assert not torch.allclose(student.module_.position_embedding.weight, trained["position_embedding.weight"])
    with pytest.raises(ValueError, match="holds no weights yet"):
        make_student("sasrec", dim=4, progress=False).fit(TINY, warm_start=True)
