"""TextBlend: the model's and the text's per-user z-scores added with a weight picked on validation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PopularityStub

from distillrec.data.interactions import Interactions
from distillrec.evaluate.ranking import evaluate
from distillrec.models.text_blend import TextBlend, blend_scores, pick_weight, standardise
from distillrec.models.text_similarity import TextSimilarity


def test_standardise_by_hand():
    scores = np.array([[1.0, 2.0, 3.0, -np.inf], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    z = standardise(scores)
    a = 1 / np.sqrt(2 / 3)  # (3 - 2) / std of (1, 2, 3)
    np.testing.assert_allclose(z[0, :3], [-a, 0.0, a], rtol=1e-6)
    assert z[0, 3] == -np.inf  # a masked score stays masked and is left out of the mean and spread
    np.testing.assert_array_equal(z[1], 0.0)  # a flat row is no signal


def test_blend_scores_by_hand():
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    text = np.array([[0.3, 0.2, 0.1]], dtype=np.float32)  # the opposite order, another scale
    a = 1 / np.sqrt(2 / 3)
    np.testing.assert_allclose(blend_scores(scores, text, 0.5), [[-a / 2, 0.0, a / 2]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(blend_scores(scores, text, 1.0), [[0.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(blend_scores(scores, text, 0.0), standardise(scores))
    # a user without history has flat text scores: the blend is the model's own ranking
    np.testing.assert_allclose(blend_scores(scores, np.zeros((1, 3), np.float32), 2.0), standardise(scores))


def test_pick_weight_by_hand():
    validation = {
        0.0: {"NDCG@10": 0.10, "tail": 0.02},
        0.5: {"NDCG@10": 0.12, "tail": 0.03},
        1.0: {"NDCG@10": 0.12, "tail": 0.05},
        2.0: {"NDCG@10": 0.08, "tail": 0.06},
    }
    assert pick_weight(validation) == 0.5  # a tie on NDCG@10: the first listed
    assert pick_weight(validation, floor=0.04) == 1.0  # 0.0 and 0.5 fall below the floor
    assert pick_weight(validation, floor=0.055) == 2.0
    assert pick_weight(validation, floor=0.9) == 2.0  # none reaches it: the best tail


# Two genres: items 0-3 are about A, 4-7 about B (text). A users bought 0, 1, 2; B users 4, 5, 6; items 3 and 7
# were bought once each (the tail). The model knows only popularity: 0, 1, 2 above 4, 5, 6 above 3 and 7.
TEXT = np.array([[1, 0.1 * i] for i in range(4)] + [[0.1 * i, 1] for i in range(4)], dtype=np.float32)
A_USERS, B_USERS = range(0, 10), range(10, 20)
TRAIN = Interactions.from_arrays(
    [u for u in A_USERS for _ in range(3)] + [u for u in B_USERS for _ in range(3)] + [20, 20],
    [i for _ in A_USERS for i in (0, 1, 2)] + [i for _ in B_USERS for i in (4, 5, 6)] + [3, 7],
    np.arange(62),
    21,
    8,
)
MODEL = PopularityStub(np.array([9, 8, 7, 1, 6, 5, 4, 0], dtype=np.float32))
TEXT_MODEL = TextSimilarity(TEXT).fit(TRAIN)


def _held_out(a_item: int, b_item: int) -> Interactions:
    users = list(A_USERS) + list(B_USERS)
    return Interactions.from_arrays(users, [a_item] * 10 + [b_item] * 10, np.full(20, 100), 21, 8)


def test_the_text_lifts_the_rare_item_of_the_users_genre_when_validation_asks_for_it():
    valid = _held_out(3, 7)  # every user's next item is the rare item of their genre
    blend = TextBlend(MODEL, TEXT_MODEL).fit(TRAIN, valid)
    assert blend.weight_ > 0
    assert evaluate(blend, TRAIN, valid, ks=(1,)).summary["HR@1"] == 1.0  # the text puts it first
    assert evaluate(MODEL, TRAIN, valid, ks=(1,)).summary["HR@1"] == 0.0  # the model alone never does
    assert blend.validation_[0.0]["NDCG@10"] < blend.validation_[blend.weight_]["NDCG@10"]


def test_the_model_alone_is_kept_where_the_text_only_hurts():
    valid = _held_out(4, 0)  # every user's next item is the other genre's most popular unseen one
    blend = TextBlend(MODEL, TEXT_MODEL, tail_floor=False).fit(TRAIN, valid)
    assert blend.weight_ == 0.0
    np.testing.assert_allclose(
        blend.score(np.arange(3), TRAIN), standardise(MODEL.score(np.arange(3), TRAIN))
    )


def test_the_tail_floor_gives_up_overall_ndcg_to_keep_the_texts_tail():
    # five A users' next item is the rare item 3 (the tail: the text finds it, the model ranks it 4th), every B
    # user's the popular item 0 (the head: the model finds it, the text does not): weight 0 wins overall
    users = [0, 1, 2, 3, 4, *B_USERS]
    valid = Interactions.from_arrays(users, [3] * 5 + [0] * 10, np.full(15, 100), 21, 8)
    free = TextBlend(MODEL, TEXT_MODEL, weights=(0.0, 5.0), tail_floor=False).fit(TRAIN, valid)
    floored = TextBlend(MODEL, TEXT_MODEL, weights=(0.0, 5.0)).fit(TRAIN, valid)
    assert free.weight_ == 0.0
    assert floored.text_tail_ == pytest.approx(1.0)  # the text ranks item 3 first for every A user
    assert floored.validation_[0.0]["tail"] == pytest.approx(1 / np.log2(5))  # 4th: below the floor
    assert floored.weight_ == 5.0
    assert floored.validation_[5.0]["NDCG@10"] < floored.validation_[0.0]["NDCG@10"]


def test_drift_weighs_each_validation_user_by_the_one_step_shift_of_their_targets_bin():
    # As above. One step earlier (each validated user's last training item dropped, counts scaled by 62 / 47):
    # the five A users' item 2 (bin 3) is followed by item 3 (bin 1), the ten B users' item 6 (cold) by item 0
    # (bin 4). Shares with one pseudo-count over 12 bins, out of 27: ratio 6 for bin 1, 11 for bin 4, so an A
    # user weighs 6 / (140 / 15) = 9 / 14 and a B user 11 / (140 / 15) = 33 / 28.
    users = [0, 1, 2, 3, 4, *B_USERS]
    valid = Interactions.from_arrays(users, [3] * 5 + [0] * 10, np.full(15, 100), 21, 8)
    drifted = TextBlend(MODEL, TEXT_MODEL, weights=(0.0, 5.0), drift=True).fit(TRAIN, valid)
    a_rank = 1 / np.log2(5)  # the model ranks item 3 4th for an A user; item 0 1st for a B user
    expected = (5 * 9 / 14 * a_rank + 10 * 33 / 28 * 1.0) / (5 * 9 / 14 + 10 * 33 / 28)
    assert drifted.validation_[0.0]["NDCG@10"] == pytest.approx(expected)
    assert drifted.validation_[0.0]["tail"] == pytest.approx(a_rank)  # only A users have tail targets
    assert drifted.text_tail_ == pytest.approx(1.0)
    assert drifted.weight_ == 5.0  # the floor holds as without the weights


def test_a_fixed_weight_needs_no_validation_and_bad_settings_are_named():
    blend = TextBlend(MODEL, TEXT_MODEL, weight=0.5).fit(TRAIN)
    users = np.arange(4)
    np.testing.assert_allclose(
        blend.score(users, TRAIN),
        blend_scores(MODEL.score(users, TRAIN), TEXT_MODEL.score(users, TRAIN), 0.5),
    )
    assert blend.n_params() == MODEL.n_params() + TEXT_MODEL.n_params()
    with pytest.raises(ValueError, match="pass `valid`"):
        TextBlend(MODEL, TEXT_MODEL).fit(TRAIN)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        TextBlend(MODEL, TEXT_MODEL, weight=-1.0)
    with pytest.raises(ValueError, match=r"every weight to pick from must be >= 0, got \(0.0, -0.5\)"):
        TextBlend(MODEL, TEXT_MODEL, weights=(0.0, -0.5))
    with pytest.raises(ValueError, match="is empty"):
        TextBlend(MODEL, TEXT_MODEL, weights=())
