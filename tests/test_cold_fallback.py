"""ColdStartFallback: cold items scored by their text, mapped into the model's scale; the shift picked on validation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PopularityStub

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import evaluate
from distillrec.models.cold_fallback import ColdStartFallback, fallback_scores


def test_fallback_scores_by_hand():
    scores = np.array([[1.0, 2.0, 3.0, 0.0]], dtype=np.float32)
    text = np.array([[0.1, 0.2, 0.3, 0.9]], dtype=np.float32)
    cold = np.array([False, False, False, True])
    out = fallback_scores(scores, text, cold, shift=0.5)
    # warm: mean 2, std sqrt(2/3); text over warm: mean 0.2, std 0.1 * sqrt(2/3); z = 0.7 / that
    std, text_std = np.sqrt(2 / 3), 0.1 * np.sqrt(2 / 3)
    assert out[0, 3] == pytest.approx(2 + std * (0.7 / text_std + 0.5), rel=1e-5)
    np.testing.assert_array_equal(out[:, :3], scores[:, :3])  # trained items keep the model's scores
    np.testing.assert_array_equal(fallback_scores(scores, text, cold, -np.inf), scores)  # off
    np.testing.assert_array_equal(
        fallback_scores(scores, text, np.zeros(4, bool), 0.5), scores
    )  # no cold item


def test_fallback_scores_leave_masked_scores_out_and_give_flat_text_no_weight():
    scores = np.array([[1.0, 2.0, 3.0, -np.inf, 0.0], [1.0, 2.0, 3.0, 5.0, 0.0]], dtype=np.float32)
    text = np.array([[0.1, 0.2, 0.3, 0.1, 0.9], [0.0, 0.0, 0.0, 0.0, 0.5]], dtype=np.float32)  # row 1: flat
    cold = np.array([False, False, False, False, True])
    out = fallback_scores(scores, text, cold, shift=1.0)
    # row 0: the -inf item is left out of the model's mean and spread (as in the hand test above), not the text's
    text_0 = text[0, :4]
    z0 = (0.9 - text_0.mean()) / text_0.std()
    assert out[0, 4] == pytest.approx(2 + np.sqrt(2 / 3) * (z0 + 1.0), rel=1e-5)
    # row 1: no text signal over the trained items (as a user with no history has), so z = 0
    assert out[1, 4] == pytest.approx(scores[1, :4].mean() + scores[1, :4].std() * 1.0, rel=1e-5)
    assert np.isfinite(out[:, 4]).all()


# Two genres: items 0-3 are about A, 4-7 about B (text), 3 and 7 have no training interaction (cold).
TEXT = np.array([[1, 0.1 * i] for i in range(4)] + [[0.1 * i, 1] for i in range(4)], dtype=np.float32)
A_USERS, B_USERS = range(0, 10), range(10, 20)
TRAIN = Interactions.from_arrays(
    [u for u in A_USERS for _ in range(3)] + [u for u in B_USERS for _ in range(3)],
    [i for _ in A_USERS for i in (0, 1, 2)] + [i for _ in B_USERS for i in (4, 5, 6)],
    np.arange(60),
    20,
    8,
)
MODEL = PopularityStub(np.array([6, 5, 4, -1, 3, 2, 1, -1], dtype=np.float32))


def _held_out(a_item: int, b_item: int) -> Interactions:
    users = list(A_USERS) + list(B_USERS)
    return Interactions.from_arrays(users, [a_item] * 10 + [b_item] * 10, np.full(20, 100), 20, 8)


def test_a_cold_item_the_text_points_to_is_ranked_first_when_validation_asks_for_it():
    valid = _held_out(3, 7)  # every user's next item is the cold item of their genre
    fallback = ColdStartFallback(MODEL, TEXT).fit(TRAIN, valid)
    assert (
        fallback.shift_ > -np.inf
        and fallback.validation_ndcg_[-np.inf] < fallback.validation_ndcg_[fallback.shift_]
    )
    ranked = evaluate(fallback, TRAIN, valid, ks=(1,))
    assert ranked.summary["HR@1"] == 1.0  # the cold item of the user's genre, first
    assert evaluate(MODEL, TRAIN, valid, ks=(1,)).summary["HR@1"] == 0.0  # the model alone puts it last
    curve = fallback.shift_curve(
        TRAIN, valid
    )  # every shift at once: off is the model, the picked one the wrapper
    assert list(curve) == [-np.inf, *fallback.shifts]
    assert curve[-np.inf].summary == evaluate(MODEL, TRAIN, valid).summary
    assert curve[fallback.shift_].summary == evaluate(fallback, TRAIN, valid).summary


def test_the_fallback_stays_off_when_cold_items_only_cost_places():
    valid = _held_out(
        4, 0
    )  # next items are trained items of the other genre: pushing cold items up costs places
    fallback = ColdStartFallback(MODEL, TEXT).fit(TRAIN, valid)
    assert fallback.shift_ == -np.inf
    users = np.arange(20)
    np.testing.assert_array_equal(fallback.score(users, TRAIN), MODEL.score(users, TRAIN))


def test_a_given_shift_is_used_and_validation_is_then_not_needed():
    fallback = ColdStartFallback(MODEL, TEXT, shift=1.0).fit(TRAIN)
    users = np.array([0, 15])
    expected = fallback_scores(
        MODEL.score(users, TRAIN), fallback.text_.score(users, TRAIN), fallback.cold_, 1.0
    )
    np.testing.assert_allclose(fallback.score(users, TRAIN), expected)
    with pytest.raises(ValueError, match="pass `valid`"):
        ColdStartFallback(MODEL, TEXT).fit(TRAIN)
