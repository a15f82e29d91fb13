"""Where per-epoch training metrics go: always `metrics.jsonl` in the run folder; MLflow or TensorBoard too
when the config's `tracking.backends` asks for them.

Input: one `log_epoch(model_key, epoch, metrics, labels)` call per finished training epoch (the pipeline's
`fit_loop` callback). `model_key` is the model's name in the run's `metrics.json` ("teacher", "sasrec",
"sasrec-soft (KD)"); `labels` tell apart several trainings of one model (`{"stage": "students/sasrec-soft",
"seed": 1}`, `{"stage": "baselines", "grid_point": 0}`); `metrics` is `fit_loop`'s epoch record without
`epoch` (loss, valid_ndcg10 or None, seconds, train_seconds). Output:

    <run_dir>/metrics.jsonl          one JSON line per epoch, appended and flushed as the epoch ends:
                                     {"model": "teacher", "stage": "teacher", "epoch": 3, "loss": 5.12,
                                      "valid_ndcg10": 0.071, "seconds": 4.2, "train_seconds": 3.9}
    <run_dir>/mlflow.db              MLflow (SQLite store; `tracking.mlflow_uri` to log elsewhere): one run per
                                     distillrec run, holding the flattened config as params, and one nested run
                                     per training, with its metrics by epoch
    <run_dir>/tensorboard/<training>/  TensorBoard event files, one folder per training

MLflow and TensorBoard are optional extras (`pip install 'distillrec[mlflow]'` / `'distillrec[tensorboard]'`),
imported only when asked for; a missing one is a `MissingExtraError` naming the extra to install. MLflow's
default store is SQLite rather than a `file:` folder: recent MLflow 3 releases refuse a file store unless
`MLFLOW_ALLOW_FILE_STORE=true`.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Tracker",
    "JsonlTracker",
    "MLflowTracker",
    "TensorBoardTracker",
    "Trackers",
    "BACKENDS",
    "MissingExtraError",
    "require_backends",
    "open_trackers",
]

Metrics = Mapping[str, float | None]
Labels = Mapping[str, Any]


class MissingExtraError(ImportError):
    """A tracking backend was asked for, but its optional package is not installed."""


class Tracker(Protocol):
    def log_epoch(
        self, model_key: str, epoch: int, metrics: Metrics, labels: Labels | None = None
    ) -> None: ...

    def close(self, failed: bool = False) -> None: ...


def training_name(model_key: str, labels: Labels | None) -> str:
    """One training's name: `"sasrec (no KD) stage=students/sasrec-soft seed=0"`."""
    return " ".join([model_key, *(f"{k}={v}" for k, v in (labels or {}).items())])


class JsonlTracker:
    """Appends one line per epoch to `path`, flushed at once, so the file grows while models train."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log_epoch(self, model_key: str, epoch: int, metrics: Metrics, labels: Labels | None = None) -> None:
        line = {"model": model_key, **(labels or {}), "epoch": epoch, **metrics}
        self._file.write(json.dumps(line, default=str) + "\n")
        self._file.flush()

    def close(self, failed: bool = False) -> None:
        self._file.close()


class MLflowTracker:
    """One MLflow run named `run_name` in `experiment` (config as params), one nested run per training."""

    def __init__(
        self,
        run_dir: str | Path,
        uri: str | None = None,
        experiment: str = "distillrec",
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        _import("mlflow", "mlflow")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir).resolve()
        self.uri = uri or f"sqlite:///{run_dir / 'mlflow.db'}"
        self._client = MlflowClient(tracking_uri=self.uri)
        found = self._client.get_experiment_by_name(experiment)
        self._experiment = (
            found.experiment_id
            if found
            else self._client.create_experiment(
                experiment, artifact_location=(run_dir / "mlartifacts").as_uri()
            )
        )
        self._parent = self._client.create_run(
            self._experiment, run_name=run_name or run_dir.name, tags={"distillrec.run_dir": str(run_dir)}
        ).info.run_id
        flat = [Param(k, v[:6000]) for k, v in _flatten(params or {}).items()]
        for start in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
            self._client.log_batch(self._parent, params=flat[start : start + 100])
        self._children: dict[str, str] = {}

    def log_epoch(self, model_key: str, epoch: int, metrics: Metrics, labels: Labels | None = None) -> None:
        from mlflow.entities import Metric

        name = training_name(model_key, labels)
        if name not in self._children:
            tags = {
                "mlflow.parentRunId": self._parent,
                "model": model_key,
                **{k: str(v) for k, v in (labels or {}).items()},
            }
            self._children[name] = self._client.create_run(
                self._experiment, run_name=name, tags=tags
            ).info.run_id
        now = int(time.time() * 1000)
        values = [Metric(k, float(v), now, epoch) for k, v in metrics.items() if v is not None]
        self._client.log_batch(self._children[name], metrics=values)

    def close(self, failed: bool = False) -> None:
        status = "FAILED" if failed else "FINISHED"
        for run_id in [*self._children.values(), self._parent]:
            self._client.set_terminated(run_id, status=status)


class TensorBoardTracker:
    """Scalars by epoch under `<run_dir>/tensorboard/<training>/` (one TensorBoard run per training)."""

    def __init__(self, run_dir: str | Path) -> None:
        _import("tensorboard", "tensorboard")  # torch.utils.tensorboard needs it
        from torch.utils.tensorboard import SummaryWriter

        self.dir = Path(run_dir) / "tensorboard"
        self._writer_class = SummaryWriter
        self._writers: dict[str, Any] = {}

    def log_epoch(self, model_key: str, epoch: int, metrics: Metrics, labels: Labels | None = None) -> None:
        name = training_name(model_key, labels)
        if name not in self._writers:
            self._writers[name] = self._writer_class(
                log_dir=str(self.dir / re.sub(r"[^\w.()=+-]+", "_", name))
            )
        writer = self._writers[name]
        for key, value in metrics.items():
            if value is not None:
                writer.add_scalar(key, value, epoch)
        writer.flush()

    def close(self, failed: bool = False) -> None:
        for writer in self._writers.values():
            writer.close()


# Optional backends by config name (`tracking.backends`); metrics.jsonl is always written and is not listed.
BACKENDS: dict[str, str] = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # name -> module it imports


class Trackers:
    """Every tracker of a run as one: each epoch goes to all of them."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def log_epoch(self, model_key: str, epoch: int, metrics: Metrics, labels: Labels | None = None) -> None:
        for tracker in self.trackers:
            tracker.log_epoch(model_key, epoch, metrics, labels)

    def close(self, failed: bool = False) -> None:
        errors = []
        for tracker in self.trackers:
            try:
                tracker.close(failed)
            except Exception as exc:  # close the others; report the first failure afterwards
                errors.append(exc)
        if errors:
            raise errors[0]


def require_backends(backends: list[str] | tuple[str, ...]) -> None:
    """Raise `MissingExtraError` (naming the extra) unless every backend's package imports."""
    for name in backends:
        if name not in BACKENDS:
            raise ValueError(
                f"unknown tracking backend {name!r}; choose from {sorted(BACKENDS)} "
                "(metrics.jsonl is always written)"
            )
        _import(BACKENDS[name], name)


def open_trackers(
    run_dir: str | Path,
    backends: list[str] | tuple[str, ...] = (),
    mlflow_uri: str | None = None,
    experiment: str = "distillrec",
    params: Mapping[str, Any] | None = None,
) -> Trackers:
    """`<run_dir>/metrics.jsonl` plus the asked-for backends; `params` (the run's config) go to MLflow."""
    require_backends(backends)
    run_dir = Path(run_dir)
    trackers = Trackers([JsonlTracker(run_dir / "metrics.jsonl")])
    try:
        for name in backends:
            if name == "mlflow":
                trackers.trackers.append(MLflowTracker(run_dir, mlflow_uri, experiment, run_dir.name, params))
            elif name == "tensorboard":
                trackers.trackers.append(TensorBoardTracker(run_dir))
    except BaseException:
        trackers.close(failed=True)
        raise
    return trackers


def _import(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"tracking backend {extra!r} needs the {module!r} package, which is not installed: "
            f"pip install 'distillrec[{extra}]'"
        ) from exc


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """`{"teacher": {"dim": 64}, "seeds": [0, 1]}` -> `{"teacher.dim": "64", "seeds.0": "0", "seeds.1": "1"}`."""
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {prefix: json.dumps(value) if not isinstance(value, str) else value}
    out: dict[str, str] = {}
    for key, item in items:
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out
