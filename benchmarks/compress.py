"""Benchmark: quality, size and speed of the teacher, the students and their compressed copies, side by side.

    .venv/bin/python benchmarks/compress.py runs/quickstart-<time> --tag ml-100k-quickstart
    .venv/bin/python benchmarks/render.py compress          # the table of BENCHMARKS.md

For a run folder of `distillrec run`: its teacher, its first student with KD and without, and every
`--methods` variant of the KD student and of the teacher (`distillrec compress`, written under the run folder's
`compressed/`), and both exported to ONNX (`distillrec export`, served by onnxruntime). Each model: test NDCG@10 and HR@10 (full ranking, the run's split, the same users), its weights
on disk (state and array parameters, e.g. the teacher's text table; not the serving data every folder carries),
parameters, the latency of one user's full-catalogue top-10 through `SavedModel.recommend` (p50 / p99 over
`--users` users, one thread, `OPENBLAS_NUM_THREADS=1`) and the throughput of `recommend_batch` over every test
user (users/s, one thread). Output: `benchmarks/results/compress/<tag>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

import distillrec  # noqa: E402
from distillrec.compress import compress_model  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.export import export_onnx  # noqa: E402
from distillrec.recommend import serving_cost  # noqa: E402
from distillrec.stages.data import read_prepared  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(folder: Path, data, users: list[str], n_latency: int) -> dict:
    model = distillrec.load(folder)
    split = data.split
    test = evaluate(model.model, split.test_history(), split.test, ks=(10,)).summary
    cost = serving_cost(model, users[:n_latency])
    start = time.perf_counter()
    model.recommend_batch(users=users, k=10)
    batch_seconds = time.perf_counter() - start
    return {
        "NDCG@10": test["NDCG@10"],
        "HR@10": test["HR@10"],
        "params": model.model.n_params(),
        **cost,
        "users_per_second": len(users) / batch_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run folder of `distillrec run`")
    parser.add_argument("--tag", required=True, help="name of the result file")
    parser.add_argument(
        "--methods", default="int8;int4;prune,int8;lowrank,int8", help="';'-separated variants"
    )
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--energy", type=float, default=0.95)
    parser.add_argument("--users", type=int, default=300, help="users timed one at a time")
    parser.add_argument(
        "--append",
        action="store_true",
        help="measure only these methods' copies and put their rows in the tag's existing result",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = read_prepared(args.run / "data")
    users = [str(data.dataset.user_ids[u]) for u in data.split.test.active_users()]
    student = sorted((args.run / "students").iterdir())[0]
    models = {
        "teacher": args.run / "teacher" / "model",
        f"{student.name} (KD)": student / "model",
        f"{student.name} (no KD)": student / "models" / "student_plain-seed0",
    }
    for spec in (s.strip() for s in args.methods.split(";") if s.strip()):
        for base in ("teacher", f"{student.name} (KD)"):
            out = args.run / "compressed" / f"{base.split(' ')[0]}-{spec.replace(',', '+')}"
            compress_model(models[base], out, spec.split(","), sparsity=args.sparsity, energy=args.energy)
            models[f"{base} {spec}"] = out
    if args.append:  # the float and ONNX rows are the existing result's
        models = {name: folder for name, folder in models.items() if name != "teacher" and name[-1] != ")"}
    else:
        for base in ("teacher", f"{student.name} (KD)"):  # the same models served by onnxruntime
            out = args.run / "compressed" / f"{base.split(' ')[0]}-onnx"
            models[f"{base} onnx"] = export_onnx(models[base], out)
    out = ROOT / "benchmarks" / "results" / "compress" / f"{args.tag}.json"
    rows = {}
    for name, folder in models.items():
        rows[name] = measure(folder, data, users, args.users)
        print(f"{name:40s} " + " ".join(f"{k} {v:.4g}" for k, v in rows[name].items()), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        ["benchmarks/compress.py", str(args.run.name), "--tag", args.tag, "--methods", f'"{args.methods}"']
        + ["--append"] * args.append
    )
    result = {"run": str(args.run.name), "dataset": data.dataset.name, "cpu_threads": 1, "models": rows}
    if args.append:
        result = json.loads(out.read_text())
        if result["run"] != str(args.run.name):
            raise SystemExit(f"{out}: measured on run {result['run']}, not {args.run.name}")
        result["models"].update(rows)
        result.setdefault("commands", [result.pop("command")] if "command" in result else [])
    result["commands"] = [*result.get("commands", []), command]
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
