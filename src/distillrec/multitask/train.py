"""Training, prediction and evaluation of one multi-task (ESMM) model on impressions (`data/impressions.py`).

`fit_multitask` trains through the one training loop (`train/loop.py`: early stopping on validation, device,
DDP under torchrun, checkpoints). Batches keep `group_size` impressions of one user together (each user's
impressions shuffled and cut into groups, the groups shuffled), so the within-user ranking terms of the
objective have something to rank; validation is the mean of the click AUC and the click-and-conversion AUC on
the validation impressions.

`evaluate_tasks` gives each task's AUC, GAUC and logloss on held-out impressions: the click (pCTR, every
impression), the conversion given a click (pCVR, on clicked impressions, as ESMM reports CVR) and click-and-
conversion (pCTCVR, every impression). `conversion_ranking` ranks the whole catalogue for each held-out user by
pCTCVR against the items that user converted on (full ranking, `evaluate/ranking.py`).

The impressions' first behaviour is the click, the second the conversion (`Impressions.behaviours`, funnel order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from distillrec.data.impressions import Impressions
from distillrec.data.interactions import Interactions
from distillrec.devices import module_device
from distillrec.evaluate.binary import auc, binary_metrics, per_user_auc
from distillrec.evaluate.ranking import Evaluation, evaluate
from distillrec.multitask.esmm import ESMM, log_ctcvr, probabilities
from distillrec.multitask.objective import MultiTaskObjective
from distillrec.multitask.params import MultiTaskParams
from distillrec.multitask.profiles import ClickProfiles
from distillrec.train import distributed
from distillrec.train.loop import FitResult, TrainConfig, fit_loop

__all__ = [
    "make_model",
    "fit_multitask",
    "predict_logits",
    "evaluate_tasks",
    "conversion_ranking",
    "catalogue_scores",
    "positive_interactions",
    "labels_of",
]

PREDICT_ROWS = 65536


def labels_of(impressions: Impressions) -> tuple[np.ndarray, np.ndarray]:
    """(click, click-and-conversion) labels: the first two behaviours in funnel order."""
    names = impressions.behaviours
    if len(names) != 2:
        raise ValueError(
            f"a multi-task (ESMM) model takes two behaviours, a click and a conversion; these impressions have "
            f"{len(names)}: {names}"
        )
    click = impressions.labels[names[0]]
    return click, click * impressions.labels[names[1]]


def make_model(n_users: int, n_items: int, params: MultiTaskParams, item_text=None, user_text=None) -> ESMM:
    torch.manual_seed(params.seed)
    return ESMM(
        n_users,
        n_items,
        params.dim,
        params.hidden,
        params.bottom,
        params.n_experts,
        params.dropout,
        item_text=item_text,
        user_text=user_text,
    )


def _grouped_order(users: np.ndarray, group_size: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of the rows: each user's rows in random order, cut into groups of `group_size`, the groups
    in random order."""
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    new_group = (position % group_size) == 0
    group = np.cumsum(new_group) - 1
    shuffled = rng.permutation(int(group[-1]) + 1)[group]
    return order[np.argsort(shuffled, kind="stable")]


def _batch(rows: np.ndarray, data: Impressions, labels, teacher, profiles) -> dict[str, Any]:
    """One batch of `data`'s `rows`; `labels`: (click, click-and-conversion) of every row of `data`."""
    users = data.users[rows]
    click, ctcvr = labels
    batch = {
        "users": torch.as_tensor(users, dtype=torch.long),
        "items": torch.as_tensor(data.items[rows], dtype=torch.long),
        "click": torch.as_tensor(click[rows], dtype=torch.float32),
        "ctcvr": torch.as_tensor(ctcvr[rows], dtype=torch.float32),
        "groups": torch.as_tensor(np.unique(users, return_inverse=True)[1], dtype=torch.long),
    }
    if profiles is not None:
        batch["profiles"] = torch.as_tensor(profiles.at(users, data.timestamps[rows]))
    if teacher is not None:
        batch["teacher_ctr"] = torch.as_tensor(teacher[0][rows], dtype=torch.float32)
        batch["teacher_cvr"] = torch.as_tensor(teacher[1][rows], dtype=torch.float32)
    return batch


def fit_multitask(
    model: ESMM,
    train: Impressions,
    valid: Impressions,
    params: MultiTaskParams,
    teacher_logits: tuple[np.ndarray, np.ndarray] | None = None,
    checkpoint_dir=None,
    profiles: ClickProfiles | None = None,
) -> FitResult:
    """Train `model` in place (the weights of its best validation epoch at the end). `teacher_logits`: the
    teacher's (click, conversion) logits of every training impression, which the KD terms of `params.kd` read.
    `profiles` (a teacher): each training impression reads its user's text profile before its time."""
    if params.kd and teacher_logits is None:
        raise ValueError(
            f"the KD terms {list(params.kd)} need the teacher's logits of the training impressions"
        )
    if teacher_logits is not None and any(len(t) != len(train) for t in teacher_logits):
        raise ValueError(
            f"teacher logits cover {len(teacher_logits[0]):,} impressions, the training set has {len(train):,}"
        )
    labels = labels_of(train)  # once: a batch takes its rows of them
    objective = MultiTaskObjective(
        params.weighting,
        params.task_weights,
        params.kd,
        params.kd_weight,
        params.temperature,
        params.gradnorm_alpha,
    )
    trained = nn.ModuleDict({"model": model, "objective": objective})

    def make_batches(rng: np.random.Generator) -> list[dict]:
        order = _grouped_order(train.users, params.group_size, rng)
        teacher = teacher_logits if params.kd else None
        return [
            _batch(
                distributed.shard(order[start : start + params.batch_size]), train, labels, teacher, profiles
            )
            for start in range(0, len(order), params.batch_size)
        ]

    def validate(module: nn.Module) -> float:
        return validation_score(module["model"], valid)

    config = TrainConfig(
        max_epochs=params.max_epochs,
        batch_size=params.batch_size,
        lr=params.lr,
        weight_decay=params.weight_decay,
        patience=params.patience,
        seed=params.seed,
        device=params.device,
        checkpoint_dir=checkpoint_dir,
        progress=params.progress,
    )
    # what a resumed run must share with the interrupted one (the epoch budget, patience, device and progress
    # bars may change: `train/loop.RESUMABLE_CHANGES`)
    resumable = {"max_epochs", "patience", "device", "progress"}
    meta = {"params": params.model_dump(mode="json", exclude=resumable), "n_train": len(train)}
    return fit_loop(
        trained, make_batches, lambda m, b: m["objective"](m["model"], b), validate, config, meta=meta
    )


def validation_score(model: ESMM, valid: Impressions) -> float:
    """Mean of the click AUC and the click-and-conversion AUC on `valid`."""
    click, ctcvr = labels_of(valid)
    ctr_logit, cvr_logit = predict_logits(model, valid.users, valid.items)
    return float(np.nanmean([auc(click, ctr_logit), auc(ctcvr, _log_ctcvr(ctr_logit, cvr_logit))]))


@torch.no_grad()
def predict_logits(
    model: ESMM, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None, profiles=None
) -> tuple[np.ndarray, np.ndarray]:
    """The (click, conversion) logits of each (user, item) pair, in batches, in eval mode. With `profiles`
    (`ClickProfiles`) and `times`, a teacher reads each pair's user profile before its time (the training
    impressions' own view, for their soft labels); without, each user's profile over all training clicks."""
    training = model.training
    model.eval()
    device = module_device(model)
    parts = []
    for start in range(0, len(users), PREDICT_ROWS):
        u = torch.as_tensor(users[start : start + PREDICT_ROWS], dtype=torch.long, device=device)
        i = torch.as_tensor(items[start : start + PREDICT_ROWS], dtype=torch.long, device=device)
        profile = None
        if profiles is not None:
            at = profiles.at(users[start : start + PREDICT_ROWS], times[start : start + PREDICT_ROWS])
            profile = torch.as_tensor(at, device=device)
        parts.append(torch.stack(model(u, i, profile)).float().cpu().numpy())
    model.train(training)
    logits = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), dtype=np.float32)
    return logits[0], logits[1]


def _log_ctcvr(ctr_logit: np.ndarray, cvr_logit: np.ndarray) -> np.ndarray:
    return log_ctcvr(torch.as_tensor(ctr_logit), torch.as_tensor(cvr_logit)).numpy()


def evaluate_tasks(model: ESMM, test: Impressions) -> tuple[dict[str, dict], dict[str, tuple]]:
    """({"ctr", "cvr", "ctcvr"}: each task's AUC, GAUC, logloss and counts on `test`; the same tasks: (users,
    each user's AUC) over the users with both classes, for paired tests between models)."""
    click, ctcvr = labels_of(test)
    ctr_logit, cvr_logit = predict_logits(model, test.users, test.items)
    p = {
        task: value.numpy()
        for task, value in probabilities(
            torch.as_tensor(ctr_logit, dtype=torch.float64), torch.as_tensor(cvr_logit, dtype=torch.float64)
        ).items()
    }
    clicked = click == 1
    tasks = {
        "ctr": (test.users, click, p["ctr"]),
        "cvr": (test.users[clicked], ctcvr[clicked], p["cvr"][clicked]),
        "ctcvr": (test.users, ctcvr, p["ctcvr"]),
    }
    metrics = {name: binary_metrics(*task) for name, task in tasks.items()}
    per_user = {name: per_user_auc(*task)[:2] for name, task in tasks.items()}
    return metrics, per_user


class _CatalogueScorer:
    """A model's log pCTCVR of every item, in the `score(users, history)` shape `evaluate` reads."""

    def __init__(self, model: ESMM) -> None:
        self.model = model

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return catalogue_scores(self.model, users, history.n_items)


def catalogue_scores(model: ESMM, users: np.ndarray, n_items: int, rank_by: str = "ctcvr") -> np.ndarray:
    """(len(users), n_items) scores of every item for each user: log pCTCVR (`rank_by="ctcvr"`), or the click
    or conversion-given-click logit (`"ctr"`, `"cvr"`; a logit ranks as its probability does)."""
    pairs_users = np.repeat(np.asarray(users, dtype=np.int64), n_items)
    pairs_items = np.tile(np.arange(n_items, dtype=np.int64), len(users))
    ctr_logit, cvr_logit = predict_logits(model, pairs_users, pairs_items)
    scores = {"ctr": ctr_logit, "cvr": cvr_logit}.get(rank_by)
    if scores is None:
        if rank_by != "ctcvr":
            raise ValueError(f"rank_by must be ctcvr, ctr or cvr, got {rank_by!r}")
        scores = _log_ctcvr(ctr_logit, cvr_logit)
    return scores.reshape(len(users), n_items).astype(np.float32, copy=False)


def positive_interactions(impressions: Impressions, positive: np.ndarray) -> Interactions:
    """The impressions where `positive` is 1, as interactions (e.g. each user's clicks in time order)."""
    rows = np.flatnonzero(positive == 1)
    return Interactions.from_arrays(
        impressions.users[rows],
        impressions.items[rows],
        impressions.timestamps[rows],
        impressions.n_users,
        impressions.n_items,
    )


def conversion_ranking(model: ESMM, seen: Impressions, test: Impressions, ks=(10, 20)) -> Evaluation:
    """Full ranking by pCTCVR for each user with a held-out conversion: the targets are the items converted on
    in `test`; the items clicked in `seen` (the training and validation impressions) are masked."""
    history = positive_interactions(seen, labels_of(seen)[0])
    targets = positive_interactions(test, labels_of(test)[1])
    return evaluate(_CatalogueScorer(model), history, targets, ks=ks, batch_size=64)
