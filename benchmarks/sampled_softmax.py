"""Benchmark: the sampled softmax (logQ-corrected, `negatives: N`) against the full softmax, where both fit.

    .venv/bin/python benchmarks/sampled_softmax.py ml-100k --negatives 0 64 256 --seeds 0 1 2
    .venv/bin/python benchmarks/render.py sampled-softmax     # the table of BENCHMARKS.md

Trains the SASRec baseline (dim 64, 2 layers, max_len 50, early stopping on validation NDCG@10, patience 5
evaluations of every 2 epochs, at most 60 epochs) with the full softmax (0) and with each number of negatives,
for each seed; tests each once (full ranking, leave-one-out). Writes per-setting seed means with 95% intervals,
the paired test of each sampled setting against the full softmax (per-user NDCG@10 averaged over seeds), and the
seconds per training epoch to `benchmarks/results/sampled_softmax/<dataset>.json`. Resumable: finished (setting,
seed) pairs are kept in `<dataset>.partial.json` and not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"dim": 64, "n_layers": 2, "max_len": 50, "max_epochs": 60, "eval_every": 2, "patience": 5}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--negatives", type=int, nargs="+", default=[0, 64, 256])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    from distillrec.config import DatasetConfig, SplitConfig
    from distillrec.evaluate.ranking import evaluate
    from distillrec.evaluate.significance import paired_test, seed_summary
    from distillrec.models.sasrec import SASRec
    from distillrec.stages.data import prepare_data

    split = prepare_data(DatasetConfig(source=args.dataset), SplitConfig()).split
    out = ROOT / "benchmarks" / "results" / "sampled_softmax" / f"{args.dataset}.json"
    partial = out.with_suffix(".partial.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(partial.read_text()) if partial.exists() else {}
    for negatives in args.negatives:
        for seed in args.seeds:
            key = f"{negatives}-{seed}"
            if key in runs:
                continue
            model = SASRec(**MODEL, negatives=negatives, seed=seed, progress=False)
            started = time.perf_counter()
            model.fit(split.train, split.valid)
            seconds = time.perf_counter() - started
            test = evaluate(model, split.test_history(), split.test, ks=(10,))
            history = model.fit_result_.history
            runs[key] = {
                "test_ndcg10": test.summary["NDCG@10"],
                "per_user": test.per_user["NDCG@10"].tolist(),
                "best_epoch": model.fit_result_.best_epoch,
                "epochs": len(history),
                "epoch_seconds": float(np.mean([r["train_seconds"] for r in history])),
                "fit_seconds": seconds,
            }
            partial.write_text(json.dumps(runs))
            print(
                f"negatives {negatives} seed {seed}: test NDCG@10 {runs[key]['test_ndcg10']:.4f}", flush=True
            )
    full = np.mean([runs[f"0-{s}"]["per_user"] for s in args.seeds], axis=0) if 0 in args.negatives else None
    rows = {}
    for negatives in args.negatives:
        done = [runs[f"{negatives}-{s}"] for s in args.seeds]
        per_user = np.mean([r["per_user"] for r in done], axis=0)
        rows[str(negatives)] = {
            "test_ndcg10": seed_summary([r["test_ndcg10"] for r in done]),
            "epoch_seconds": float(np.mean([r["epoch_seconds"] for r in done])),
            "best_epoch": float(np.mean([r["best_epoch"] for r in done])),
            "vs_full": None if full is None or negatives == 0 else paired_test(per_user, full).to_json(),
        }
    result = {
        "command": f"benchmarks/sampled_softmax.py {args.dataset} --negatives "
        + " ".join(map(str, args.negatives))
        + " --seeds "
        + " ".join(map(str, args.seeds)),
        "dataset": args.dataset,
        "n_items": split.train.n_items,
        "model": MODEL,
        "cpu": platform.processor() or platform.machine(),
        "threads": os.cpu_count(),
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
