"""`distillrec run`: the whole pipeline from one config, into one run folder, reusing what has not changed.

Input: a `RunConfig`. Output: `runs/<name>-<timestamp>/` holding

    config.yaml             the fully resolved config
    baselines/              metrics.json (tuned baselines), manifest.json
    teacher/                the teacher folder of `teachers/build.py` (metrics, weights, exported outputs)
    students/<label>/       metrics.json of `distill.run.compare` (KD vs plain), test top-K lists
    metrics.json            every model in one table (the report's input; see `report/html.py`)
    metrics.jsonl           one line per training epoch of every trained model
    report.html             self-contained report
    run.log                 what was done, with each stage's time

Stages are keyed by a hash of everything they read (dataset fingerprint, split, their config section and the
keys of the stages they depend on). A stage whose key matches a finished stage of an earlier run of the same
config name is copied from there (hard links) instead of recomputed, so re-running after a crash or after
changing only a student costs only what changed. A stage is finished when its `stage.json` exists.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from distillrec.config import RunConfig, dump_config
from distillrec.data.dataset import load_dataset
from distillrec.data.split import make_split
from distillrec.manifest import dataset_fingerprint, write_manifest

STAGE_FILE = "stage.json"


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Run:
    def __init__(self, run_dir: Path, runs_root: Path, name: str, log) -> None:
        self.dir, self.root, self.name, self._log = run_dir, runs_root, name, log
        self.log_file = open(run_dir / "run.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, message: str) -> None:
        self._log(message)
        self.log_file.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")
        self.log_file.flush()

    def stage(self, rel: str, key: str, compute) -> Path:
        """Run `compute(folder)` unless this or an earlier run of the same name finished it with `key`."""
        folder = self.dir / rel
        if _finished(folder, key):
            self.log(f"[{rel}] already done in this run")
            return folder
        for previous in sorted(self.root.glob(f"{self.name}-*"), reverse=True):
            if previous != self.dir and _finished(previous / rel, key):
                if folder.exists():
                    shutil.rmtree(folder)
                shutil.copytree(previous / rel, folder, copy_function=_link_or_copy)
                self.log(f"[{rel}] reused from {previous.name} (inputs unchanged)")
                return folder
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        compute(folder)
        (folder / STAGE_FILE).write_text(json.dumps({"key": key, "seconds": time.perf_counter() - start}))
        self.log(f"[{rel}] done in {time.perf_counter() - start:.0f} s")
        return folder

    def close(self) -> None:
        self.log_file.close()


def _finished(folder: Path, key: str) -> bool:
    path = folder / STAGE_FILE
    return path.exists() and json.loads(path.read_text()).get("key") == key


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_pipeline(config: RunConfig, runs_root: str | Path = "runs", run_dir: str | Path | None = None,
                 log=print) -> Path:
    from distillrec.distill.run import compare
    from distillrec.models.registry import BASELINES, grid_for
    from distillrec.report.html import build_report
    from distillrec.teachers.build import build_teacher
    from distillrec.tune.grid import tune_and_test

    runs_root = Path(runs_root)
    run_dir = Path(run_dir) if run_dir else runs_root / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))
    run = _Run(run_dir, runs_root, config.name, log)
    try:
        d = config.dataset
        dataset = load_dataset(d.source, min_rating=d.min_rating, duplicates=d.duplicates,
                               min_user_interactions=d.min_user_interactions,
                               min_item_interactions=d.min_item_interactions)
        split = make_split(dataset.interactions, config.split.protocol, **config.split.params)
        data_key = _key(dataset_fingerprint(dataset), config.split.model_dump())
        run.log(f"data: {dataset.name}: {dataset.n_users:,} users, {dataset.n_items:,} items, "
                f"{len(dataset.interactions):,} interactions; split {split.protocol}")
        seed = config.seeds[0]

        def baselines(folder: Path) -> None:
            results = {}
            for name in config.baselines.models:
                grid = config.baselines.grids.get(name) or grid_for(name, quick=config.baselines.quick, seed=seed)
                if "progress" in inspect.signature(BASELINES[name].__init__).parameters:
                    grid = [{"progress": config.progress, **point} for point in grid]
                result = tune_and_test(name, split, grid=grid, progress=config.progress)
                results[name] = result.to_json()
                history = getattr(result.model, "history_", None)
                if history:
                    results[name]["history"] = history
                run.log(f"  {name}: test NDCG@10 {result.test['NDCG@10']:.4f}")
            (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
            write_manifest(folder, {"baselines": config.baselines.model_dump(), "seed": seed}, dataset)

        baselines_key = _key(data_key, config.baselines.model_dump(), seed)
        baselines_dir = run.stage("baselines", baselines_key, baselines)

        teacher_key = _key(data_key, config.teacher.model_dump(), seed)
        teacher_dir = run.stage("teacher", teacher_key, lambda folder: build_teacher(
            dataset, split, folder, config.teacher, seed=seed, progress=config.progress, log=run.log))

        student_dirs = {}
        for student in config.students:
            def distil(folder: Path, student=student) -> None:
                params = {"progress": config.progress, **student.params}
                comparison = compare(split, teacher_dir, student.name, params, student.kd,
                                     seeds=config.seeds, progress=config.progress)
                (folder / "metrics.json").write_text(json.dumps(comparison.to_json(), indent=2, default=str))
                for variant, runs in comparison.runs.items():
                    first = runs[0]
                    np.savez(folder / f"test_top_items_{variant}.npz", users=first.test_evaluation.users,
                             top_items=first.test_evaluation.top_items)
                    with open(folder / "history.jsonl", "a", encoding="utf-8") as fh:
                        for r in runs:
                            fh.write(json.dumps({"variant": variant, "seed": r.seed, "best_epoch": r.best_epoch,
                                                 "epochs": r.epochs}) + "\n")
                summary = comparison.to_json()
                run.log(f"  {student.label}: KD {summary['student_kd']['test']['NDCG@10']:.4f} vs plain "
                        f"{summary['student_plain']['test']['NDCG@10']:.4f} (test NDCG@10)")

            key = _key(teacher_key, student.model_dump(), config.seeds)
            student_dirs[student.label] = run.stage(f"students/{student.label}", key, distil)

        merged = merge_metrics(dataset, split, baselines_dir, teacher_dir, student_dirs)
        (run_dir / "metrics.json").write_text(json.dumps(merged, indent=2, default=str))
        _write_epochs(run_dir / "metrics.jsonl", merged)
        build_report(run_dir)
        run.log(f"report: {run_dir / 'report.html'}")
    finally:
        run.close()
    return run_dir


def merge_metrics(dataset, split, baselines_dir: Path, teacher_dir: Path, student_dirs: dict[str, Path]) -> dict:
    """Every model of the run in the report's shape (see `report/html.py`)."""
    models: dict[str, dict] = {}
    for name, row in json.loads((baselines_dir / "metrics.json").read_text()).items():
        models[name] = {"kind": "baseline", **_core(row)}
    teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text())
    for name, row in teacher_metrics.items():
        kind = {"teacher": "teacher", "text_only": "text_only"}.get(name, "baseline")
        models[name] = {"kind": kind, **_core(row)}
    agreement, comparison = {}, {}
    teacher_top = _top10(teacher_dir / "test_top_items.npz")
    for label, folder in student_dirs.items():
        result = json.loads((folder / "metrics.json").read_text())
        kd_name, plain_name = f"{label} (KD)", f"{label.split('-')[0]} (no KD)"
        for variant, name in (("student_kd", kd_name), ("student_plain", plain_name)):
            row = result[variant]
            models[name] = {"kind": variant, **_core(row),
                            "seeds": [{"seed": s["seed"], "test": s["test"]} for s in row["per_seed"]],
                            "ci95": {m: [v["ci_low"], v["ci_high"]] for m, v in row["test_seeds"].items()
                                     if v.get("ci_low") is not None}}
            if variant == "student_kd":
                models[name]["kd"] = label.split("-", 1)[1].split("+")
            top = _top10(folder / f"test_top_items_{variant}.npz")
            if teacher_top is not None and top is not None:
                agreement[name] = {"top10_overlap_with_teacher": _overlap(teacher_top, top)}
        pooled = result["comparison"]["pooled"]
        comparison[kd_name] = {"vs": plain_name, "p_value": pooled.get("t_pvalue", pooled.get("p_value")),
                               "diff_ci95": [pooled["diff_ci_low"], pooled["diff_ci_high"]]}
    return {
        "dataset": {"name": dataset.name, "users": dataset.n_users, "items": dataset.n_items,
                    "interactions": len(dataset.interactions), "split": split.protocol},
        "models": models, "agreement": agreement, "comparison": comparison,
    }


def _core(row: dict) -> dict:
    core = {"test": row["test"], "valid": row["valid"], "params": row["params"],
            "train_seconds": row.get("train_seconds", 0.0)}
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


def _write_epochs(path: Path, merged: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for name, row in merged["models"].items():
            for record in row.get("history", []):
                fh.write(json.dumps({"model": name, **record}, default=str) + "\n")
