"""The sampled softmax: its value by hand (logQ correction, accidental hits masked), what it draws, and the models
that train with it (the SASRec baseline, the teacher, a plain student; a KD student refuses it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distillrec.data.interactions import Interactions
from distillrec.layers.sampled_softmax import SampledSoftmax
from distillrec.models.sasrec import SASRec
from distillrec.students.registry import make_student


def _drawn(seed: int, q: torch.Tensor, m: int) -> list[int]:
    torch.manual_seed(seed)
    return torch.multinomial(q, m, replacement=True).tolist()


def test_value_by_hand_with_logq_correction_and_accidental_hits():
    counts = np.array([1.0, 1.0, 2.0, 0.0])  # q = [.25, .25, .5, 0]
    loss = SampledSoftmax(counts, n_negatives=3)
    hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    table = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    targets = torch.tensor([0, 2, -1])  # the third row has no target
    negatives = _drawn(7, loss.q, 3)
    torch.manual_seed(7)
    got = loss(hidden, table, targets).item()
    q = counts / counts.sum()
    expected = []
    for h, t in zip(hidden[:2].numpy(), targets[:2].tolist(), strict=True):
        positive = h @ table[t].numpy() - math.log(3 * q[t])
        logits = [positive] + [h @ table[j].numpy() - math.log(3 * q[j]) for j in negatives if j != t]
        expected.append(np.log(np.exp(logits).sum()) - positive)
    assert got == pytest.approx(float(np.mean(expected)), rel=1e-6)
    torch.manual_seed(7)  # the vectors may come from a function of the items (a model computing its rows)
    assert loss(hidden, lambda items: table[items], targets).item() == pytest.approx(got, rel=1e-7)


def test_draws_by_popularity_and_never_an_untrained_item():
    loss = SampledSoftmax(np.array([0.0, 1.0, 3.0]), n_negatives=4000)
    torch.manual_seed(0)
    drawn = torch.multinomial(loss.q, 4000, replacement=True)
    assert 0 not in drawn.tolist()
    assert (drawn == 2).float().mean().item() == pytest.approx(0.75, abs=0.03)
    with pytest.raises(ValueError, match="n_negatives"):
        SampledSoftmax(np.array([1.0]), 0)
    with pytest.raises(ValueError, match="at least one item trained"):
        SampledSoftmax(np.zeros(3), 5)


def _sequences(n_users: int = 40, n_items: int = 30, length: int = 12, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), length)
    start = rng.integers(0, n_items, n_users)
    items = (start[:, None] + np.arange(length)[None, :]) % n_items  # each user walks the catalogue in order
    times = np.tile(np.arange(length), n_users)
    return Interactions.from_arrays(users, items.ravel(), times, n_users=n_users, n_items=n_items)


def test_models_learn_with_the_sampled_softmax_and_kd_refuses_it():
    train = _sequences()
    settings = {"max_len": 8, "max_epochs": 60, "progress": False, "negatives": 8, "lr": 0.01}
    baseline = SASRec(dim=16, dropout=0.0, **settings).fit(train)
    student = make_student("sasrec", dim=16, dropout=0.0, **settings).fit(train)
    for model in (baseline, student):
        losses = [r["loss"] for r in model.history_]
        assert losses[-1] < losses[0] * 0.3  # it learns the walk
        scores = model.score(np.arange(5), train)
        last = np.array([train.sequence(u)[-1] for u in range(5)])
        assert (scores.argmax(axis=1) == (last + 1) % 30).mean() >= 0.6  # the next step of the walk
    from distillrec.distill.objective import KDObjective

    kd = object.__new__(KDObjective)  # any objective other than plain CE
    with pytest.raises(ValueError, match="without KD only"):
        make_student("sasrec", dim=8, **settings).fit(train, objective=kd)
