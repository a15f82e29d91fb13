"""Stage 3b, one share of a transfer run's low-data curve: the source teacher carried to fewer target users.

Input: the run's dataset and split configs, its `TransferConfig` (source teacher folder, `id_match`), one share f
of `fractions`, its students and seeds. The target is prepared with only that share of its users
(`user_fraction`, drawn with `user_seed`; the others are not seen at all, evaluation stays on the kept users'
held-out items), the source teacher is carried to it (`stages/transfer.py`), and every student is trained with
its KD methods and without (`stages/distill.py`). Output, in `out/`: `data/`, `teacher/`, `students/<label>/` and
`point.json`: users kept, the carried-over teacher's zero-shot test NDCG@10, and per student the KD and plain
students' test NDCG@10 (means over seeds) with the paired t-test's p. The pipeline runs one such stage per share
(`transfer_curve/<f>`), so adding a share trains only that one; the report joins the points with the run's own.
"""

from __future__ import annotations

import json
from pathlib import Path

from distillrec.config import DatasetConfig, SplitConfig, StudentConfig, TransferConfig
from distillrec.stages import distill
from distillrec.stages.data import prepare_data
from distillrec.stages.transfer import transfer_teacher

__all__ = ["run_share", "curve_point", "describe", "POINT", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
POINT = "point.json"


def run_share(
    dataset: DatasetConfig,
    split: SplitConfig,
    settings: TransferConfig,
    fraction: float,
    students: list[StudentConfig],
    seeds: list[int],
    out: str | Path,
    progress: bool = True,
    log=print,
    device: str = "cpu",
) -> dict:
    """See the module docstring; returns what it writes to `out/point.json`."""
    out = Path(out)
    data = prepare_data(dataset.model_copy(update={"user_fraction": fraction}), split, out / "data")
    log(f"  {fraction:.0%} of the users: {data.dataset.n_users:,} kept")
    teacher = transfer_teacher(
        settings.source, data, out / "teacher", progress=progress, log=log, id_match=settings.id_match
    )
    student_dirs = {}
    for student in students:
        student_dirs[student.label] = out / "students" / student.label
        distill.run_students(
            data, out / "teacher", student, seeds, student_dirs[student.label], progress, device=device
        )
    point = curve_point(data.dataset.n_users, teacher["teacher"]["test"]["NDCG@10"], student_dirs)
    (out / POINT).write_text(json.dumps(point, indent=1))
    return point


def curve_point(users: int, teacher_ndcg: float, student_dirs: dict[str, Path]) -> dict:
    """One point of the curve from a teacher's zero-shot test NDCG@10 and the students' stage folders."""
    students = {}
    for label, folder in student_dirs.items():
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        pooled = metrics["comparison"]["pooled"]
        students[label] = {
            "kd": metrics["student_kd"]["test"]["NDCG@10"],
            "plain": metrics["student_plain"]["test"]["NDCG@10"],
            "p_value": pooled.get("t_pvalue", pooled.get("p_value")),
        }
    return {"users": users, "teacher": teacher_ndcg, "students": students}


def describe(point: dict) -> str:
    """A stage's one-line summary of its point."""
    parts = [f"teacher zero-shot {point['teacher']:.4f}"]
    parts += [f"{label} KD {s['kd']:.4f} vs plain {s['plain']:.4f}" for label, s in point["students"].items()]
    return ", ".join(parts)
