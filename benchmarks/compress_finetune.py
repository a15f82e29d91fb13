"""Benchmark: a run's compressed copies of its KD student, with and without KD fine-tuning, beside the student.

    distillrec run configs/quickstart.yaml --set compress.kd_finetune_epochs=5 \
        --set 'compress.methods=[int8, int4, "lowrank,int8", pq]'
    .venv/bin/python benchmarks/compress_finetune.py runs/quickstart-<time> --tag ml-100k-quickstart
    .venv/bin/python benchmarks/render.py finetune      # the table of BENCHMARKS.md

Copies from the run's merged `metrics.json` the rows of kind "compressed" and "student_kd" (test and validation
metrics, parameters, size on disk, latency) into `benchmarks/results/compress_finetune/<tag>.json`, with the
command that made the run (`--command`, default the one above).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_COMMAND = (
    "distillrec run configs/quickstart.yaml --set compress.kd_finetune_epochs=5 "
    "--set 'compress.methods=[int8, int4, \"lowrank,int8\", pq]'"
)
KEYS = ("kind", "test", "valid", "params", "weights_bytes", "latency_ms_p50", "latency_ms_p99")
STAGE_KEYS = ("methods", "smaller_than_source", "fine_tuned_with", "aware")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run folder of `distillrec run` with a compress: section")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--command", default=RUN_COMMAND, help="the command that made the run")
    args = parser.parse_args()
    merged = json.loads((args.run / "metrics.json").read_text())
    rows = {
        name: {key: row[key] for key in KEYS if key in row}
        for name, row in merged["models"].items()
        if row["kind"] in ("compressed", "student_kd")
    }
    stage = json.loads((args.run / "compressed" / "metrics.json").read_text())["models"]
    for name, row in stage.items():  # the compress stage's own details
        rows[name].update({key: row[key] for key in STAGE_KEYS if key in row})
    result = {
        "command": args.command,
        "run": args.run.name,
        "dataset": merged["dataset"]["name"],
        "models": rows,
    }
    out = ROOT / "benchmarks" / "results" / "compress_finetune" / f"{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
