"""Benchmark: the training loss's forward + backward, plain full-softmax cross-entropy vs `softmax_ce` (chunked).

    .venv/bin/python benchmarks/softmax_ce.py --datasets ml-100k,ml-latest-small,ml-1m,amazon-beauty \\
        --out benchmarks/results/softmax_ce.json

The plain form is `F.cross_entropy(h @ E.T, t)`, which writes the (positions x items) logits; `softmax_ce`
(`distillrec.layers.softmax_ce`) never does. Shapes are a student's training batch on each dataset: `--batch-size`
windows of at most `--max-len` positions, the positions being the mean per batch over the real training split
(leave-one-out), `--dim` wide, over the dataset's whole catalogue. The values are random (the cost does not
depend on them). Both forms, in float32 and under bf16 autocast, are timed round after round in one process, so
their ratios are measured under the same load; the absolute seconds depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.data.split import make_split  # noqa: E402
from distillrec.layers.softmax_ce import softmax_ce  # noqa: E402
from distillrec.train.loop import bf16_autocast, cpu_bf16_supported  # noqa: E402


def plain_ce(hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy((hidden @ table.T).float(), targets)


FORMS = {"plain": plain_ce, "chunked": softmax_ce}


def positions_per_batch(dataset: str, batch_size: int, max_len: int) -> tuple[int, int]:
    """(mean positions with a target per training batch, n_items) on the dataset's leave-one-out split."""
    split = make_split(load_dataset(dataset).interactions, "leave_one_out")
    lengths = np.bincount(split.train.users, minlength=split.train.n_users)
    positions = np.minimum(np.maximum(lengths - 1, 0), max_len)  # a window's positions with a next item
    n_batches = -(-split.train.n_users // batch_size)
    return round(positions.sum() / n_batches), split.train.n_items


def time_step(form, hidden, table, targets, bf16: bool, steps: int) -> float:
    """Mean seconds of one forward + backward."""
    h, e = hidden.clone().requires_grad_(True), table.clone().requires_grad_(True)
    seconds = []
    for _ in range(steps + 1):  # the first is a warm-up
        start = time.perf_counter()
        with bf16_autocast() if bf16 else nullcontext():
            loss = form(h, e, targets)
        loss.backward()
        seconds.append(time.perf_counter() - start)
        h.grad = e.grad = None
    return float(np.mean(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small,ml-1m,amazon-beauty")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per form and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = [(name, bf16) for bf16 in (False, True) for name in FORMS]
    if not cpu_bf16_supported():
        print("this CPU has no fast bfloat16: timing float32 only")
        settings = [s for s in settings if not s[1]]
    rows = []
    for dataset in args.datasets.split(","):
        n, n_items = positions_per_batch(dataset, args.batch_size, args.max_len)
        g = torch.Generator().manual_seed(0)
        hidden = torch.randn(n, args.dim, generator=g)
        table = torch.randn(n_items, args.dim, generator=g) * args.dim**-0.5
        targets = torch.randint(0, n_items, (n,), generator=g)
        times: dict[tuple[str, bool], list[float]] = {s: [] for s in settings}
        for _ in range(args.rounds):
            for name, bf16 in settings:
                times[name, bf16].append(time_step(FORMS[name], hidden, table, targets, bf16, args.steps))
        for bf16 in sorted({b for _, b in settings}):
            plain, chunked = np.mean(times["plain", bf16]), np.mean(times["chunked", bf16])
            row = {
                "dataset": dataset,
                "positions": n,
                "n_items": n_items,
                "dim": args.dim,
                "bf16": bf16,
                "plain_s": round(float(plain), 4),
                "chunked_s": round(float(chunked), 4),
                "speedup": round(float(plain / chunked), 2),
                "plain_logits_mb": round(n * n_items * 4 / 2**20),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"command": "benchmarks/softmax_ce.py " + " ".join(sys.argv[1:]), "threads": args.threads}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
