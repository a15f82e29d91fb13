"""Behaviour of the distillation losses (src/distillrec/losses).

Every registered loss (composite.KD_LOSSES) passes one suite: finite, gradients reach the student's inputs,
zero (or lower) when the student matches the teacher. Then hand-computed values, equivalences, stored
values (tests/fixtures/losses_expected.json), schedules, CompositeLoss and the embedding layer.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from distillrec.layers.pca import pca_compress
from distillrec.layers.sasrec import ItemEmbedding
from distillrec.layers.softmax_ce import logsumexp_scores, softmax_ce
from distillrec.losses.collaborative_embedding_kd import CollaborativeEmbedding
from distillrec.losses.composite import CompositeLoss
from distillrec.losses.distillation_experts import DistillationExperts
from distillrec.losses.hint import HintLoss
from distillrec.losses.importance_ranking_kd import ImportanceRankingDistillation
from distillrec.losses.parameter import ParameterHardLoss, ParameterSoftLoss
from distillrec.losses.ranking_kd import RankingDistillation
from distillrec.losses.registry import KD_LOSSES, make_kd_loss
from distillrec.losses.relaxed_ranking_kd import RelaxedRankingDistillation
from distillrec.losses.schedules import (
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    confidence_temperature,
    confidence_weights,
    teacher_confidence,
)
from distillrec.losses.soft_label_kd import SoftLabelKD
from distillrec.losses.student_scores import student_rank_of

EXPECTED = Path(__file__).parent / "fixtures" / "losses_expected.json"
D = torch.float64


def wave(shape, a: float, b: float, scale: float = 1.0, fn=torch.sin) -> torch.Tensor:
    """Deterministic 'random-looking' values (no RNG: identical on every platform and torch version)."""
    n = math.prod(shape)
    return (scale * fn(torch.arange(n, dtype=D) * a + b)).reshape(shape)


def fixed_inputs() -> dict:
    """The small fixed input every stored value is computed on: batch 2, 6 items, K = 3, 3 negatives."""
    teacher = wave((2, 6), 0.9, 0.0, 3.0, torch.cos)  # (batch, n_items)
    order = teacher.argsort(dim=1, descending=True)  # (batch, n_items)
    return {
        "student": wave((2, 6), 1.3, 0.5, 2.0),
        "teacher": teacher,
        "topk": order[:, :3],
        "topk_scores": teacher.gather(1, order[:, :3]),
        "rest": order[:, 3:],
        "confidence": torch.tensor([[0.9, 0.5, 0.2], [0.3, 0.8, 0.1]], dtype=D),
        "h_student": wave((2, 3), 0.7, 0.1),
        "h_teacher": wave((2, 4), 0.4, 0.3, 1.0, torch.cos),
        "hint_w": wave((4, 3), 1.1, 0.2, 0.5),
        "emb_student": wave((6, 2), 0.8, 0.4),
        "emb_teacher": wave((6, 4), 0.6, 0.0, 1.0, torch.cos),
    }


# ---------------------------------------------------------------- one suite over the registry


@dataclass
class Case:
    loss: torch.nn.Module
    like: torch.Tensor  # student input that matches the teacher
    unlike: torch.Tensor  # student input that contradicts it (reversed order, other values)
    kwargs: dict  # teacher-side keyword arguments
    student_arg: str  # name of the student input
    zero_when_equal: bool


def make_case(name: str) -> Case:
    x = fixed_inputs()
    t, topk, rest = x["teacher"], x["topk"], x["rest"]
    if name == "soft":
        return Case(SoftLabelKD(temperature=2.0), t, -t, {"teacher_logits": t}, "student_logits", True)
    if name == "rd":
        return Case(RankingDistillation(), t, -t, {"teacher_topk_items": topk}, "student_logits", False)
    if name == "rrd":
        kwargs = {"teacher_topk_items": topk, "uninteresting_items": rest}
        return Case(RelaxedRankingDistillation(), t, -t, kwargs, "student_logits", False)
    if name == "dllm2rec":
        kwargs = {"teacher_topk_items": topk, "confidence": x["confidence"]}
        return Case(ImportanceRankingDistillation(), t, -t, kwargs, "student_logits", False)
    if name == "hint":
        h = x["h_teacher"]  # same width: W starts as the identity
        return Case(HintLoss(4, 4).to(D), h, -h, {"teacher_hidden": h}, "student_hidden", True)
    if name == "de":
        # every expert the identity on positive states: the choice does not matter, and a student equal to the
        # (positive) teacher maps onto it exactly
        h = x["h_teacher"].abs() + 0.1  # (2, 4)
        experts = DistillationExperts(4, 4, n_experts=3).to(D)
        with torch.no_grad():
            experts.w1.copy_(torch.eye(4, dtype=D).expand(3, 4, 4))
            experts.w2.copy_(torch.eye(4, dtype=D).expand(3, 4, 4))
            experts.b1.zero_()
            experts.b2.zero_()
        return Case(experts, h, h.flip(1), {"teacher_hidden": h}, "student_hidden", True)
    compressed = pca_compress(x["emb_teacher"], 2)
    kwargs = {"teacher_compressed": compressed}
    if name == "param_hard":
        return Case(ParameterHardLoss(), compressed, -compressed, kwargs, "student_item_emb", True)
    if name == "param_soft":
        return Case(ParameterSoftLoss(), compressed, 2 * compressed, kwargs, "student_item_emb", True)
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(KD_LOSSES))
def test_registered_loss_is_finite_scalar_with_student_gradients(name):
    case = make_case(name)
    student = case.unlike.clone().requires_grad_(True)
    value = case.loss(**{case.student_arg: student}, **case.kwargs)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(KD_LOSSES))
def test_registered_loss_prefers_a_student_that_matches_the_teacher(name):
    case = make_case(name)
    like = case.loss(**{case.student_arg: case.like}, **case.kwargs)
    unlike = case.loss(**{case.student_arg: case.unlike}, **case.kwargs)
    if case.zero_when_equal:
        assert like.item() == pytest.approx(0.0, abs=1e-9)
    assert like < unlike


@pytest.mark.parametrize("name", sorted(KD_LOSSES))
def test_gradient_descent_from_the_reversed_student_recovers_the_teacher(name):
    # Adam on the student's input alone, from the contradicting start: the loss falls to near its minimum and
    # the student's top-3 becomes the teacher's, in the teacher's order for the list-wise losses (soft, rrd)
    # and as a set for the point-wise ones (rd, dllm2rec), whose weights do not encode the order.
    case = make_case(name)
    student = case.unlike.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([student], lr=0.1)
    start = case.loss(**{case.student_arg: student}, **case.kwargs).item()
    for _ in range(300):
        optimiser.zero_grad()
        case.loss(**{case.student_arg: student}, **case.kwargs).backward()
        optimiser.step()
    assert case.loss(**{case.student_arg: student}, **case.kwargs).item() < 0.02 * start
    if case.student_arg == "student_logits":
        top3 = student.detach().topk(3, dim=1).indices
        teacher_top3 = fixed_inputs()["topk"]
        if name in ("soft", "rrd"):
            assert torch.equal(top3, teacher_top3)
        else:
            assert torch.equal(top3.sort(dim=1).values, teacher_top3.sort(dim=1).values)


def test_registry_names_and_unknown_name_lists_choices():
    assert set(KD_LOSSES) == {"soft", "rd", "rrd", "dllm2rec", "hint", "de", "param_hard", "param_soft"}
    assert isinstance(make_kd_loss("soft", temperature=3.0), SoftLabelKD)
    with pytest.raises(KeyError, match="choices: .*'dllm2rec'.*'soft'"):
        make_kd_loss("fitnet")


# ---------------------------------------------------------------- hand-computed values


def test_soft_kd_by_hand_on_three_logits():
    # s = (0, 0, 0) -> q = (1/3, 1/3, 1/3); t = (0, ln 2, 0) -> p = (1/4, 1/2, 1/4).
    # KL(p || q) = 2 * 1/4 * ln(3/4) + 1/2 * ln(3/2) = 1/2 * ln(9/8) = 0.0588915...
    s = torch.zeros(1, 3, dtype=D)
    t = torch.tensor([[0.0, math.log(2.0), 0.0]], dtype=D)
    assert SoftLabelKD(temperature=1.0)(s, t).item() == pytest.approx(0.5 * math.log(9 / 8), rel=1e-12)
    # T = 2 with t doubled gives the same p, so the loss is T^2 = 4 times it: 2 ln(9/8) = 0.2355660...
    assert SoftLabelKD(temperature=2.0)(s, 2 * t).item() == pytest.approx(2 * math.log(9 / 8), rel=1e-12)


def test_rrd_by_hand():
    # interesting (a, b), uninteresting (c), all scores 0:
    # -log p = [log(e^0 + e^0 + e^0) - 0] + [log(e^0 + e^0) - 0] = ln 3 + ln 2 = ln 6 = 1.7917595...
    s = torch.zeros(1, 3, dtype=D)
    loss = RelaxedRankingDistillation()(s, torch.tensor([[0, 1]]), torch.tensor([[2]]))
    assert loss.item() == pytest.approx(math.log(6.0), rel=1e-12)
    # scores (2, 1, 0): [log(e^2 + e^1 + e^0) - 2] + [log(e^1 + e^0) - 1]
    s = torch.tensor([[2.0, 1.0, 0.0]], dtype=D)
    by_hand = math.log(math.e**2 + math.e + 1) - 2 + math.log(math.e + 1) - 1
    loss = RelaxedRankingDistillation()(s, torch.tensor([[0, 1]]), torch.tensor([[2]]))
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)


def test_rd_by_hand():
    # K = 2, lambda = 1: w = (e^-1, e^-2) / (e^-1 + e^-2); scores 0 -> -log sigmoid(0) = ln 2 each, sum w = 1.
    s = torch.zeros(1, 4, dtype=D)
    assert RankingDistillation(lam=1.0)(s, torch.tensor([[0, 1]])).item() == pytest.approx(math.log(2))
    # two negatives with score 0 add -2 log(1 - sigmoid(0)) = 2 ln 2
    loss = RankingDistillation(lam=1.0)(s, torch.tensor([[0, 1]]), negative_items=torch.tensor([[2, 3]]))
    assert loss.item() == pytest.approx(3 * math.log(2))
    # scores (1, -1): w1 = 1 / (1 + e^-1) = 0.7310586, loss = w1 ln(1 + e^-1) + (1 - w1) ln(1 + e)
    s = torch.tensor([[1.0, -1.0]], dtype=D)
    w1 = 1 / (1 + math.exp(-1))
    by_hand = w1 * math.log(1 + math.exp(-1)) + (1 - w1) * math.log(1 + math.e)
    assert RankingDistillation(lam=1.0)(s, torch.tensor([[0, 1]])).item() == pytest.approx(by_hand)


def test_dllm2rec_weights_by_hand():
    # K = 2, lambda = 1: w^p = (0.7310586, 0.2689414); confidence (0, ln 3) -> w^c = (1/4, 3/4);
    # student's top-2 of scores (5, 0, 4) = {0, 2}: item 0 in it, item 1 not -> w^o = (1, 0).
    # raw = 0.3 w^p + 0.5 w^c + 0.1 w^o = (0.4443176, 0.4556824), sum 0.9 -> w = (0.4936862, 0.5063138)
    s = torch.tensor([[5.0, 0.0, 4.0]], dtype=D)
    loss = ImportanceRankingDistillation()
    w = loss.weights(s, torch.tensor([[0, 1]]), confidence=torch.tensor([[0.0, math.log(3.0)]], dtype=D))
    wp = 1 / (1 + math.exp(-1))
    raw = torch.tensor([0.3 * wp + 0.5 / 4 + 0.1, 0.3 * (1 - wp) + 0.5 * 3 / 4], dtype=D)
    torch.testing.assert_close(w[0], raw / raw.sum())
    assert w[0, 0].item() == pytest.approx(0.4936862, abs=1e-7)


def test_param_soft_by_hand():
    # student rows 0 and 2 (d = 1): mean 1, variance 2; teacher rows 1 and 1: mean 1, variance 0 -> (2 - 0)^2
    student = torch.tensor([[0.0], [2.0]], dtype=D)
    teacher = torch.tensor([[1.0], [1.0]], dtype=D)
    assert ParameterSoftLoss()(student, teacher).item() == pytest.approx(4.0)
    assert ParameterHardLoss()(student, teacher).item() == pytest.approx(1.0)  # (1 + 1) / 2 rows


# ---------------------------------------------------------------- soft KD: T^2 scaling and equivalences


def test_soft_kd_equals_torch_kl_div_times_t_squared():
    x = fixed_inputs()
    for temperature in (0.5, 1.0, 4.0):
        reference = temperature**2 * F.kl_div(
            torch.log_softmax(x["student"] / temperature, 1),
            torch.softmax(x["teacher"] / temperature, 1),
            reduction="batchmean",
        )
        got = SoftLabelKD(temperature)(x["student"], x["teacher"])
        torch.testing.assert_close(got, reference)


def test_soft_kd_t_squared_keeps_the_gradient_scale():
    # The KL's gradient shrinks like 1/T^2 at large T; times T^2 it settles to a T-independent size.
    x = fixed_inputs()

    def grad_norm(temperature: float, scaled: bool) -> float:
        s = x["student"].clone().requires_grad_(True)
        loss = SoftLabelKD(temperature)(s, x["teacher"])
        (loss if scaled else loss / temperature**2).backward()
        return s.grad.norm().item()

    assert grad_norm(8.0, True) / grad_norm(16.0, True) == pytest.approx(1.0, abs=0.05)
    assert grad_norm(8.0, False) / grad_norm(16.0, False) == pytest.approx(4.0, rel=0.05)


def test_soft_kd_topk_mode_with_all_columns_equals_full_catalogue():
    x = fixed_inputs()
    full = SoftLabelKD(2.0)(x["student"], x["teacher"])
    topk = SoftLabelKD(2.0)(
        x["student"],
        teacher_topk_items=x["topk"],
        teacher_topk_scores=x["topk_scores"],
        negative_items=x["rest"],
        negative_scores=x["teacher"].gather(1, x["rest"]),
    )
    torch.testing.assert_close(full, topk)


def test_soft_kd_negatives_without_scores_have_teacher_probability_zero():
    x = fixed_inputs()
    got = SoftLabelKD(1.0)(
        x["student"],
        teacher_topk_items=x["topk"],
        teacher_topk_scores=x["topk_scores"],
        negative_items=x["rest"],
    )
    columns = torch.cat([x["topk"], x["rest"]], 1)
    teacher = torch.cat([x["topk_scores"], torch.full((2, 3), -torch.inf, dtype=D)], 1)
    p = torch.softmax(teacher, 1)
    log_q = torch.log_softmax(x["student"].gather(1, columns), 1)
    by_hand = (p[:, :3] * (p[:, :3].log() - log_q[:, :3])).sum(1).mean()  # p = 0 terms contribute 0
    torch.testing.assert_close(got, by_hand)


def test_soft_kd_per_example_temperature_equals_per_row_scalars():
    x = fixed_inputs()
    temps = torch.tensor([1.0, 3.0], dtype=D)
    got = SoftLabelKD(reduction="none")(x["student"], x["teacher"], temperature=temps)
    for b in range(2):
        row = SoftLabelKD(temps[b].item())(x["student"][b : b + 1], x["teacher"][b : b + 1])
        torch.testing.assert_close(got[b], row)


def test_soft_kd_rejects_both_or_no_teacher():
    x = fixed_inputs()
    with pytest.raises(ValueError, match="exactly one"):
        SoftLabelKD()(x["student"])
    with pytest.raises(ValueError, match="exactly one"):
        SoftLabelKD()(
            x["student"], x["teacher"], teacher_topk_items=x["topk"], teacher_topk_scores=x["topk_scores"]
        )


# ---------------------------------------------------------------- ranking losses


def test_rrd_is_minimal_at_the_teacher_order_over_all_permutations():
    # Assign the scores (3, 2, 1, 0, -1, -2) to the 6 items in every order: the teacher's order (top-3 first,
    # then the rest in any order) gives the lowest loss; the reverse order the highest.
    x = fixed_inputs()
    values = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0, -2.0], dtype=D)
    items = torch.cat([x["topk"][:1], x["rest"][:1]], 1)  # (1, 6) teacher order of row 0
    losses = {}
    for perm in itertools.permutations(range(6)):
        s = torch.empty(1, 6, dtype=D)
        s[0, items[0]] = values[list(perm)]
        losses[perm] = RelaxedRankingDistillation()(s, x["topk"][:1], x["rest"][:1]).item()
    best = min(losses.values())
    assert losses[(0, 1, 2, 3, 4, 5)] == pytest.approx(best)
    assert losses[(0, 1, 2, 5, 4, 3)] == pytest.approx(best)  # uninteresting order is ignored
    assert losses[(5, 4, 3, 2, 1, 0)] == pytest.approx(max(losses.values()))


def test_rd_dynamic_weight_vanishes_when_the_student_ranks_like_the_teacher():
    x = fixed_inputs()
    rd = RankingDistillation(lam=1.0, mu=0.5)
    assert rd(x["teacher"], x["topk"]).item() == pytest.approx(0.0)  # student rank == teacher rank: tanh(0)
    assert rd(-x["teacher"], x["topk"]).item() > 0.0
    ranks = student_rank_of(-x["teacher"], x["topk"])  # reversed: teacher's best is the student's worst
    torch.testing.assert_close(ranks, torch.tensor([[6.0, 5.0, 4.0]] * 2))


def test_ranking_mask_drops_a_slot():
    x = fixed_inputs()
    mask = torch.tensor([[True, True, False], [True, True, True]])
    for loss in (RankingDistillation(reduction="none"), ImportanceRankingDistillation(reduction="none")):
        w = loss.weights(x["student"], x["topk"], mask=mask)
        assert w[0, 2] == 0 and w[1, 2] > 0


# ---------------------------------------------------------------- hint, parameter distillation, PCA


def test_hint_cosine_ignores_scale_and_mse_does_not():
    x = fixed_inputs()
    for distance, same in (("cosine", True), ("mse", False)):
        hint = HintLoss(3, 4, distance=distance).to(D)
        a = hint(x["h_student"], x["h_teacher"])
        b = hint(3 * x["h_student"], x["h_teacher"])
        assert torch.isclose(a, b).item() is same


def test_param_soft_is_blind_to_row_permutations_and_hard_is_not():
    compressed = pca_compress(fixed_inputs()["emb_teacher"], 2)
    shuffled = compressed[[3, 1, 5, 0, 2, 4]]
    assert ParameterSoftLoss()(shuffled, compressed).item() == pytest.approx(0.0, abs=1e-12)
    assert ParameterHardLoss()(shuffled, compressed).item() > 0.1


def test_pca_compress_recovers_a_planted_low_rank_table():
    # 8 items in 5 dims lying on a 2-D plane: 2 components reconstruct it exactly, coordinates are uncorrelated
    # with decreasing variance and zero mean.
    coords = torch.stack([wave((8,), 1.0, 0.0, 3.0), wave((8,), 2.3, 1.0, 1.0)], 1)  # (8, 2)
    basis = wave((2, 5), 0.9, 0.3)  # (2, 5)
    table = coords @ basis + 7.0  # (8, 5)
    c = pca_compress(table, 2)
    cov = c.T @ c / 7
    assert c.shape == (8, 2)
    torch.testing.assert_close(c.mean(0), torch.zeros(2, dtype=D), atol=1e-10, rtol=0)
    assert abs(cov[0, 1]) < 1e-10 and cov[0, 0] > cov[1, 1]
    centred = table - table.mean(0)
    components = torch.linalg.lstsq(c, centred).solution  # (2, 5)
    torch.testing.assert_close(c @ components, centred)
    whitened = pca_compress(table, 2, whiten=True)
    torch.testing.assert_close(whitened.std(0), torch.ones(2, dtype=D))
    with pytest.raises(ValueError, match="dim"):
        pca_compress(table, 6)


# ---------------------------------------------------------------- stored values


def stored_experts(distance: str = "cosine") -> DistillationExperts:
    """Two experts 3 -> 4 (hidden 3) with fixed weights, in eval mode (the arg-max expert, no noise)."""
    experts = DistillationExperts(3, 4, n_experts=2, distance=distance).to(D).eval()
    with torch.no_grad():
        experts.w1.copy_(wave((2, 3, 3), 1.3, 0.4))
        experts.b1.copy_(wave((2, 3), 0.9, 0.1, 0.1))
        experts.w2.copy_(wave((2, 3, 4), 0.5, 1.0, 1.0, torch.cos))
        experts.b2.copy_(wave((2, 4), 0.3, 0.7, 0.1))
        experts.select.weight.copy_(wave((2, 4), 0.6, 1.2))
        experts.select.bias.zero_()
    return experts


def stored_value_losses() -> dict[str, torch.Tensor]:
    x = fixed_inputs()
    s, topk = x["student"], x["topk"]
    hint_mse, hint_cos = HintLoss(3, 4).to(D), HintLoss(3, 4, distance="cosine").to(D)
    with torch.no_grad():
        hint_mse.project.weight.copy_(x["hint_w"])
        hint_cos.project.weight.copy_(x["hint_w"])
    compressed = pca_compress(x["emb_teacher"], 2)
    return {
        "de_eval": stored_experts()(x["h_student"], x["h_teacher"]),
        "de_eval_mse": stored_experts("mse")(x["h_student"], x["h_teacher"]),
        "soft_T1": SoftLabelKD(1.0)(s, x["teacher"]),
        "soft_T2": SoftLabelKD(2.0)(s, x["teacher"]),
        "soft_topk_neg_p0": SoftLabelKD(2.0)(
            s, teacher_topk_items=topk, teacher_topk_scores=x["topk_scores"], negative_items=x["rest"]
        ),
        "rd": RankingDistillation(lam=1.0)(s, topk),
        "rd_dynamic_neg": RankingDistillation(lam=2.0, mu=0.5)(s, topk, negative_items=x["rest"]),
        "rrd": RelaxedRankingDistillation()(s, topk, x["rest"]),
        "dllm2rec": ImportanceRankingDistillation()(s, topk, confidence=x["confidence"]),
        "dllm2rec_neg": ImportanceRankingDistillation()(s, topk, negative_items=x["rest"]),
        "hint_mse": hint_mse(x["h_student"], x["h_teacher"]),
        "hint_cosine": hint_cos(x["h_student"], x["h_teacher"]),
        "param_hard": ParameterHardLoss()(x["emb_student"], compressed),
        "param_soft": ParameterSoftLoss()(x["emb_student"], compressed),
        "ce": softmax_ce(s, torch.eye(s.shape[1], dtype=D), torch.tensor([1, 4])),  # hidden @ I = the logits
    }


def test_stored_expected_values():
    # How the stored values were produced: once, by evaluating `stored_value_losses()` in float64 with the
    # code of the change that added this test and pasting the printed numbers into the JSON; each was then
    # re-derived by a separate numpy implementation written from the docstring formulas (agreement 1e-15).
    # They guard against silent changes; the hand-computed tests above check the same formulas on inputs
    # small enough to do on paper (soft KD on 3 logits, RRD, RD, DLLM2Rec weights, soft parameter loss).
    expected = json.loads(EXPECTED.read_text())["values"]
    got = {name: value.item() for name, value in stored_value_losses().items()}
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


# ---------------------------------------------------------------- schedules


def test_progress_schedules():
    assert ConstantSchedule(0.3)(0.7) == 0.3
    assert LinearSchedule(1.0, 3.0)(0.25) == pytest.approx(1.5)
    cosine = CosineSchedule(4.0, 1.0)
    assert (cosine(0.0), cosine(0.5), cosine(1.0)) == pytest.approx((4.0, 2.5, 1.0))
    with pytest.raises(ValueError, match="progress"):
        LinearSchedule(0.0, 1.0)(1.5)


def test_teacher_confidence_extremes_and_weights():
    uniform = torch.zeros(2, 5)
    peaked = torch.tensor([[50.0, 0, 0, 0, 0], [0, 0, 50.0, 0, 0]])
    torch.testing.assert_close(teacher_confidence(uniform, "top1"), torch.full((2,), 0.2))
    torch.testing.assert_close(teacher_confidence(uniform, "entropy"), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(teacher_confidence(peaked, "entropy"), torch.ones(2), atol=1e-6, rtol=0)
    w = confidence_weights(torch.cat([uniform[:1], peaked[:1]]), normalize=True)
    assert w.mean().item() == pytest.approx(1.0) and w[1] > w[0]
    temps = confidence_temperature(torch.cat([uniform[:1], peaked[:1]]), t_min=1.0, t_max=5.0)
    torch.testing.assert_close(temps, torch.tensor([1.8, 5.0]))  # 1 + 4 * 0.2, 1 + 4 * 1
    with pytest.raises(ValueError, match="'top1'"):
        teacher_confidence(uniform, "margin")


# ---------------------------------------------------------------- CompositeLoss


def composite_inputs():
    x = fixed_inputs()
    s = x["student"].clone().requires_grad_(True)
    kd_inputs = {
        "soft": {"student_logits": s, "teacher_logits": x["teacher"]},
        "rrd": {"student_logits": s, "teacher_topk_items": x["topk"], "uninteresting_items": x["rest"]},
    }
    ce = softmax_ce(s, torch.eye(s.shape[1], dtype=D), torch.tensor([1, 4]))  # hidden @ I = the logits
    return s, ce, kd_inputs


def test_composite_total_is_the_weighted_sum_of_its_named_parts():
    s, ce, kd_inputs = composite_inputs()
    loss = CompositeLoss(
        {"soft": SoftLabelKD(2.0), "rrd": RelaxedRankingDistillation()},
        weights={"soft": LinearSchedule(0.0, 1.0), "rrd": 0.5},
        ce_weight=CosineSchedule(1.0, 0.0),
    )
    for progress in (0.0, 0.3, 1.0):
        total, parts = loss(ce, kd_inputs, progress=progress)
        weights = loss.weights_at(progress)
        assert set(parts) == {"ce", "soft", "rrd"}
        assert total.item() == pytest.approx(sum(weights[n] * parts[n].item() for n in parts))
    assert loss.weights_at(0.3)["soft"] == pytest.approx(0.3)
    torch.testing.assert_close(parts["ce"], ce.detach())
    total.backward()
    assert s.grad.abs().sum() > 0


def test_composite_per_example_weights_need_reduction_none():
    s, ce, kd_inputs = composite_inputs()
    soft_inputs = {"soft": kd_inputs["soft"]}
    v = torch.tensor([0.5, 2.0], dtype=D)
    scalar = CompositeLoss({"soft": SoftLabelKD(2.0)}, {"soft": 3.0}, ce_weight=0.0)
    with pytest.raises(ValueError, match="reduction='none'"):
        scalar(ce, soft_inputs, example_weights={"soft": v})
    per_example = CompositeLoss({"soft": SoftLabelKD(2.0, reduction="none")}, {"soft": 3.0}, ce_weight=0.0)
    got, parts = per_example(ce, soft_inputs, example_weights={"soft": v})
    rows = SoftLabelKD(2.0, reduction="none")(**kd_inputs["soft"])  # (2,)
    torch.testing.assert_close(got, 3.0 * (v * rows).mean())  # w * mean_b(v_b * l_b)
    torch.testing.assert_close(parts["soft"], (v * rows).mean().detach())
    unweighted, _ = per_example(ce, soft_inputs)  # no per-example weights: the plain batch mean
    torch.testing.assert_close(unweighted, scalar(ce, soft_inputs)[0])


def test_composite_rejects_unknown_or_missing_terms():
    s, ce, kd_inputs = composite_inputs()
    loss = CompositeLoss({"soft": SoftLabelKD()}, {"soft": 1.0})
    with pytest.raises(KeyError, match="no term named 'rrd'"):
        loss(ce, kd_inputs)
    with pytest.raises(KeyError, match="no inputs for term 'soft'"):
        loss(ce, {})
    with pytest.raises(ValueError, match="same names"):
        CompositeLoss({"soft": SoftLabelKD()}, {"sfot": 1.0})


def test_composite_exposes_the_hint_projection_to_the_optimiser():
    x = fixed_inputs()
    loss = CompositeLoss({"hint": HintLoss(3, 4).to(D)}, {"hint": 1.0})
    assert any(p.shape == (4, 3) for p in loss.parameters())
    kd_inputs = {"hint": {"student_hidden": x["h_student"], "teacher_hidden": x["h_teacher"]}}
    total, _ = loss(torch.tensor(0.0, dtype=D), kd_inputs)
    total.backward()
    assert loss.terms["hint"].project.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- chunked full-softmax cross-entropy


def _plain_ce(hidden, table, targets, candidates=None):
    logits = (hidden @ table.T).float() if hidden.dtype != D else hidden @ table.T
    if candidates is not None:
        logits = logits.masked_fill(~candidates, -torch.inf)
    return F.cross_entropy(logits, targets, ignore_index=-100)


def _ce_and_grads(fn, hidden, table, *args):
    h, t = hidden.clone().requires_grad_(True), table.clone().requires_grad_(True)
    value = fn(h, t, *args)
    value.backward()
    return value.detach(), h.grad, t.grad


@pytest.mark.parametrize("with_candidates", [False, True])
def test_softmax_ce_equals_the_plain_cross_entropy_across_chunks(monkeypatch, with_candidates):
    # 7 items and 3 rows per chunk: 10 rows cross chunk boundaries; two rows have no target (-100)
    monkeypatch.setattr("distillrec.layers.softmax_ce.CHUNK_ELEMENTS", 21)
    g = torch.Generator().manual_seed(0)
    hidden, table = torch.randn(10, 4, generator=g, dtype=D), torch.randn(7, 4, generator=g, dtype=D)
    targets = torch.tensor([0, 6, -100, 3, 3, 1, -100, 5, 2, 4])
    # item 0 outside the candidates: the rows without a target read it (a -inf logit) and must still count 0
    candidates = torch.tensor([False, True, True, True, True, True, False]) if with_candidates else None
    if with_candidates:
        targets[0] = targets[
            1
        ] = -100  # a target outside the candidates would be an infinite loss in both forms
    got = _ce_and_grads(softmax_ce, hidden, table, targets, candidates)
    want = _ce_and_grads(_plain_ce, hidden, table, targets, candidates)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert got[1][2].abs().sum() == 0 and got[1][6].abs().sum() == 0  # rows without a target get no gradient
    if with_candidates:
        assert got[2][[0, 6]].abs().sum() == 0  # nor do the items outside the candidates


def test_softmax_ce_under_bf16_autocast_stays_close_to_float32():
    g = torch.Generator().manual_seed(1)
    hidden, table = torch.randn(64, 16, generator=g), torch.randn(300, 16, generator=g)
    targets = torch.randint(0, 300, (64,), generator=g)
    want = _ce_and_grads(_plain_ce, hidden, table, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _ce_and_grads(softmax_ce, hidden, table, targets)
    assert got[0].dtype == torch.float32 and got[1].dtype == got[2].dtype == torch.float32
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.02 * b.abs().max().item())


def test_softmax_ce_without_any_target_is_zero_not_nan():
    hidden = torch.randn(3, 4, requires_grad=True)
    value = softmax_ce(hidden, torch.randn(5, 4), torch.full((3,), -100))
    value.backward()
    assert value.item() == 0.0 and hidden.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="targets must have shape"):
        softmax_ce(hidden, torch.randn(5, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("temperature", [None, 0.3, "per row"])
@pytest.mark.parametrize("with_candidates", [False, True])
def test_logsumexp_scores_equals_the_dense_logsumexp_and_its_gradient_across_chunks(
    monkeypatch, with_candidates, temperature
):
    monkeypatch.setattr("distillrec.layers.softmax_ce.CHUNK_ELEMENTS", 21)  # 3 rows per chunk of 7 items
    g = torch.Generator().manual_seed(2)
    hidden, table = torch.randn(10, 4, generator=g, dtype=D), torch.randn(7, 4, generator=g, dtype=D)
    weights = torch.randn(10, generator=g, dtype=D)  # a different upstream gradient per row
    candidates = torch.tensor([False, True, True, True, True, True, False]) if with_candidates else None
    if temperature == "per row":
        temperature = torch.rand(10, generator=g, dtype=D) * 3 + 0.2
    t = torch.as_tensor(1.0 if temperature is None else temperature, dtype=D)
    t = t.reshape(-1, 1) if t.dim() else t

    def dense(h, e):
        logits = (h @ e.T) / t
        return torch.logsumexp(
            logits if candidates is None else logits.masked_fill(~candidates, -torch.inf), 1
        )

    got = _ce_and_grads(lambda h, e: logsumexp_scores(h, e, candidates, temperature) @ weights, hidden, table)
    want = _ce_and_grads(lambda h, e: dense(h, e) @ weights, hidden, table)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        logsumexp_scores(hidden, table, temperature=torch.zeros(10))


def test_softmax_ce_of_a_target_outside_the_candidates_is_infinite_as_the_plain_form():
    hidden, table = torch.randn(2, 4, dtype=D), torch.randn(5, 4, dtype=D)
    candidates = torch.tensor([True, True, False, True, True])
    assert softmax_ce(hidden, table, torch.tensor([1, 2]), candidates).item() == float("inf")
    assert _plain_ce(hidden, table, torch.tensor([1, 2]), candidates).item() == float("inf")


def test_softmax_ce_reuses_a_log_sum_exp_it_is_given_and_checks_its_shape():
    torch.manual_seed(0)
    h, table = torch.randn(6, 4, requires_grad=True), torch.randn(9, 4)
    targets = torch.tensor([3, -100, 0, 8, -100, 5])
    shared = logsumexp_scores(h, table)
    given = softmax_ce(h, table, targets, lse=shared)
    assert torch.equal(given, softmax_ce(h, table, targets))
    # the given lse is used as it is, not recomputed: one more in every row is one more in the mean
    assert softmax_ce(h, table, targets, lse=shared + 1).item() == pytest.approx(given.item() + 1, abs=1e-6)
    (grad,) = torch.autograd.grad(given, h)
    (want,) = torch.autograd.grad(F.cross_entropy(h @ table.T, targets, ignore_index=-100), h)
    torch.testing.assert_close(grad, want)
    with pytest.raises(ValueError, match=r"lse must have shape \(6,\)"):
        softmax_ce(h, table, targets, lse=shared[:4])


def test_softmax_ce_under_bf16_autocast_is_never_negative():
    """The target's score is rounded as the chunk GEMM rounds it, so it never exceeds the log-sum-exp."""
    hidden = torch.tensor([[10.0625, 10.0, 0.0]])
    table = torch.tensor([[2.0, 5.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert softmax_ce(hidden, table, torch.tensor([0])).item() >= 0.0


@pytest.mark.parametrize("temperature", [1.0, 2.5, torch.tensor([0.5, 1.0, 3.0, 2.0], dtype=D)])
def test_soft_kl_on_the_teacher_top_k_with_the_student_normaliser_equals_the_dense_catalogue_kl(temperature):
    """Teacher logits = its top-k scores, -inf elsewhere: the top-k columns plus the student's log-sum-exp over
    the catalogue give the dense loss and its gradient."""
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(4, 30, generator=gen, dtype=D, requires_grad=True)
    top_items = torch.stack([torch.randperm(30, generator=gen)[:6] for _ in range(4)])  # (4, 6)
    top_scores = torch.randn(4, 6, generator=gen, dtype=D).sort(dim=1, descending=True).values
    loss = SoftLabelKD()
    dense_teacher = torch.full((4, 30), float("-inf"), dtype=D).scatter(1, top_items, top_scores)
    dense = loss(student, dense_teacher, temperature=temperature)
    (grad_dense,) = torch.autograd.grad(dense, student)
    t = torch.as_tensor(temperature, dtype=D)
    lse = torch.logsumexp(student / (t.reshape(-1, 1) if t.dim() else t), dim=1)  # (4,)
    columns = loss(student.gather(1, top_items), top_scores, temperature=temperature, student_lse=lse)
    (grad_columns,) = torch.autograd.grad(columns, student)
    torch.testing.assert_close(columns, dense)
    torch.testing.assert_close(grad_columns, grad_dense)
    with pytest.raises(ValueError, match="student_lse must have shape"):
        loss(student.gather(1, top_items), top_scores, student_lse=lse[:2])


def test_dllm2rec_consistency_given_as_a_mask_equals_the_one_read_from_full_scores():
    gen = torch.Generator().manual_seed(3)
    student = torch.randn(5, 20, generator=gen, dtype=D)
    top = torch.stack([torch.randperm(20, generator=gen)[:4] for _ in range(5)])  # (5, 4)
    confidence = torch.randn(5, 4, generator=gen, dtype=D)
    loss = ImportanceRankingDistillation()
    own = student.topk(4, dim=1).indices  # (5, 4)
    mask = (top.unsqueeze(2) == own.unsqueeze(1)).any(dim=2)
    assert mask.any() and not mask.all()
    from_scores = loss.weights(student, top, confidence)
    given = loss.weights(
        student.gather(1, top), torch.arange(4).expand(5, 4), confidence, in_student_topk=mask
    )
    torch.testing.assert_close(given, from_scores)


# ---------------------------------------------------------------- collaborative embedding layer


def test_collaborative_embedding_adds_the_projected_teacher_embedding_and_folds():
    x = fixed_inputs()
    base = ItemEmbedding(6, 2).to(D)
    own = base.table().detach().clone()
    teacher = x["emb_teacher"]  # (6 items, 4)
    layer = CollaborativeEmbedding(base, teacher, gamma=0.5).to(D)
    items = torch.tensor([[0, 1, 4]])  # 1-based ids, 0 = padding
    got = layer(items)  # (1, 3, 2)
    want = own[[1, 4]] + 0.5 * (teacher[[0, 3]] @ layer.project.weight.T + layer.project.bias)
    torch.testing.assert_close(got[0, 1:], want)
    assert got[0, 0].abs().sum() == 0  # the padding row stays zero
    assert layer.table().shape == (7, 2)
    got.sum().backward()
    assert layer.project.weight.grad.abs().sum() > 0 and base.embedding.weight.grad.abs().sum() > 0
    assert not layer.teacher_item_emb.requires_grad
    combined = layer.table().detach()
    folded = layer.folded()  # the student's own table, now holding e: the student's own size
    assert folded is base
    torch.testing.assert_close(folded.table().detach(), combined)
    with pytest.raises(ValueError, match=r"n_items=6"):
        CollaborativeEmbedding(ItemEmbedding(6, 2), torch.zeros(5, 4, dtype=D))


# ---------------------------------------------------------------- distillation experts


def test_distillation_experts_temperature_anneals_geometrically():
    experts = DistillationExperts(3, 4, tau_start=1.0, tau_end=0.01)
    assert experts.temperature(0.0) == pytest.approx(1.0)
    assert experts.temperature(0.5) == pytest.approx(0.1)
    assert experts.temperature(1.0) == pytest.approx(0.01)
    assert experts.temperature(2.0) == pytest.approx(0.01)  # progress is clipped to [0, 1]
    with pytest.raises(ValueError, match="tau_end"):
        DistillationExperts(3, 4, tau_start=0.1, tau_end=1.0)
    with pytest.raises(ValueError, match="distance"):
        DistillationExperts(3, 4, distance="l1")


def test_distillation_experts_in_eval_use_the_expert_the_teacher_selects():
    """Eval: the arg-max of S h^t picks one expert, and the loss is that expert's hint distance (by hand)."""
    x = fixed_inputs()
    experts = stored_experts()
    chosen = (x["h_teacher"] @ experts.select.weight.T).argmax(dim=1)  # (2,)
    assert chosen.tolist() == [0, 1]  # the fixed inputs send the two users to different experts
    e = experts
    mapped = torch.stack(
        [
            torch.relu(x["h_student"][b] @ e.w1[m] + e.b1[m]) @ e.w2[m] + e.b2[m]
            for b, m in enumerate(chosen.tolist())
        ]
    )
    want = (1 - torch.nn.functional.cosine_similarity(mapped, x["h_teacher"], dim=1)).mean()
    torch.testing.assert_close(experts(x["h_student"], x["h_teacher"]), want)


def test_distillation_experts_in_training_mix_experts_and_sharpen_with_progress():
    """Training: Gumbel-softmax weights over the experts; near one-hot once the temperature is small."""
    experts = DistillationExperts(3, 4, n_experts=4, tau_start=1.0, tau_end=1e-4)
    teacher = torch.randn(512, 4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    early, late = experts.choice(teacher, 0.0), experts.choice(teacher, 1.0)  # (512, 4)
    for weights in (early, late):
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(512))
    assert early.max(dim=1).values.mean() < 0.9
    assert late.max(dim=1).values.mean() > 0.99
    # at a small temperature the sampled expert is the arg-max of log e + g: drawn with the selection's own
    # probabilities softmax(S h^t) (Gumbel-max), which a slip such as noise on the probabilities would flatten
    with torch.no_grad():
        experts.select.weight.zero_()
        experts.select.bias.copy_(torch.tensor([2.0, 0.0, -1.0, -3.0]))
    torch.manual_seed(1)
    picks = experts.choice(torch.zeros(20_000, 4), 1.0).argmax(dim=1)  # (20000,)
    frequencies = torch.bincount(picks, minlength=4) / 20_000
    torch.testing.assert_close(
        frequencies, torch.tensor([2.0, 0.0, -1.0, -3.0]).softmax(0), atol=0.01, rtol=0
    )
    # the selection learns: its gradient comes through the mixture
    experts(torch.randn(512, 3), teacher, progress=0.5).backward()
    assert experts.select.weight.grad.abs().sum() > 0 and experts.w1.grad.abs().sum() > 0
