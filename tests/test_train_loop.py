"""fit_loop: exact resume, non-finite loss handling, early stopping on the best state, bf16 fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distillrec.train import loop
from distillrec.train.loop import NonFiniteLossError, TrainConfig, fit_loop

N_ROWS, BATCH = 128, 16  # 8 batches per epoch


def _data():
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(N_ROWS, 6, generator=gen)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # 4 classes
    return x, y


def _module(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


def _make_batches(rng: np.random.Generator):
    x, y = _data()
    order = torch.from_numpy(rng.permutation(N_ROWS))
    return [(x[order[i : i + BATCH]], y[order[i : i + BATCH]]) for i in range(0, N_ROWS, BATCH)]


def _loss(module, batch):
    x, y = batch
    return F.cross_entropy(module(x), y)


def _validate(module) -> float:
    x, y = _data()
    return float((module(x).argmax(1) == y).float().mean())


def _config(**kw) -> TrainConfig:
    base = dict(max_epochs=4, batch_size=BATCH, lr=1e-2, patience=100, seed=7, progress=False)
    return TrainConfig(**{**base, **kw})


class _Interrupt(Exception):
    pass


def _interrupt_after(epoch: int):
    def callback(end):
        if end.epoch == epoch:
            raise _Interrupt

    return callback


@pytest.mark.parametrize("how", ["callback", "max_epochs"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, how):
    full = _module()
    full_result = fit_loop(full, _make_batches, _loss, _validate, _config(checkpoint_dir=tmp_path / "a"))

    if how == "callback":
        with pytest.raises(_Interrupt):
            fit_loop(
                _module(),
                _make_batches,
                _loss,
                _validate,
                _config(checkpoint_dir=tmp_path / "b"),
                callbacks=[_interrupt_after(2)],
            )
    else:
        fit_loop(
            _module(), _make_batches, _loss, _validate, _config(max_epochs=2, checkpoint_dir=tmp_path / "b")
        )
    # A module with a different initialisation: everything must come from the checkpoint.
    resumed = _module(seed=99)
    resumed_result = fit_loop(
        resumed, _make_batches, _loss, _validate, _config(checkpoint_dir=tmp_path / "b")
    )

    assert resumed_result.resumed_from == 2
    # the training time counts the interrupted process's epochs (read from the checkpoint's history) too
    assert len(resumed_result.history) == len(full_result.history)
    assert resumed_result.total_seconds == pytest.approx(sum(h["seconds"] for h in resumed_result.history))
    assert resumed_result.total_seconds >= sum(h["seconds"] for h in resumed_result.history[:2]) > 0
    assert [h["loss"] for h in resumed_result.history] == [h["loss"] for h in full_result.history]
    assert resumed_result.best_epoch == full_result.best_epoch
    for name, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    last_a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    last_b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert last_a["epoch"] == last_b["epoch"] == 4
    for name, value in last_a["model"].items():
        assert torch.equal(value, last_b["model"][name]), name


def test_a_run_stopped_early_continues_when_resumed_with_more_patience(tmp_path):
    def flat(module) -> float:  # never improves after the first evaluation
        return 0.5

    stopped = fit_loop(
        _module(), _make_batches, _loss, flat, _config(max_epochs=10, patience=1, checkpoint_dir=tmp_path)
    )
    assert stopped.stopped_early and len(stopped.history) == 2
    same = fit_loop(
        _module(), _make_batches, _loss, flat, _config(max_epochs=10, patience=1, checkpoint_dir=tmp_path)
    )
    assert same.stopped_early and len(same.history) == 2  # nothing more to do at the same patience

    resumed = _module(seed=99)
    result = fit_loop(
        resumed, _make_batches, _loss, flat, _config(max_epochs=10, patience=3, checkpoint_dir=tmp_path)
    )
    full = _module()
    full_result = fit_loop(full, _make_batches, _loss, flat, _config(max_epochs=10, patience=3))
    assert result.resumed_from == 2 and result.stopped_early and len(result.history) == 4
    assert [h["loss"] for h in result.history] == [h["loss"] for h in full_result.history]
    assert result.best_epoch == full_result.best_epoch == 1
    for name, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_resume_refuses_a_changed_config(tmp_path):
    fit_loop(_module(), _make_batches, _loss, None, _config(max_epochs=1, checkpoint_dir=tmp_path))
    with pytest.raises(ValueError, match=r"lr: checkpoint 0.01 vs now 0.02"):
        fit_loop(_module(), _make_batches, _loss, None, _config(lr=2e-2, checkpoint_dir=tmp_path))


def test_non_finite_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def poisoned_loss(module, batch):
        calls["n"] += 1
        loss = _loss(module, batch)
        return loss * math.nan if calls["n"] == 2 * (N_ROWS // BATCH) + 3 else loss  # epoch 3, batch index 2

    module = _module()
    with pytest.raises(
        NonFiniteLossError, match=r"loss is nan at epoch 3, batch 2.*last good checkpoint \(epoch 2\)"
    ):
        fit_loop(module, _make_batches, poisoned_loss, _validate, _config(checkpoint_dir=tmp_path))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    fresh = _module(seed=5)
    fresh.load_state_dict(ckpt["model"])
    assert all(torch.isfinite(p).all() for p in fresh.parameters())
    # The kept checkpoint resumes into the same result as a run that never failed.
    resumed, full = _module(), _module()
    fit_loop(resumed, _make_batches, _loss, _validate, _config(checkpoint_dir=tmp_path))
    fit_loop(full, _make_batches, _loss, _validate, _config())
    for name, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_non_finite_gradient_is_caught_without_checkpoint_dir():
    def sqrt_at_zero(module, batch):  # finite loss (0) whose gradient is inf * 0 = nan
        return torch.sqrt(module[0].weight.sum() * 0.0)

    with pytest.raises(
        NonFiniteLossError, match=r"gradient norm is nan at epoch 1, batch 0.*no checkpoint_dir"
    ):
        fit_loop(_module(), _make_batches, sqrt_at_zero, None, _config())


def test_early_stopping_restores_best_validated_state():
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.4, 0.9, 0.9])
    snapshots = {}

    def remember(end):
        snapshots[end.epoch] = {k: v.clone() for k, v in end.module.state_dict().items()}

    module = _module()
    result = fit_loop(
        module,
        _make_batches,
        _loss,
        lambda m: next(scores),
        _config(max_epochs=7, patience=3),
        callbacks=[remember],
    )
    assert result.stopped_early and len(result.history) == 5  # evals 3, 4, 5 did not beat epoch 2
    assert (result.best_epoch, result.best_score) == (2, 0.5)
    assert [h["valid_ndcg10"] for h in result.history] == [0.1, 0.5, 0.3, 0.2, 0.4]
    for name, value in module.state_dict().items():
        assert torch.equal(value, snapshots[2][name]), name
    assert not torch.equal(snapshots[5]["0.weight"], snapshots[2]["0.weight"])


def test_eval_every_skips_validation_and_counts_patience_in_evaluations():
    calls = []

    def validate(module):
        calls.append(1)
        return 0.0  # never improves after the first evaluation

    result = fit_loop(
        _module(), _make_batches, _loss, validate, _config(max_epochs=9, eval_every=2, patience=2)
    )
    assert [h["valid_ndcg10"] for h in result.history] == [None, 0.0, None, 0.0, None, 0.0]
    assert result.stopped_early and len(calls) == 3 and result.best_epoch == 2


def test_training_reduces_loss_and_restores_thread_count():
    threads = torch.get_num_threads()
    result = fit_loop(_module(), _make_batches, _loss, None, _config(max_epochs=15, num_threads=1))
    assert torch.get_num_threads() == threads
    assert result.history[-1]["loss"] < 0.6 * result.history[0]["loss"]
    assert result.best_epoch == 15  # no validation: the last epoch's weights are the result


def test_bf16_falls_back_to_float32_with_a_warning(monkeypatch):
    seen = []

    def loss(module, batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return _loss(module, batch)

    monkeypatch.setattr(loop, "cpu_bf16_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        result = fit_loop(_module(), _make_batches, loss, None, _config(max_epochs=1, bf16=True))
    assert result.bf16 is False and not any(seen)

    seen.clear()
    validated = []

    def validate(module):
        validated.append(torch.is_autocast_enabled("cpu"))
        return 0.0

    monkeypatch.setattr(loop, "cpu_bf16_supported", lambda: True)
    result = fit_loop(_module(), _make_batches, loss, validate, _config(max_epochs=1, bf16=True))
    assert result.bf16 is True and all(seen) and validated == [True]  # validation runs in bf16 too


def test_bf16_autocast_for_inference_and_its_fallback(monkeypatch):
    layer = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    monkeypatch.setattr(loop, "cpu_bf16_supported", lambda: True)
    with torch.inference_mode(), loop.bf16_autocast():
        assert layer(x).dtype == torch.bfloat16
    with loop.bf16_autocast(False):
        assert layer(x).dtype == torch.float32
    monkeypatch.setattr(loop, "cpu_bf16_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="running in float32"), loop.bf16_autocast():
        assert layer(x).dtype == torch.float32


@pytest.mark.parametrize(
    "field, value", [("batch_size", 0), ("max_epochs", -1), ("lr", 0.0), ("clip_grad_norm", 0)]
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})
