"""Grid search on validation, then one test evaluation: a model name and a `Split` -> `BaselineResult`.

Protocol (the test set is touched once):
1. every grid point is fitted on `split.train` (`split.valid` passed for early stopping only) and scored on
   `split.valid` with history = `split.train`;
2. the best point is the one with the highest validation NDCG@10 (the first one on ties);
3. the final model: a model with `refit_for_test` (one learned vector per user: iALS, BPR) is fitted afresh
   with the best hyperparameters on `split.test_history()` = train + valid; any other model is the best
   point's fitted model, which reads the longer history at scoring time;
4. it is evaluated once on `split.test` with history = `split.test_history()`.
`train_seconds` is the fit time of the final model (the refit if there was one), summed over its epochs when it
was resumed from a checkpoint.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from tqdm.auto import tqdm

from distillrec.data.split import Split
from distillrec.evaluate.ranking import Evaluation, evaluate
from distillrec.models.base import Recommender
from distillrec.models.registry import GRIDS, make_model
from distillrec.train.loop import EpochEnd
from distillrec.train.loop import fit_seconds as fit_seconds_of

SELECTION_METRIC = "NDCG@10"


@dataclass(eq=False)
class GridPoint:
    hparams: dict
    valid: dict[str, float]  # validation summary
    fit_seconds: float


@dataclass(eq=False)
class BaselineResult:
    name: str
    best_hparams: dict
    valid: dict[str, float]  # validation summary of the best grid point
    test: dict[str, float]  # test summary of the final model
    test_evaluation: Evaluation  # per-user test metrics and top-K lists
    n_params: int  # of the final model
    train_seconds: float  # fit time of the final model
    grid: list[GridPoint]
    model: Recommender  # the final (tested) model

    def to_json(self) -> dict:
        """The `metrics.json` entry: valid/test summaries, params, best hyperparameters, timing, the grid, and
        the final model's training curve (`history`) when it has one."""
        row = {
            "valid": self.valid,
            "test": self.test,
            "params": self.n_params,
            "best_hparams": self.best_hparams,
            "train_seconds": round(self.train_seconds, 3),
            "grid": [
                {
                    "hparams": p.hparams,
                    "valid_NDCG@10": p.valid[SELECTION_METRIC],
                    "fit_seconds": round(p.fit_seconds, 3),
                }
                for p in self.grid
            ],
        }
        history = getattr(self.model, "history_", None)
        if history:
            row["history"] = history
        return row


def tune_and_test(
    name: str,
    split: Split,
    grid: list[dict] | None = None,
    ks: tuple[int, ...] = (10, 20),
    progress: bool = True,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
) -> BaselineResult:
    """See the module docstring. `on_epoch(labels, end)` is called after every training epoch of a model
    trained through `fit_loop` (SASRec), with labels `{"model": name, "grid_point": index}`."""
    if grid is None:
        if name not in GRIDS:
            raise ValueError(f"no default grid for model {name!r}; grids exist for {sorted(GRIDS)}")
        grid = GRIDS[name]
    if not grid:
        raise ValueError(f"empty hyperparameter grid for model {name!r}")
    if 10 not in ks:
        raise ValueError(f"ks must contain 10: grid points are selected by {SELECTION_METRIC}, got ks={ks}")

    points: list[GridPoint] = []
    best_model: Recommender | None = None
    best_score = -float("inf")
    for index, hparams in enumerate(tqdm(grid, desc=f"tune {name}", unit="point", disable=not progress)):
        model = make_model(name, **hparams)
        start = time.perf_counter()
        model.fit(
            split.train, split.valid, **_callbacks(model, on_epoch, {"model": name, "grid_point": index})
        )
        fit_seconds = fit_seconds_of(model, time.perf_counter() - start)
        summary = evaluate(model, split.train, split.valid, ks=ks).summary
        points.append(GridPoint(dict(hparams), summary, fit_seconds))
        if best_model is None or summary[SELECTION_METRIC] > best_score:  # strict: the first one wins ties
            best_model, best_score = model, summary[SELECTION_METRIC]
    best = _best(points)

    test_history = split.test_history()
    if type(best_model).refit_for_test:
        final = make_model(name, **best.hparams)
        start = time.perf_counter()
        final.fit(test_history, **_callbacks(final, on_epoch, {"model": name, "grid_point": "refit"}))
        train_seconds = fit_seconds_of(final, time.perf_counter() - start)
    else:
        final, train_seconds = best_model, best.fit_seconds
    test_evaluation = evaluate(final, test_history, split.test, ks=ks)
    return BaselineResult(
        name=name,
        best_hparams=best.hparams,
        valid=best.valid,
        test=test_evaluation.summary,
        test_evaluation=test_evaluation,
        n_params=final.n_params(),
        train_seconds=train_seconds,
        grid=points,
        model=final,
    )


def _callbacks(model: Recommender, on_epoch, labels: dict) -> dict:
    """`fit` keyword arguments passing `on_epoch` to a model trained through `fit_loop` (empty for others)."""
    if on_epoch is None or "callbacks" not in inspect.signature(model.fit).parameters:
        return {}
    return {"callbacks": [partial(on_epoch, labels)]}


def _best(points: list[GridPoint]) -> GridPoint:
    """The first point with the highest validation NDCG@10."""
    return max(points, key=lambda p: p.valid[SELECTION_METRIC])
