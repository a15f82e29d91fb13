"""Benchmark: a teacher carried from a source dataset to a target through item text, at low target data.

    make run                                                       # the quickstart teacher (ml-100k): the source
    .venv/bin/python benchmarks/transfer.py runs/quickstart-<time>/teacher ml-1m --fractions 0.1 0.25 \
        --seeds 0 1 2 --kd param_init --tag ml-100k-to-ml-1m
    .venv/bin/python benchmarks/render.py transfer                 # the table of BENCHMARKS.md

For each fraction f of the target's users (`--user-fraction f`, drawn with seed 0: the other users are not seen
at all), runs `distillrec distill TARGET --teacher SOURCE --transfer --user-fraction f` (a SASRec student of width
32 trained with the KD methods and without, once per seed; the transferred teacher tested zero-shot) and keeps,
per fraction: the mapping quality, the zero-shot teacher's test NDCG@10, the students' test NDCG@10 (mean and
95% interval over seeds), the paired test of KD against the student alone, and the tail and cold slices. With
`--target-teacher "TEACHER OPTIONS"`, also a teacher trained on the target's kept users alone (`distillrec
teacher TARGET --user-fraction f`, those options) and the same student distilled from it: what the target's own
data gives without the source. Writes `benchmarks/results/transfer/<tag>.json`; a fraction already there is not
run again (`--work` keeps the runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ["--dim", "32", "--lr", "0.003", "--max-epochs", "60", "--patience", "10"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="the source teacher folder")
    parser.add_argument("target", help="the target dataset")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kd", default="param_init")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/distillrec-transfer"))
    parser.add_argument("--student-args", help="the student's options (default: the ones of STUDENT)")
    parser.add_argument(
        "--target-teacher",
        help='also a teacher of the target\'s kept users alone, with these options ("" for defaults)',
    )
    args = parser.parse_args()
    student = args.student_args.split() if args.student_args is not None else STUDENT
    out = ROOT / "benchmarks" / "results" / "transfer" / f"{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = json.loads(out.read_text()) if out.exists() else {"fractions": {}}
    if result["fractions"] and result.get("student") != student:
        raise SystemExit(
            f"{out}: its fractions were run with the student {result.get('student')}; use another tag"
        )
    command = (
        f"benchmarks/transfer.py SOURCE {args.target} --fractions "
        + " ".join(map(str, args.fractions))
        + f" --seeds {' '.join(map(str, args.seeds))} --kd {args.kd} --tag {args.tag}"
        + (f' --student-args "{args.student_args}"' if args.student_args is not None else "")
        + (f' --target-teacher "{args.target_teacher}"' if args.target_teacher is not None else "")
    )
    if "command" in result:  # a result file from before `commands`
        result["commands"] = [result.pop("command")]
    commands = result.setdefault("commands", [])  # every invocation that added rows
    if command not in commands:
        commands.append(command)
    result.update(
        source=str(args.source),
        source_teacher=_teacher_row(args.source),
        target=args.target,
        kd=args.kd,
        student=student,
    )
    for fraction in args.fractions:
        folder = args.work / args.tag / str(fraction)
        if str(fraction) not in result["fractions"]:
            result["fractions"][str(fraction)] = _transfer_row(args, fraction, folder, student)
            out.write_text(json.dumps(result, indent=1))
        row = result["fractions"][str(fraction)]
        if "cold_kd" not in row and (folder / "metrics.json").exists():  # a row from before the cold slice
            row.update(_slices(json.loads((folder / "metrics.json").read_text())))
            out.write_text(json.dumps(result, indent=1))
        if args.target_teacher is not None and "teacher_target" not in row:
            row.update(_target_rows(args, fraction, folder, student))
            out.write_text(json.dumps(result, indent=1))
        print(f"fraction {fraction}: {row}", flush=True)
    print(f"wrote {out}")


def _distillrec(*arguments: str) -> None:
    command = [sys.executable, "-m", "distillrec", *arguments]
    subprocess.run(command, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def _transfer_row(args, fraction: float, folder: Path, student: list[str]) -> dict:
    """The source teacher carried to the target's kept users, and the student with its KD and without."""
    _distillrec(
        "distill", args.target, "--teacher", str(args.source), "--transfer", "--user-fraction", str(fraction),
        "--student", "sasrec", "--kd", args.kd, "--seeds", ",".join(map(str, args.seeds)), "--out", str(folder),
        *student,
    )  # fmt: skip
    metrics = json.loads((folder / "metrics.json").read_text())
    transfer = json.loads((folder / "teacher" / "transfer.json").read_text())
    pooled = metrics["comparison"]["pooled"]
    return {
        "users": json.loads((folder / "teacher" / "manifest.json").read_text())["dataset"]["users"],
        "mapping": transfer,
        "teacher_zero_shot": metrics["teacher"]["test"]["NDCG@10"],
        "student_kd": metrics["student_kd"]["test_seeds"]["NDCG@10"],
        "student_plain": metrics["student_plain"]["test_seeds"]["NDCG@10"],
        **_slices(metrics),
        "kd_vs_plain": {k: pooled[k] for k in ("mean_diff", "diff_ci_low", "diff_ci_high", "t_pvalue", "n")},
    }


def _slices(metrics: dict) -> dict:
    """The students' test NDCG@10 on tail and cold targets (None where the slice has no user), and the number of
    users with a cold target: items without a training interaction among the kept users."""
    kd, plain = (metrics[name]["test_slices"] for name in ("student_kd", "student_plain"))
    return {
        "tail_kd": kd.get("tail", {}).get("NDCG@10"),
        "tail_plain": plain.get("tail", {}).get("NDCG@10"),
        "cold_kd": kd.get("cold", {}).get("NDCG@10"),
        "cold_plain": plain.get("cold", {}).get("NDCG@10"),
        "cold_users": int(kd.get("cold", {}).get("users", 0)),
    }


def _target_rows(args, fraction: float, folder: Path, student: list[str]) -> dict:
    """A teacher of the target's kept users alone and the same student distilled from it."""
    teacher = folder / "target-teacher"
    _distillrec(
        "teacher", args.target, "--user-fraction", str(fraction), "--out", str(teacher), *args.target_teacher.split()
    )  # fmt: skip
    kd = folder / "target-kd"
    _distillrec(
        "distill", args.target, "--teacher", str(teacher), "--user-fraction", str(fraction), "--student", "sasrec",
        "--kd", args.kd, "--seeds", ",".join(map(str, args.seeds)), "--out", str(kd), *student,
    )  # fmt: skip
    metrics = json.loads((kd / "metrics.json").read_text())
    return {
        "teacher_target": _teacher_row(teacher)["test_ndcg10"],
        "student_kd_target": metrics["student_kd"]["test_seeds"]["NDCG@10"],
        "tail_kd_target": metrics["student_kd"]["test_slices"].get("tail", {}).get("NDCG@10"),
    }


def _teacher_row(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = metrics.get("models", metrics)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {"dataset": manifest["dataset"], "test_ndcg10": rows["teacher"]["test"]["NDCG@10"]}


if __name__ == "__main__":
    main()
