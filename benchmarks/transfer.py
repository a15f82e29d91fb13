"""Benchmark: a teacher carried from a source dataset to a target through item text, at low target data.

    make run                                                       # the quickstart teacher (ml-100k): the source
    .venv/bin/python benchmarks/transfer.py runs/quickstart-<time>/teacher ml-1m --fractions 0.1 0.25 \
        --seeds 0 1 2 --kd param_init --tag ml-100k-to-ml-1m
    .venv/bin/python benchmarks/render.py transfer                 # the table of BENCHMARKS.md

For each fraction f of the target's users (`--user-fraction f`, drawn with seed 0: the other users are not seen
at all), runs `distillrec distill TARGET --teacher SOURCE --transfer --user-fraction f` (a SASRec student of width
32 trained with the KD methods and without, once per seed; the transferred teacher tested zero-shot) and keeps,
per fraction: the mapping quality, the zero-shot teacher's test NDCG@10, the students' test NDCG@10 (mean and
95% interval over seeds), the paired test of KD against the student alone, and the tail slice. Writes
`benchmarks/results/transfer/<tag>.json`; a fraction already there is not run again (`--work` keeps the runs).
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
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "transfer" / f"{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = json.loads(out.read_text()) if out.exists() else {"fractions": {}}
    result.update(
        command=f"benchmarks/transfer.py SOURCE {args.target} --fractions "
        + " ".join(map(str, args.fractions))
        + f" --seeds {' '.join(map(str, args.seeds))} --kd {args.kd} --tag {args.tag}",
        source=str(args.source),
        source_teacher=_teacher_row(args.source),
        target=args.target,
        kd=args.kd,
        student=STUDENT,
    )
    for fraction in args.fractions:
        if str(fraction) in result["fractions"]:
            continue
        folder = args.work / args.tag / str(fraction)
        command = [sys.executable, "-m", "distillrec", "distill", args.target, "--teacher", str(args.source)]
        command += ["--transfer", "--user-fraction", str(fraction), "--student", "sasrec", "--kd", args.kd]
        command += ["--seeds", ",".join(map(str, args.seeds)), "--out", str(folder), *STUDENT]
        subprocess.run(command, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        metrics = json.loads((folder / "metrics.json").read_text())
        transfer = json.loads((folder / "teacher" / "transfer.json").read_text())
        pooled = metrics["comparison"]["pooled"]
        result["fractions"][str(fraction)] = {
            "users": json.loads((folder / "teacher" / "manifest.json").read_text())["dataset"]["users"],
            "mapping": transfer,
            "teacher_zero_shot": metrics["teacher"]["test"]["NDCG@10"],
            "student_kd": metrics["student_kd"]["test_seeds"]["NDCG@10"],
            "student_plain": metrics["student_plain"]["test_seeds"]["NDCG@10"],
            "tail_kd": metrics["student_kd"]["test_slices"].get("tail", {}).get("NDCG@10"),
            "tail_plain": metrics["student_plain"]["test_slices"].get("tail", {}).get("NDCG@10"),
            "kd_vs_plain": {
                k: pooled[k] for k in ("mean_diff", "diff_ci_low", "diff_ci_high", "t_pvalue", "n")
            },
        }
        out.write_text(json.dumps(result, indent=1))
        print(f"fraction {fraction}: {result['fractions'][str(fraction)]}", flush=True)
    print(f"wrote {out}")


def _teacher_row(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = metrics.get("models", metrics)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {"dataset": manifest["dataset"], "test_ndcg10": rows["teacher"]["test"]["NDCG@10"]}


if __name__ == "__main__":
    main()
