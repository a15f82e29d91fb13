"""Train a teacher's ID-only twin on its own, with the settings a committed teacher manifest records.

    .venv/bin/python benchmarks/id_only_twin.py ml-1m benchmarks/results/teacher/ml-1m-bf16-buckets \
        --out ~/.cache/distillrec/bench-teacher/ml-1m-bf16-buckets-twin
    cp ~/.cache/distillrec/bench-teacher/ml-1m-bf16-buckets-twin/metrics.json \
        benchmarks/results/teacher/ml-1m-bf16-buckets/id_only.json

`distillrec teacher --compare-id-only` trains the twin after the teacher, in the same process. This trains only
the twin (a `SASRec` with the teacher's width, depth, window, dropout, budget, bf16 and batching, without the
text), so a teacher whose results are committed gets its twin without being trained again. The split and seed
come from the manifest too; the dataset must have the manifest's fingerprint. Writes `OUT/metrics.json` with one
key, `"id_only"`, in the teacher row's shape (with head/tail/cold slices) plus `"precision"`, what it ran in (a
`bf16` teacher's twin runs in float32 on a CPU without native bfloat16). Resumes from `OUT/checkpoints/id_only`;
run again after it finished, it only evaluates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from distillrec.data.dataset import load_dataset
from distillrec.stages.data import PreparedData
from distillrec.stages.teacher import build_id_only_twin, read_teacher_folder
from distillrec.train.loop import cpu_bf16_supported


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="folder with the teacher's manifest.json")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the twin's metrics and checkpoints"
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        help="epoch budget instead of the manifest's: a lower one stops a resumed twin at once and tests its best "
        "checkpoint so far (say so when reporting it)",
    )
    args = parser.parse_args()

    try:
        dataset = load_dataset(args.dataset)
        settings, split, seed = read_teacher_folder(args.teacher, dataset)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    if args.max_epochs is not None:
        settings = settings.model_copy(update={"max_epochs": args.max_epochs})
    args.out.mkdir(parents=True, exist_ok=True)
    row = build_id_only_twin(PreparedData(dataset, split), args.out, settings, seed=seed)
    # what the twin ran in: bf16 falls back to float32 on a CPU without native bfloat16
    row["precision"] = "bf16" if settings.bf16 and cpu_bf16_supported() else "float32"
    (args.out / "metrics.json").write_text(json.dumps({"id_only": row}, indent=2, default=str))


if __name__ == "__main__":
    main()
