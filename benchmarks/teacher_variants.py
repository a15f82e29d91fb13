"""Benchmark: teacher variants side by side, each a `distillrec run` of one config with one teacher option changed.

    distillrec run configs/quickstart.yaml                                          # adapter (the default)
    distillrec run configs/quickstart.yaml --set teacher.fusion=pca_init
    distillrec run configs/quickstart.yaml --set teacher.fusion=nullspace
    distillrec run configs/quickstart.yaml --set teacher.encoder_tuning_pairs=20000
    distillrec run configs/quickstart.yaml --set teacher.encoder_tuning_pairs=20000 --set teacher.fusion=pca_init
    .venv/bin/python benchmarks/teacher_variants.py --tag ml-100k-quickstart \
        adapter=runs/quickstart-A "pca_init=runs/quickstart-B" ...
    .venv/bin/python benchmarks/render.py teacher-variants

Collects from each run folder (its merged `metrics.json`) the teacher's and the text-only model's test and
validation NDCG@10 with the tail slice, and the first student's NDCG@10 with KD and without, into
`benchmarks/results/teacher_variants/<tag>.json`, with each run's teacher settings.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tag", required=True)
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    args = parser.parse_args()
    rows = {}
    for item in args.runs:
        label, _, folder = item.partition("=")
        run = Path(folder)
        models = json.loads((run / "metrics.json").read_text())["models"]
        teacher, text = models["teacher"], models["text_only"]
        kd = next(n for n, r in models.items() if r["kind"] == "student_kd")
        plain = next(n for n, r in models.items() if r["kind"] == "student_plain")
        config = yaml.safe_load((run / "config.yaml").read_text())
        rows[label] = {
            "run": run.name,
            "teacher_settings": config["teacher"],
            "teacher": {"test": teacher["test"]["NDCG@10"], "valid": teacher["valid"]["NDCG@10"]},
            "teacher_tail": teacher.get("slices", {}).get("tail", {}).get("NDCG@10"),
            "text_only_tail": text.get("slices", {}).get("tail", {}).get("NDCG@10"),
            "student_kd": {
                "name": kd,
                "test": models[kd]["test"]["NDCG@10"],
                "valid": models[kd]["valid"]["NDCG@10"],
            },
            "student_plain": {
                "test": models[plain]["test"]["NDCG@10"],
                "valid": models[plain]["valid"]["NDCG@10"],
            },
            "teacher_params": teacher["params"],
            "student_params": models[kd]["params"],
        }
    out = ROOT / "benchmarks" / "results" / "teacher_variants" / f"{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "benchmarks/teacher_variants.py " + shlex.join(sys.argv[1:])
    out.write_text(json.dumps({"command": command, "variants": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
