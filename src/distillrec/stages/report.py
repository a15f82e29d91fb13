"""Stage 5, report: every stage's metrics.json merged into the run's one table, then `report.html`.

Input: the prepared data and the folders of the baselines, teacher and student stages. Output: the run's
`metrics.json` (the shape `report/html.py` documents and checks, with a schema version) and `report.html`.
Every model with a model folder also gets its serving cost (`recommend.serving_cost`: weights on disk, top-10
latency over `COST_USERS` test users), measured here so that the report shows quality, size and speed together.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from distillrec.artifact import ModelFolderError
from distillrec.recommend import load, serving_cost
from distillrec.report.html import build_report
from distillrec.results import read_results
from distillrec.stages.data import PreparedData
from distillrec.stages.transfer_curve import POINT, curve_point

__all__ = ["write_report", "merge_metrics", "multitask_rows", "student_names", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
COST_USERS = 100  # test users timed one request at a time for each model's latency


def write_report(
    run_dir: Path,
    data: PreparedData,
    baselines_dir: Path,
    teacher_dir: Path,
    student_dirs: dict[str, Path],
    compressed_dir: Path | None = None,
    multitask_dir: Path | None = None,
    curve_dirs: dict[float, Path] | None = None,
    user_fraction: float = 1.0,
) -> Path:
    """Write `run_dir/metrics.json` and `run_dir/report.html`; return the report's path. With `curve_dirs` (a
    transfer run's low-data curve: each share's stage folder), the run's own students are the point at
    `user_fraction`."""
    merged = merge_metrics(data, baselines_dir, teacher_dir, student_dirs, compressed_dir)
    if multitask_dir is not None:
        merged["multitask"] = multitask_rows(json.loads((multitask_dir / "multitask.json").read_text()))
    if curve_dirs:
        merged["transfer_curve"] = curve_rows(curve_dirs, teacher_dir, merged, student_dirs, user_fraction)
    users = data.dataset.user_ids[np.unique(data.split.test.users)[:COST_USERS]]
    folders = model_folders(merged["models"], baselines_dir, teacher_dir, student_dirs, compressed_dir)
    for name, folder in folders.items():
        try:
            merged["models"][name].update(serving_cost(load(folder), users))
        except (ModelFolderError, ImportError) as exc:  # e.g. a folder an optional extra serves
            warnings.warn(f"{folder}: no serving cost measured ({exc})", stacklevel=2)
    (Path(run_dir) / "metrics.json").write_text(json.dumps(merged, indent=2, default=str))
    return build_report(run_dir)


def model_folders(
    models: dict,
    baselines_dir: Path,
    teacher_dir: Path,
    student_dirs: dict[str, Path],
    compressed_dir: Path | None = None,
) -> dict[str, Path]:
    """The model folder of each model of the merged `models` that has one: a baseline's, the teacher's, the
    text-only model's, the ID-only twin's, each student's with KD and without (its first seed's), and each
    compressed copy."""
    folders = {name: Path(baselines_dir) / "models" / name for name in models}
    folders.update(
        {
            "teacher": teacher_dir / "model",
            "text_only": teacher_dir / "text_only_model",
            "id_only": teacher_dir / "id_only_model",
        }
    )
    for label, folder in student_dirs.items():
        kd_name, plain_name = student_names(label)
        folders[kd_name] = folder / "model"
        if plain_name in models:
            seed = models[plain_name]["seeds"][0]["seed"]
            folders[plain_name] = folder / "models" / f"student_plain-seed{seed}"
    if compressed_dir is not None:
        for name, row in read_results(compressed_dir / "metrics.json").items():
            folders[name] = compressed_dir / row.model_extra["folder"]
    return {n: f for n, f in folders.items() if n in models and (f / "manifest.json").is_file()}


def curve_rows(
    curve_dirs: dict[float, Path],
    teacher_dir: Path,
    merged: dict,
    student_dirs: dict[str, Path],
    user_fraction: float,
) -> dict:
    """The low-data curve as the report shows it: each share's point and the run's own, by share."""
    points = {str(f): json.loads((folder / POINT).read_text()) for f, folder in curve_dirs.items()}
    teacher = merged["models"]["teacher"]["test"]["NDCG@10"]
    points[str(user_fraction)] = curve_point(merged["dataset"]["users"], teacher, student_dirs)
    source = json.loads((teacher_dir / "transfer.json").read_text())["source"]
    return {"source": source, "points": dict(sorted(points.items(), key=lambda kv: float(kv[0])))}


def multitask_rows(summary: dict) -> dict:
    """The multi-task stage's teacher and students as the report shows them: each task's test AUC, conversion
    NDCG@10 (means over seeds) and, for a KD student, the paired test of conversion NDCG@10 against the student
    alone."""
    metrics = ("ctr_AUC", "cvr_AUC", "ctcvr_AUC", "conversion_NDCG@10")
    rows = {}
    for name, row in [("teacher", summary["teacher"]), *summary["students"].items()]:
        test = summary["comparisons"].get(f"{name} vs alone", {}).get("conversion_NDCG@10")
        rows[name] = {
            "params": row["params"],
            **{m: row[m]["mean"] for m in metrics},
            "p_vs_alone": None if test is None else test["t_pvalue"],
        }
    return {"seeds": summary["seeds"], "models": rows}


def student_names(label: str) -> tuple[str, str]:
    """The names of a student's KD and plain models in the run's metrics.json: "sasrec-soft (KD)",
    "sasrec-soft (no KD)" (each student config trains its own plain twin, with its own params)."""
    return f"{label} (KD)", f"{label} (no KD)"


def merge_metrics(
    data: PreparedData,
    baselines_dir: Path,
    teacher_dir: Path,
    student_dirs: dict[str, Path],
    compressed_dir: Path | None = None,
) -> dict:
    """Every model of the run in the report's shape (see `report/html.py`). Each row's kind is the one its
    stage wrote (`kind` in the teacher folder's rows), each student's KD methods the ones in its metrics.json."""
    dataset, split = data.dataset, data.split
    models: dict[str, dict] = {}
    for folder in (baselines_dir, teacher_dir, compressed_dir):
        if folder is None:
            continue
        for name, row in read_results(folder / "metrics.json").items():
            models[name] = {"kind": row.kind, **_core(row.model_dump(exclude_unset=True))}
    agreement, comparison = {}, {}
    teacher_top = _top10(teacher_dir / "test_top_items.npz")
    for label, folder in student_dirs.items():
        result = json.loads((folder / "metrics.json").read_text())
        kd_name, plain_name = student_names(label)
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
                models[name]["kd"] = list(result["kd"])
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
        "schema_version": SCHEMA_VERSION,
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
