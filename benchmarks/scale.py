"""Benchmark: wall time and peak memory of the pipeline's steps against data size, on synthetic data.

    .venv/bin/python benchmarks/scale.py --sizes 0.1M 1M 3M 10M
    .venv/bin/python benchmarks/render.py scale     # the table of BENCHMARKS.md

For each size (users x items x interactions: 0.1M = 10K x 5K x 100K, 1M = 100K x 20K x 1M, 3M = 300K x 50K x 3M,
10M = 1M x 100K x 10M), each step runs in its own process (its peak RSS is that process's, read by `wait4`; its
seconds are the step's own, without Python's start-up):

- `synth`: `distillrec data synth` (`data/synth.py`);
- `data`: the data stage (read the parquet files, map ids, drop repeats, split leave-one-out, write the folder);
- `evaluate`: MostPop scored and ranked over the whole catalogue for every test user (full-ranking evaluation;
  the scoring of other models adds its own cost to this ranking);
- `encode`: all-MiniLM-L6-v2 over every item's text;
- `teacher_epoch`: one training epoch of the teacher (dim 64, 2 layers, max_len 50) with the sampled softmax
  (`negatives: 256`; the full softmax over 100K items does not fit 2 cores' time), no validation;
- `export`: the teacher's top-50 soft labels for every training position (sizes up to `--export-up-to`: its cost
  is one catalogue-wide scoring per position).

Results go to `benchmarks/results/scale/<cpu>.json` as each step ends; a finished step is not run again.
Working files (the synthetic data, prepared folders, the teacher) go to `--work` (default `/tmp/distillrec-scale`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "0.1M": (10_000, 5_000, 100_000),
    "1M": (100_000, 20_000, 1_000_000),
    "3M": (300_000, 50_000, 3_000_000),
    "10M": (1_000_000, 100_000, 10_000_000),
}
STEPS = ("synth", "data", "evaluate", "encode", "teacher_epoch", "export")
TEACHER = {"dim": 64, "n_layers": 2, "n_heads": 2, "max_len": 50, "negatives": 256, "max_epochs": 1}


def step(name: str, size: str, work: Path) -> dict:
    """Run one step in this process; returns what it measured (its own seconds and what it made)."""
    import numpy as np

    from distillrec.config import DatasetConfig, SplitConfig
    from distillrec.stages.data import prepare_data, read_prepared

    users, items, interactions = SIZES[size]
    folder, prepared = work / size / "synth", work / size / "data"
    started = time.perf_counter()
    info: dict = {}
    if name == "synth":
        from distillrec.data.synth import synthesize

        synthesize(users, items, interactions, folder)
    elif name == "data":
        data = prepare_data(DatasetConfig(source=str(folder)), SplitConfig(), prepared)
        info = {"users": data.dataset.n_users, "items": data.dataset.n_items, "train": len(data.split.train)}
    elif name == "evaluate":
        from distillrec.evaluate.ranking import evaluate
        from distillrec.models.mostpop import MostPop

        split = read_prepared(prepared).split
        started = time.perf_counter()
        model = MostPop().fit(split.train)
        info = {"NDCG@10": evaluate(model, split.test_history(), split.test, ks=(10,)).summary["NDCG@10"]}
    elif name == "encode":
        from distillrec.stages.teacher import item_texts
        from distillrec.teachers.text_encoder import TextEncoder

        texts, _ = item_texts(read_prepared(prepared).dataset, None)
        started = time.perf_counter()
        vectors = TextEncoder("all-MiniLM-L6-v2", progress=False).encode(texts)
        np.save(work / size / "text.npy", vectors)
        info = {"texts": len(texts)}
    elif name in ("teacher_epoch", "export"):
        import torch

        from distillrec.teachers.export import export_teacher
        from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec

        split = read_prepared(prepared).split
        teacher = LLMEnhancedSASRec(np.load(work / size / "text.npy"), progress=False, **TEACHER)
        state = work / size / "teacher.pt"
        started = time.perf_counter()
        if name == "teacher_epoch":
            teacher.fit(split.train)
            torch.save(teacher.module_.state_dict(), state)
            info = {"loss": teacher.history_[-1]["loss"]}
        else:
            teacher.module_ = teacher._build_module(split.train)
            teacher.module_.load_state_dict(torch.load(state))
            export_teacher(teacher, split.train, work / size / "export", {}, top_k=50, progress=False)
    return {"seconds": time.perf_counter() - started, **info}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--export-up-to", default="1M", choices=list(SIZES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/distillrec-scale"))
    args = parser.parse_args()
    cpu = (platform.processor() or platform.machine()).replace(" ", "_") or "cpu"
    out = ROOT / "benchmarks" / "results" / "scale" / f"{cpu}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = json.loads(out.read_text()) if out.exists() else {"steps": {}}
    command = f"benchmarks/scale.py --sizes {' '.join(args.sizes)} --steps {' '.join(args.steps)}"
    commands = [c for c in result.get("commands", []) if c != command] + [command]  # every run that filled it
    result.update(commands=commands, cores=os.cpu_count(), teacher=TEACHER)
    result.pop("command", None)
    limit = list(SIZES).index(args.export_up_to)
    for size in args.sizes:
        for name in args.steps:
            if name == "export" and list(SIZES).index(size) > limit:
                continue
            key = f"{size}/{name}"
            if key in result["steps"]:
                continue
            env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
            command = [sys.executable, __file__, "step", name, size, str(args.work)]
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
            output = process.stdout.read()
            _, status, usage = os.wait4(process.pid, 0)
            if status != 0:
                print(f"{key} failed (status {status})", flush=True)
                break
            measured = json.loads(output.strip().splitlines()[-1])
            result["steps"][key] = {**measured, "peak_rss_mb": usage.ru_maxrss / 1024}
            out.write_text(json.dumps(result, indent=1))
            print(key, result["steps"][key], flush=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "step":
        print(json.dumps(step(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
    else:
        main()
