"""One training loop for every torch model: the teacher, SASRec and the distilled students.

Input: an `nn.Module`, `make_batches(rng) -> iterable of batches` (one epoch, shuffled with the given
`numpy.random.Generator`), `loss_fn(module, batch) -> scalar tensor` (cross-entropy today, a distillation loss
later), `validate(module) -> float` (validation NDCG@10, higher is better; or None) and a `TrainConfig`.
Output: the module holding the weights of its best validation epoch, and a `FitResult` (per-epoch history,
best epoch and score).

Each epoch: AdamW (betas 0.9 / 0.98, as Kang & McAuley 2018) steps over the batches, with gradients clipped
to `clip_grad_norm`; a non-finite loss or gradient norm stops training with `NonFiniteLossError`. Every
`eval_every` epochs the model is validated; the best state is kept, and training stops after `patience`
evaluations without improvement. With `bf16`, both the steps and the validation run under bfloat16 autocast.

Device and processes (`train/distributed.py`): the module and each batch move to `config.device` (and the
module stays there: `score` reads where its weights are). Under torchrun the module is wrapped in
`DistributedDataParallel` (`make_batches` gives each rank its shard of every global batch, through
`distributed.shard`), the epoch loss is the mean over ranks, rank 0 validates and broadcasts the score, and
only rank 0 writes the checkpoint, which is read by rank 0 and broadcast when a run resumes.

Reproducibility and resume: epoch `e` draws all of its randomness (batch order through `rng`, dropout through
torch's global generator) from generators seeded by `(seed, e)` only. With `checkpoint_dir`, the file
`last.pt` is rewritten atomically after every epoch (model, optimizer, RNG states, epoch, best state and
score, history, config); a later call with the same directory resumes after the last finished epoch, so an
interrupted and resumed run ends with exactly the weights of an uninterrupted one. `max_epochs` and `patience`
may change on resume: a run that stopped early continues when the larger patience allows it, exactly as a run
started with that patience would have. A non-finite loss never
overwrites `last.pt`, so it still holds the last good epoch.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from distillrec.devices import DEVICE_PATTERN, resolve_device, to_device
from distillrec.precision import NO_NATIVE_BF16, bf16_unsupported_reason, cpu_bf16_supported
from distillrec.train import distributed

__all__ = [
    "TrainConfig",
    "FitResult",
    "EpochEnd",
    "NonFiniteLossError",
    "fit_loop",
    "cpu_bf16_supported",
    "bf16_autocast",
    "RESUMABLE_CHANGES",
]

CHECKPOINT_NAME = "last.pt"
# Fields that may change between an interrupted run and its resumption; any other difference is an error.
RESUMABLE_CHANGES = frozenset(
    {"max_epochs", "patience", "checkpoint_dir", "num_threads", "progress", "resume", "device"}
)


@dataclass
class TrainConfig:
    max_epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10  # evaluations without improvement before stopping
    eval_every: int = 1  # validate after every `eval_every`-th epoch
    seed: int = 0
    # bfloat16 autocast (training and validation); float32 with a warning where it is not native
    bf16: bool = False
    device: str = "cpu"  # auto | cpu | cuda | cuda:N | mps (`devices.py`)
    clip_grad_norm: float | None = 1.0
    checkpoint_dir: str | Path | None = None
    resume: bool = True  # continue from `checkpoint_dir/last.pt` when it exists
    num_threads: int | None = None  # torch intra-op threads during training (None: leave as is)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_epochs", "batch_size", "eval_every", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"TrainConfig.clip_grad_norm must be > 0 or None, got {self.clip_grad_norm!r}")
        if not isinstance(self.device, str) or not re.match(DEVICE_PATTERN, self.device):
            raise ValueError(
                f"TrainConfig.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"TrainConfig.num_threads must be >= 1 or None, got {self.num_threads!r}")


@dataclass
class FitResult:
    # per epoch: epoch, loss (mean over batches), valid_ndcg10 (None when not validated), seconds (train +
    # validation), train_seconds
    history: list[dict[str, Any]]
    best_epoch: int  # epoch whose weights the module holds at the end (the last one if none was validated)
    best_score: float  # its validation score (-inf when no validation ran)
    stopped_early: bool
    bf16: bool  # whether bfloat16 autocast was actually used
    resumed_from: int = 0  # last finished epoch read from the checkpoint (0: fresh start)

    @property
    def total_seconds(self) -> float:
        """Training + validation time of every epoch, those of earlier (interrupted) processes included."""
        return float(sum(record["seconds"] for record in self.history))


def fit_seconds(model: Any, measured: float) -> float:
    """A fitted model's training time: its epochs' total when it trained through `fit_loop` (so a run resumed
    from a checkpoint counts the epochs of the interrupted process too), else the `measured` wall time."""
    result = getattr(model, "fit_result_", None)
    return result.total_seconds if isinstance(result, FitResult) and result.history else measured


@dataclass
class EpochEnd:
    """What a callback sees after each epoch (after the checkpoint of that epoch is written)."""

    epoch: int
    record: dict[str, Any]
    module: nn.Module
    result: FitResult = field(repr=False)


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite; the checkpoint of the last good epoch is kept."""


def bf16_autocast(enabled: bool = True, device: str | torch.device = "cpu") -> AbstractContextManager:
    """Context manager for bfloat16 autocast on `device` (the CPU by default), in training or inference (e.g.
    `with bf16_autocast(): evaluate(model, ...)`): `torch.autocast` when `enabled` and the device computes
    bfloat16 natively; float32 otherwise (with a warning when it was asked for)."""
    device_type = torch.device(device).type
    if _resolve_bf16(enabled, device):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return nullcontext()


def fit_loop(
    module: nn.Module,
    make_batches: Callable[[np.random.Generator], Iterable[Any]],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    validate: Callable[[nn.Module], float] | None,
    config: TrainConfig,
    callbacks: Sequence[Callable[[EpochEnd], None]] = (),
    meta: dict[str, Any] | None = None,
) -> FitResult:
    """Train `module` in place; see the module docstring. `meta` (plain values, e.g. the model's
    hyperparameters) is stored in the checkpoint and must be equal when resuming."""
    device = resolve_device(config.device)
    rank, n_ranks = distributed.world()
    use_bf16 = _resolve_bf16(config.bf16, device)
    module.to(device)
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=config.weight_decay
    )
    config_dict = _config_dict(config)
    meta = dict(meta or {})
    result = FitResult(history=[], best_epoch=0, best_score=-math.inf, stopped_early=False, bf16=use_bf16)
    best_state: dict | None = None  # state dict of the best validated epoch
    bad_evals = 0
    path = (
        Path(config.checkpoint_dir).expanduser() / CHECKPOINT_NAME
        if config.checkpoint_dir is not None
        else None
    )

    ckpt = None
    if rank == 0 and path is not None and config.resume and path.exists():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt = distributed.broadcast(ckpt)  # every rank resumes from rank 0's checkpoint
    if ckpt is not None:
        _check_resumable(ckpt, config_dict, meta, path)
        module.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_states(ckpt["rng"])
        best_state = ckpt["best_state"]
        bad_evals = ckpt["bad_evals"]
        result.history = ckpt["history"]
        result.best_epoch, result.best_score = ckpt["best_epoch"], ckpt["best_score"]
        # patience may change on resume: a run stopped early continues when the new patience allows it
        result.stopped_early = validate is not None and bad_evals >= config.patience
        result.resumed_from = ckpt["epoch"]

    step = _Step(module, loss_fn)
    if n_ranks > 1:  # gradients all-reduced over the ranks; rank 0's initial weights broadcast to all
        step = DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    writes = path if rank == 0 else None  # only rank 0 writes the checkpoint
    previous_threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        epoch = result.resumed_from
        while epoch < config.max_epochs and not result.stopped_early:
            epoch += 1
            started = time.perf_counter()
            loss = _train_epoch(step, optimizer, make_batches, config, epoch, use_bf16, device, path)
            train_seconds = time.perf_counter() - started
            score = None
            if validate is not None and epoch % config.eval_every == 0:
                module.eval()
                if rank == 0:
                    with torch.no_grad(), bf16_autocast(use_bf16, device):  # a bf16 run validates in bf16
                        score = float(validate(module))
                score = distributed.broadcast(score)  # every rank keeps the same best epoch
                if score > result.best_score:
                    result.best_epoch, result.best_score, bad_evals = epoch, score, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    bad_evals += 1
                    result.stopped_early = bad_evals >= config.patience
            record = {
                "epoch": epoch,
                "loss": loss,
                "valid_ndcg10": score,
                "seconds": time.perf_counter() - started,
                "train_seconds": train_seconds,
            }
            result.history.append(record)
            if writes is not None:
                _save_checkpoint(
                    path, module, optimizer, epoch, best_state, bad_evals, result, config_dict, meta
                )
            for callback in callbacks:
                callback(EpochEnd(epoch, record, module, result))
    finally:
        torch.set_num_threads(previous_threads)
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        result.best_epoch = epoch  # nothing was validated: the last epoch's weights are the result
    module.eval()
    return result


class _Step(nn.Module):
    """The module and its loss as one module whose forward is the loss of a batch: what DDP wraps, so that
    its forward (which prepares the gradient all-reduce) is the one that computes the loss."""

    def __init__(self, module: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.module, batch)


def _train_epoch(step, optimizer, make_batches, config, epoch, use_bf16, device, path) -> float:
    """One pass over the batches; returns the mean batch loss (averaged over the ranks too)."""
    torch.manual_seed(_epoch_seed(config.seed, epoch))
    rng = np.random.default_rng([config.seed, epoch])
    step.train()
    batches = make_batches(rng)
    total = len(batches) if hasattr(batches, "__len__") else None
    show = config.progress and distributed.is_main()
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", unit="batch", disable=not show, leave=False)
    losses = []
    for index, batch in enumerate(bar):
        with bf16_autocast(use_bf16, device):
            loss = step(to_device(batch, device))
        value = _mean_over_ranks(loss.detach())
        if not torch.isfinite(value):  # the same answer on every rank: all stop together
            _raise_non_finite("loss", value.item(), epoch, index, path)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_grad_norm is not None:  # gradients are all-reduced: the same norm on every rank
            norm = torch.nn.utils.clip_grad_norm_(step.parameters(), config.clip_grad_norm)
            if not torch.isfinite(norm):
                _raise_non_finite("gradient norm", norm.item(), epoch, index, path)
        optimizer.step()
        losses.append(value.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    if not losses:
        raise ValueError(f"make_batches produced no batch in epoch {epoch}")
    return float(np.mean(losses))


def _raise_non_finite(what: str, value: float, epoch: int, step: int, path: Path | None):
    if path is not None and path.exists():
        last = torch.load(path, map_location="cpu", weights_only=True)["epoch"]
        kept = f"the last good checkpoint (epoch {last}) is kept at {path}"
    elif path is not None:
        kept = f"no epoch finished yet, so there is no checkpoint in {path.parent}"
    else:
        kept = "no checkpoint_dir was given, so no checkpoint exists"
    raise NonFiniteLossError(
        f"{what} is {value} at epoch {epoch}, batch {step}; training stopped ({kept}). "
        "Try a lower lr, gradient clipping, or bf16=False."
    )


def _mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    _, n_ranks = distributed.world()
    if n_ranks == 1:
        return value
    value = value.float().clone()
    torch.distributed.all_reduce(value)
    return value / n_ranks


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _resolve_bf16(requested: bool, device: str | torch.device = "cpu") -> bool:
    if not requested:
        return False
    device = torch.device(device)
    if device.type == "cpu":
        reason = None if cpu_bf16_supported() else NO_NATIVE_BF16
    else:
        reason = _bf16_reason(str(device))
    if reason is not None:
        warnings.warn(f"bf16=True, but {reason}; running in float32", RuntimeWarning, stacklevel=3)
        return False
    return True


@functools.cache
def _bf16_reason(device: str) -> str | None:
    """`bf16_unsupported_reason` once per device (it runs a small product; autocast is entered every batch)."""
    return bf16_unsupported_reason(device)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    out = asdict(config)
    out["checkpoint_dir"] = None if config.checkpoint_dir is None else str(config.checkpoint_dir)
    return out


def _check_resumable(ckpt: dict, config_dict: dict, meta: dict, path: Path) -> None:
    changed = {
        key: (ckpt["config"].get(key), value)
        for key, value in config_dict.items()
        if key not in RESUMABLE_CHANGES and ckpt["config"].get(key) != value
    }
    if changed:
        details = ", ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in changed.items())
        raise ValueError(
            f"cannot resume from {path}: training config differs ({details}); only "
            f"{sorted(RESUMABLE_CHANGES)} may change. Use another checkpoint_dir or resume=False."
        )
    if ckpt["meta"] != meta:
        keys = sorted(k for k in set(ckpt["meta"]) | set(meta) if ckpt["meta"].get(k) != meta.get(k))
        raise ValueError(f"cannot resume from {path}: model/data description differs in {keys}")


def _rng_states() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(np_state["state"]["pos"]),
        "numpy_gauss": (int(np_state["has_gauss"]), float(np_state["gauss"])),
        "python": random.getstate(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    key = states["numpy_key"].numpy().astype(np.uint32)
    has_gauss, gauss = states["numpy_gauss"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": key, "pos": states["numpy_pos"]},
            "has_gauss": has_gauss,
            "gauss": gauss,
        }
    )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def _save_checkpoint(
    path, module, optimizer, epoch, best_state, bad_evals, result, config_dict, meta
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": _rng_states(),
        "epoch": epoch,
        "best_state": best_state,
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "bad_evals": bad_evals,
        "stopped_early": result.stopped_early,
        "history": result.history,
        "config": config_dict,
        "meta": meta,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a half-written last.pt
