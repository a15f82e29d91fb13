"""Stage 3b, the low-data curve of a transfer run: the source teacher carried to smaller shares of the target.

Input: the run's dataset and split configs, its `TransferConfig` (source teacher folder, `id_match`, `fractions`),
its students and seeds. For each fraction f of `fractions` (folder `out/<f>/`): the target prepared with only
that share of its users (`user_fraction`, drawn with `user_seed`; the others are not seen at all, evaluation
stays on the kept users' held-out items), the source teacher carried to it (`stages/transfer.py`), and every
student trained with its KD methods and without (`stages/distill.py`). Output: `out/curve.json`, one point per
fraction: users kept, the carried-over teacher's zero-shot test NDCG@10, and per student the KD and plain
students' test NDCG@10 (means over seeds) with the paired t-test's p. A fraction finished earlier (its
`point.json`) is not trained again, so an interrupted curve resumes at the fraction it stopped in.
"""

from __future__ import annotations

import json
from pathlib import Path

from distillrec.config import DatasetConfig, SplitConfig, StudentConfig, TransferConfig
from distillrec.stages import distill
from distillrec.stages.data import prepare_data
from distillrec.stages.transfer import transfer_teacher

__all__ = ["run_curve", "curve_point", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def run_curve(
    dataset: DatasetConfig,
    split: SplitConfig,
    settings: TransferConfig,
    students: list[StudentConfig],
    seeds: list[int],
    out: str | Path,
    progress: bool = True,
    log=print,
    device: str = "cpu",
) -> dict:
    """See the module docstring; returns what it writes to `out/curve.json`."""
    out = Path(out)
    points = {}
    for fraction in settings.fractions:
        folder = out / str(fraction)
        done = folder / "point.json"
        if not done.exists():
            data = prepare_data(
                dataset.model_copy(update={"user_fraction": fraction}), split, folder / "data"
            )
            log(f"  {fraction:.0%} of the users: {data.dataset.n_users:,} kept")
            teacher = transfer_teacher(
                settings.source,
                data,
                folder / "teacher",
                progress=progress,
                log=log,
                id_match=settings.id_match,
            )
            student_dirs = {}
            for student in students:
                student_dirs[student.label] = folder / "students" / student.label
                distill.run_students(
                    data,
                    folder / "teacher",
                    student,
                    seeds,
                    student_dirs[student.label],
                    progress,
                    device=device,
                )
            point = curve_point(data.dataset.n_users, teacher["teacher"]["test"]["NDCG@10"], student_dirs)
            done.write_text(json.dumps(point, indent=1))
        points[str(fraction)] = json.loads(done.read_text())
        log(f"  {fraction:.0%}: " + _describe(points[str(fraction)]))
    curve = {"schema_version": SCHEMA_VERSION, "source": settings.source, "points": points}
    (out / "curve.json").write_text(json.dumps(curve, indent=1))
    return curve


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


def _describe(point: dict) -> str:
    parts = [f"teacher zero-shot {point['teacher']:.4f}"]
    parts += [f"{label} KD {s['kd']:.4f} vs plain {s['plain']:.4f}" for label, s in point["students"].items()]
    return ", ".join(parts)
