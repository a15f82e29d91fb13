"""Benchmark: seconds per training epoch of the teacher and the SASRec student, fp32 vs bf16 autocast, random
batches vs length-bucketed batches (`distillrec.train.batches`).

    .venv/bin/python benchmarks/train_speed.py --dataset ml-1m --batches 16 --rounds 2 \
        --out benchmarks/results/train_speed/ml-1m.json

For each model, the four settings are timed on the same `--batches` training batches per round, round after
round in one process, so their ratios are measured under the same load (the absolute seconds depend on what
else the machine runs). An epoch's time is extrapolated from the mean seconds per batch times the epoch's
number of batches (length buckets hold a budget of positions, so their count differs a little). The teacher reads the
real item-text embeddings when `--teacher DIR` is given, else random ones of the same shape (the cost is the
same). What the settings do to quality is measured by training to convergence (see BENCHMARKS.md), not here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument(
        "--batches", type=int, default=16, help="training batches timed per setting and round"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--teacher", type=Path, help="teacher folder whose text_embeddings.npy to read")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from distillrec.config import TeacherConfig
    from distillrec.data.dataset import load_dataset
    from distillrec.data.split import make_split
    from distillrec.layers.sasrec import PAD, SASRecModule, next_item_loss, training_windows
    from distillrec.students.base import CrossEntropy
    from distillrec.students.sasrec import SASRecStudentModule
    from distillrec.teachers.llm_enhanced_seq import TextItemEmbedding
    from distillrec.train.batches import batch_rows
    from distillrec.train.loop import cpu_bf16_supported

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset)
    train = make_split(ds.interactions, "leave_one_out").train
    inputs, targets = training_windows(train, args.max_len)
    lengths = (inputs != PAD).sum(axis=1)
    if args.teacher:
        text = np.load(args.teacher / "text_embeddings.npy")
    else:
        text = np.random.default_rng(0).standard_normal((train.n_items, 384)).astype(np.float32)
    has_ids = train.item_counts() > 0

    t = TeacherConfig()  # the defaults of `distillrec teacher`

    def teacher() -> torch.nn.Module:
        embedding = TextItemEmbedding(text, t.dim, t.adapter_hidden, t.dropout, t.id_init, has_ids=has_ids)
        return SASRecModule(train.n_items, t.dim, t.n_layers, t.n_heads, args.max_len, t.dropout, embedding)

    def student() -> torch.nn.Module:  # the benchmarked student of BENCHMARKS.md section 4
        return SASRecStudentModule(train.n_items, 32, 1, 1, args.max_len, 0.2)

    student_loss = CrossEntropy().bind(train, None)  # the students' plain objective

    def loss(module, batch):
        if isinstance(module, SASRecStudentModule):
            ids, tgt = batch
            return student_loss(
                module, {"inputs": ids, "targets": tgt, "users": torch.zeros(len(ids), dtype=torch.int64)}
            )
        return next_item_loss(module, batch)

    settings = [(bf16, bucket) for bf16 in (False, True) for bucket in (False, True)]
    result = {
        "dataset": args.dataset,
        "windows": len(inputs),
        "mean_window": float(lengths.mean()),
        "max_len": args.max_len,
        "threads": args.threads,
        "batches_timed": args.batches,
        "rounds": args.rounds,
        "bf16_native": cpu_bf16_supported(),
        "models": {},
    }
    for name, build in (("teacher", teacher), ("student", student)):
        torch.manual_seed(0)
        module = build()
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        seconds: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            for bf16, bucket in settings:
                key = f"{'bf16' if bf16 else 'fp32'}/{'bucketed' if bucket else 'random'}"
                rng = np.random.default_rng(round_)
                groups = batch_rows(rng.permutation(len(inputs)), 128, lengths if bucket else None, rng)
                start = time.perf_counter()
                for rows in groups[: args.batches]:
                    width = int(lengths[rows].max())
                    batch = (
                        torch.from_numpy(inputs[rows, -width:]),
                        torch.from_numpy(targets[rows, -width:]),
                    )
                    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
                        value = loss(module, batch)
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                per_batch = (time.perf_counter() - start) / min(args.batches, len(groups))
                seconds.setdefault(key, []).append(per_batch * len(groups))  # this epoch's batches
        per_epoch = {k: float(np.mean(v)) for k, v in seconds.items()}
        base = per_epoch["fp32/random"]
        result["models"][name] = {
            "params": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "seconds_per_epoch": {k: round(v, 1) for k, v in per_epoch.items()},
            "speedup_vs_fp32_random": {k: round(base / v, 2) for k, v in per_epoch.items()},
        }
        print(name, json.dumps(result["models"][name]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
