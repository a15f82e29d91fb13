"""Stage 4, distill: one student trained with KD and without it, per seed, compared, saved.

Input: `PreparedData`, a teacher folder (stage 3), a `StudentConfig` (name, params, KD methods) and the seeds.
Output: the `Comparison` (`distill/run.py`) and, in `out/`:

    metrics.json                 `Comparison.to_json()` (student_kd, student_plain, comparison), the teacher's
                                 row and, when a baselines folder is given, the best baseline on validation
    per_user.npz                 each variant's per-user test NDCG@10, (seeds, users)
    test_top_items_<variant>.npz the first seed's test top-K lists
    history.jsonl                each run's best and last epoch
    manifest.json                the stage's schema version, the full student config, seeds, teacher folder
    models/<variant>-seed<s>/    every trained student (`artifact.py`)
    model/                       the student with KD of the first seed: the one to deploy
    checkpoints/                 each run's last epoch: the same call again resumes an interrupted stage
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distillrec.config import StudentConfig
from distillrec.distill.run import VARIANTS, Comparison, compare
from distillrec.manifest import write_manifest
from distillrec.results import read_results
from distillrec.stages.data import PreparedData
from distillrec.train.loop import EpochEnd

__all__ = ["run_students", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def run_students(
    data: PreparedData,
    teacher_dir: str | Path,
    student: StudentConfig,
    seeds: list[int],
    out: str | Path,
    progress: bool = True,
    on_epoch: Callable[[dict, EpochEnd], None] | None = None,
    last_position: bool = True,
    baselines_dir: str | Path | None = None,
    device: str = "cpu",
) -> Comparison:
    """Train, compare and save `student` with and without KD (see the module docstring)."""
    out, teacher_dir = Path(out), Path(teacher_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = compare(
        data.split,
        teacher_dir,
        student.name,
        {"progress": progress, "device": device, **student.params},
        student.kd,
        seeds=seeds,
        last_position=last_position,
        progress=progress,
        on_epoch=on_epoch,
        checkpoint_root=out / "checkpoints",
        model_root=out / "models",
        catalog=data.catalog(),
    )
    deployed = out / "model"
    if deployed.exists():
        shutil.rmtree(deployed)
    shutil.copytree(out / "models" / f"student_kd-seed{seeds[0]}", deployed)

    metrics = {"schema_version": SCHEMA_VERSION, "label": student.label, "kd": list(student.kd)}
    metrics.update(comparison.to_json())
    teacher_metrics = teacher_dir / "metrics.json"
    if teacher_metrics.exists():
        teacher = read_results(teacher_metrics, default_kind="teacher").get("teacher")
        metrics["teacher"] = None if teacher is None else teacher.model_dump(exclude_unset=True)
    if baselines_dir is not None:
        rows = read_results(Path(baselines_dir) / "metrics.json", default_kind="baseline")
        name = max(rows, key=lambda n: rows[n].valid["NDCG@10"])  # chosen on validation, like every model
        metrics["best_baseline"] = {"name": name, **rows[name].model_dump(exclude_unset=True)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    np.savez_compressed(
        out / "per_user.npz",
        users=comparison.test_users(),
        seeds=np.array(seeds),
        **{v: comparison.per_user(v) for v in VARIANTS},
    )
    with open(out / "history.jsonl", "w", encoding="utf-8") as fh:
        for variant, runs in comparison.runs.items():
            first = runs[0].test_evaluation
            np.savez(out / f"test_top_items_{variant}.npz", users=first.users, top_items=first.top_items)
            for r in runs:
                row = {"variant": variant, "seed": r.seed, "best_epoch": r.best_epoch, "epochs": r.epochs}
                fh.write(json.dumps(row) + "\n")
    config = {
        "schema_version": SCHEMA_VERSION,
        "student": student.model_dump(mode="json"),
        "label": student.label,
        "student_params": comparison.student_params,
        "objective": comparison.objective,
        "seeds": list(seeds),
        "last_position": last_position,
        "teacher": str(teacher_dir),
        "split": {"protocol": data.split.protocol, "params": dict(data.split.params)},
    }
    write_manifest(out, config, data.dataset)
    return comparison
