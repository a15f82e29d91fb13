"""`distillrec run`: the whole pipeline from one config, into one run folder, reusing what has not changed.

Input: a `RunConfig`. Output: `runs/<name>-<timestamp>/` holding

    config.yaml             the fully resolved config
    baselines/              metrics.json (tuned baselines), manifest.json
    teacher/                the teacher folder of `teachers/build.py` (metrics, weights, exported outputs)
    students/<label>/       metrics.json of `distill.run.compare` (KD vs plain), test top-K lists
    metrics.json            every model in one table (the report's input; see `report/html.py`)
    metrics.jsonl           one line per training epoch of every trained model, written as it ends
                            (`tracking.py`; also MLflow / TensorBoard when `tracking.backends` asks)
    report.html             self-contained report
    run.log                 everything, per-epoch lines included, with each stage's one-line summary and time

Console output has three levels: "stage" (one line per stage with its time and headline result, and errors),
"info" (what each stage did, the default) and "debug" (also one line per training epoch); `run.log` always
gets all of them.

Stages are keyed by a hash of everything they read (dataset fingerprint, split, their config section and the
keys of the stages they depend on). A stage whose key matches a finished stage of an earlier run of the same
config name is copied from there (hard links) instead of recomputed, so re-running after a crash or after
changing only a student costs only what changed. A stage is finished when its `stage.json` exists. A reused
stage's epoch lines are copied from the earlier run's `metrics.jsonl` (and sent to this run's other trackers).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distillrec.config import RunConfig, dump_config
from distillrec.data.dataset import Dataset, load_dataset
from distillrec.data.split import Split, make_split
from distillrec.manifest import dataset_fingerprint, write_manifest
from distillrec.tracking import Trackers, open_trackers, require_backends

if TYPE_CHECKING:
    from distillrec.train.loop import EpochEnd

STAGE_FILE = "stage.json"
LEVELS = {"debug": 10, "info": 20, "stage": 30}  # console verbosity; run.log gets every level
# Keys of a metrics.jsonl line that name the training (see `_Run.on_epoch`); the other numeric ones are metrics.
_LINE_LABELS = ("stage", "seed", "grid_point")


def load_data(config: RunConfig) -> tuple[Dataset, Split]:
    """The run's dataset (its `dataset:` section) and its split (`split:`)."""
    d = config.dataset
    dataset = load_dataset(
        d.source,
        min_rating=d.min_rating,
        duplicates=d.duplicates,
        min_user_interactions=d.min_user_interactions,
        min_item_interactions=d.min_item_interactions,
    )
    return dataset, make_split(dataset.interactions, config.split.protocol, **config.split.params)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Run:
    def __init__(
        self, run_dir: Path, runs_root: Path, name: str, log, level: str, trackers: Trackers
    ) -> None:
        self.dir, self.root, self.name, self._log = run_dir, runs_root, name, log
        self.level, self.trackers = LEVELS[level], trackers
        self.log_file = open(run_dir / "run.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, message: str, level: str = "info") -> None:
        if LEVELS[level] >= self.level:
            self._log(message)
        self.log_file.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")
        self.log_file.flush()

    def stage(self, rel: str, key: str, compute: Callable[[Path], str | None]) -> Path:
        """Run `compute(folder)` unless this or an earlier run of the same name finished it with `key`.
        `compute` may return a headline result for the stage's summary line."""
        folder = self.dir / rel
        if _finished(folder, key):
            self.log(f"[{rel}] already done in this run{_summary(folder)}", "stage")
            return folder
        for previous in sorted(self.root.glob(f"{self.name}-*"), reverse=True):
            if previous != self.dir and _finished(previous / rel, key):
                if folder.exists():
                    shutil.rmtree(folder)
                shutil.copytree(previous / rel, folder, copy_function=_link_or_copy)
                for line in _stage_lines(previous, rel):
                    model, epoch = line.pop("model"), line.pop("epoch")
                    labels = {k: v for k, v in line.items() if k in _LINE_LABELS or not _is_metric(v)}
                    metrics = {k: v for k, v in line.items() if k not in labels}
                    self.trackers.log_epoch(model, epoch, metrics, labels)
                self.log(f"[{rel}] reused from {previous.name} (inputs unchanged){_summary(folder)}", "stage")
                return folder
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        summary = compute(folder)
        seconds = time.perf_counter() - start
        (folder / STAGE_FILE).write_text(json.dumps({"key": key, "seconds": seconds, "summary": summary}))
        self.log(f"[{rel}] done in {_duration(seconds)}{': ' + summary if summary else ''}", "stage")
        return folder

    def on_epoch(self, stage: str, names: dict[str, str] | None = None) -> Callable:
        """An `on_epoch(labels, end)` for `tune_and_test`, `build_teacher` and `compare`: each training epoch
        goes to the trackers (metrics.jsonl, ...) and to the log at debug level. `names` renames models."""

        def on_epoch(labels: dict, end: EpochEnd) -> None:
            labels = dict(labels)
            model = labels.pop("model")
            model = (names or {}).get(model, model)
            metrics = {k: v for k, v in end.record.items() if k != "epoch"}
            self.trackers.log_epoch(model, end.epoch, metrics, {"stage": stage, **labels})
            valid = "-" if metrics.get("valid_ndcg10") is None else f"{metrics['valid_ndcg10']:.4f}"
            which = "".join(f" {k}={v}" for k, v in labels.items())
            self.log(
                f"  {model}{which} epoch {end.epoch}: loss {metrics['loss']:.4f}, valid NDCG@10 {valid} "
                f"({metrics['seconds']:.1f} s)",
                "debug",
            )

        return on_epoch

    def close(self, failed: bool = False) -> None:
        try:
            self.trackers.close(failed)
        finally:
            self.log_file.close()


def _finished(folder: Path, key: str) -> bool:
    path = folder / STAGE_FILE
    return path.exists() and json.loads(path.read_text()).get("key") == key


def _is_metric(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _summary(folder: Path) -> str:
    summary = json.loads((folder / STAGE_FILE).read_text()).get("summary")
    return f": {summary}" if summary else ""


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _stage_lines(run_dir: Path, rel: str) -> list[dict]:
    """The epoch lines of stage `rel` in `run_dir`'s metrics.jsonl (the last of any repeated epoch, e.g. after
    an interrupted attempt); for a run written before the lines carried a "stage", the histories in the stage's
    metrics.json."""
    lines: dict[str, dict] = {}
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for text in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(text) if text.strip() else {}
            if line.get("stage") == rel:
                which = json.dumps([line["model"], line["epoch"], *(line.get(k) for k in _LINE_LABELS)])
                lines.pop(which, None)  # keep the order of the last occurrence
                lines[which] = line
    if lines:
        return list(lines.values())
    metrics = json.loads((run_dir / rel / "metrics.json").read_text())
    return [
        {"model": name, "stage": rel, **record}
        for name, row in metrics.items()
        if isinstance(row, dict)
        for record in row.get("history") or []
    ]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_pipeline(
    config: RunConfig,
    runs_root: str | Path = "runs",
    run_dir: str | Path | None = None,
    log=print,
    level: str = "info",
) -> Path:
    """Run every stage of `config` into a run folder (see the module docstring); return the folder. `log`
    prints a console line; `level` ("debug", "info" or "stage") is the least important level it gets."""
    from distillrec.distill.run import compare
    from distillrec.models.registry import BASELINES, grid_for
    from distillrec.report.html import build_report
    from distillrec.teachers.build import build_teacher
    from distillrec.tune.grid import tune_and_test

    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; choose one of {list(LEVELS)}")
    require_backends(config.tracking.backends)  # a missing optional package fails before any folder is made
    runs_root = Path(runs_root)
    run_dir = Path(run_dir) if run_dir else runs_root / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))
    trackers = open_trackers(
        run_dir,
        config.tracking.backends,
        mlflow_uri=config.tracking.mlflow_uri,
        experiment=config.tracking.experiment or config.name,
        params=config.model_dump(mode="json"),
    )
    run = _Run(run_dir, runs_root, config.name, log, level, trackers)
    failed = True
    try:
        start = time.perf_counter()
        dataset, split = load_data(config)
        data_key = _key(dataset_fingerprint(dataset), config.split.model_dump())
        run.log(
            f"[data] {dataset.name}: {dataset.n_users:,} users, {dataset.n_items:,} items, "
            f"{len(dataset.interactions):,} interactions; split {split.protocol} "
            f"({_duration(time.perf_counter() - start)})",
            "stage",
        )
        seed = config.seeds[0]

        def baselines(folder: Path) -> str:
            results = {}
            for name in config.baselines.models:
                grid = config.baselines.grids.get(name) or grid_for(
                    name, quick=config.baselines.quick, seed=seed
                )
                if "progress" in inspect.signature(BASELINES[name].__init__).parameters:
                    grid = [{"progress": config.progress, **point} for point in grid]
                result = tune_and_test(
                    name, split, grid=grid, progress=config.progress, on_epoch=run.on_epoch("baselines")
                )
                results[name] = result.to_json()
                run.log(f"  {name}: test NDCG@10 {result.test['NDCG@10']:.4f}")
            (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
            write_manifest(folder, {"baselines": config.baselines.model_dump(), "seed": seed}, dataset)
            best = max(results, key=lambda n: results[n]["valid"]["NDCG@10"])
            return f"best on validation {best}, test NDCG@10 {results[best]['test']['NDCG@10']:.4f}"

        baselines_key = _key(data_key, config.baselines.model_dump(), seed)
        baselines_dir = run.stage("baselines", baselines_key, baselines)

        def teacher(folder: Path) -> str:
            metrics = build_teacher(
                dataset,
                split,
                folder,
                config.teacher,
                seed=seed,
                progress=config.progress,
                log=run.log,
                on_epoch=run.on_epoch("teacher"),
            )
            return (
                f"test NDCG@10 teacher {metrics['teacher']['test']['NDCG@10']:.4f}, "
                f"text-only {metrics['text_only']['test']['NDCG@10']:.4f}"
            )

        teacher_key = _key(data_key, config.teacher.model_dump(), seed)
        teacher_dir = run.stage("teacher", teacher_key, teacher)

        student_dirs = {}
        for student in config.students:

            def distil(folder: Path, student=student) -> str:
                params = {"progress": config.progress, **student.params}
                names = dict(zip(("student_kd", "student_plain"), _student_names(student.label), strict=True))
                comparison = compare(
                    split,
                    teacher_dir,
                    student.name,
                    params,
                    student.kd,
                    seeds=config.seeds,
                    progress=config.progress,
                    checkpoint_root=folder / "checkpoints",
                    on_epoch=run.on_epoch(f"students/{student.label}", names),
                )
                (folder / "metrics.json").write_text(json.dumps(comparison.to_json(), indent=2, default=str))
                for variant, runs in comparison.runs.items():
                    first = runs[0]
                    np.savez(
                        folder / f"test_top_items_{variant}.npz",
                        users=first.test_evaluation.users,
                        top_items=first.test_evaluation.top_items,
                    )
                    with open(folder / "history.jsonl", "a", encoding="utf-8") as fh:
                        for r in runs:
                            fh.write(
                                json.dumps(
                                    {
                                        "variant": variant,
                                        "seed": r.seed,
                                        "best_epoch": r.best_epoch,
                                        "epochs": r.epochs,
                                    }
                                )
                                + "\n"
                            )
                summary = comparison.to_json()
                return (
                    f"test NDCG@10 KD {summary['student_kd']['test']['NDCG@10']:.4f} vs plain "
                    f"{summary['student_plain']['test']['NDCG@10']:.4f}"
                )

            key = _key(teacher_key, student.model_dump(), config.seeds)
            student_dirs[student.label] = run.stage(f"students/{student.label}", key, distil)

        start = time.perf_counter()
        merged = merge_metrics(dataset, split, baselines_dir, teacher_dir, student_dirs)
        (run_dir / "metrics.json").write_text(json.dumps(merged, indent=2, default=str))
        build_report(run_dir)
        run.log(f"[report] {run_dir / 'report.html'} ({_duration(time.perf_counter() - start)})", "stage")
        failed = False
    except BaseException as exc:
        run.log_file.write(
            f"{datetime.now().isoformat(timespec='seconds')} failed: {exc!r}\n"
            + "".join(traceback.format_exception(exc))
        )
        raise
    finally:
        run.close(failed)
    return run_dir


def _student_names(label: str) -> tuple[str, str]:
    """The names of a student's KD and plain models in the run's metrics.json: "sasrec-soft (KD)", "sasrec (no KD)"."""
    return f"{label} (KD)", f"{label.split('-')[0]} (no KD)"


def merge_metrics(
    dataset, split, baselines_dir: Path, teacher_dir: Path, student_dirs: dict[str, Path]
) -> dict:
    """Every model of the run in the report's shape (see `report/html.py`)."""
    models: dict[str, dict] = {}
    for name, row in json.loads((baselines_dir / "metrics.json").read_text()).items():
        models[name] = {"kind": "baseline", **_core(row)}
    teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text())
    for name, row in teacher_metrics.items():
        kind = {"teacher": "teacher", "teacher_cold_fallback": "teacher", "text_only": "text_only"}.get(
            name, "baseline"
        )
        models[name] = {"kind": kind, **_core(row)}
    agreement, comparison = {}, {}
    teacher_top = _top10(teacher_dir / "test_top_items.npz")
    for label, folder in student_dirs.items():
        result = json.loads((folder / "metrics.json").read_text())
        kd_name, plain_name = _student_names(label)
        for variant, name in (("student_kd", kd_name), ("student_plain", plain_name)):
            row = result[variant]
            models[name] = {
                "kind": variant,
                **_core(row),
                "seeds": [{"seed": s["seed"], "test": s["test"]} for s in row["per_seed"]],
                "ci95": {
                    m: [v["ci_low"], v["ci_high"]]
                    for m, v in row["test_seeds"].items()
                    if v.get("ci_low") is not None
                },
            }
            history = row["per_seed"][0].get("history")  # the first seed's training curve
            if history:
                models[name]["history"] = history
            if variant == "student_kd":
                models[name]["kd"] = label.split("-", 1)[1].split("+")
            top = _top10(folder / f"test_top_items_{variant}.npz")
            if teacher_top is not None and top is not None:
                agreement[name] = {"top10_overlap_with_teacher": _overlap(teacher_top, top)}
        pooled = result["comparison"]["pooled"]
        comparison[kd_name] = {
            "vs": plain_name,
            "p_value": pooled.get("t_pvalue", pooled.get("p_value")),
            "diff_ci95": [pooled["diff_ci_low"], pooled["diff_ci_high"]],
        }
    return {
        "dataset": {
            "name": dataset.name,
            "users": dataset.n_users,
            "items": dataset.n_items,
            "interactions": len(dataset.interactions),
            "split": split.protocol,
        },
        "models": models,
        "agreement": agreement,
        "comparison": comparison,
    }


def _core(row: dict) -> dict:
    core = {
        "test": row["test"],
        "valid": row["valid"],
        "params": row["params"],
        "train_seconds": row.get("train_seconds", 0.0),
    }
    for optional in ("slices", "history"):
        if row.get(optional):
            core[optional] = row[optional]
    return core


def _top10(path: Path) -> dict | None:
    if not path.exists():
        return None
    data = np.load(path)
    return dict(zip(data["users"].tolist(), data["top_items"][:, :10], strict=True))


def _overlap(a: dict, b: dict) -> float:
    users = sorted(set(a) & set(b))
    return float(np.mean([len(set(a[u]) & set(b[u])) / 10 for u in users])) if users else 0.0
