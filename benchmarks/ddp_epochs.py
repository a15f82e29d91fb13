"""Benchmark: seconds per training epoch in 1 process with 2 threads against 2 processes (torchrun, gloo) with 1
thread each, on the same 2 cores, for a teacher-sized SASRec and a student; with `--gpu`, 2 CPU threads against
a CUDA GPU (float32 and bf16).

    .venv/bin/python benchmarks/ddp_epochs.py ml-1m --epochs 2
    .venv/bin/python benchmarks/ddp_epochs.py ml-1m --epochs 2 --gpu     # on a machine with a GPU
    .venv/bin/python benchmarks/render.py ddp-epochs     # the table of BENCHMARKS.md

Each model trains `--epochs` epochs from the same seed (validation after each, on rank 0 only under torchrun),
once per setting; the epoch's training time (`train_seconds`: the steps, not the validation) and its whole time
are averaged over the epochs. Under torchrun each rank trains half of every global batch (same global batch
size, same number of steps). Writes `benchmarks/results/ddp_epochs/<dataset>.json` (`<dataset>-gpu.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "teacher-sized SASRec": {"kind": "sasrec", "dim": 64, "n_layers": 2, "max_len": 200},
    "student": {"kind": "student", "dim": 32, "n_layers": 1, "max_len": 200},
}


# (label, processes, threads per process, device, bf16)
CPU_SETTINGS = (("1 process x 2 threads", 1, 2, "cpu", False), ("2 processes x 1 thread", 2, 1, "cpu", False))
GPU_SETTINGS = (
    ("CPU, 2 threads", 1, 2, "cpu", False),
    ("CUDA", 1, 2, "cuda", False),
    ("CUDA, bf16", 1, 2, "cuda", True),
)


def worker(dataset: str, name: str, epochs: int, threads: int, device: str, bf16: bool, out: str) -> None:
    """One training run (in this process, or as one rank of torchrun); rank 0 writes the history to `out`."""
    from distillrec.config import DatasetConfig, SplitConfig
    from distillrec.models.sasrec import SASRec
    from distillrec.stages.data import prepare_data
    from distillrec.students.registry import make_student
    from distillrec.train import distributed

    distributed.init_from_env("cpu")
    split = prepare_data(DatasetConfig(source=dataset), SplitConfig()).split
    settings = {k: v for k, v in MODELS[name].items() if k != "kind"}
    settings.update(max_epochs=epochs, patience=epochs, num_threads=threads, progress=False, seed=0)
    settings.update(device=device, bf16=bf16)
    if MODELS[name]["kind"] == "sasrec":
        model = SASRec(**settings)
    else:
        model = make_student("sasrec", **settings)
    model.fit(split.train, split.valid)
    if distributed.is_main():
        Path(out).write_text(json.dumps(model.history_))
    distributed.close()


def _run(command: list[str], threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run(command, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--gpu", action="store_true", help="2 CPU threads against a CUDA GPU instead")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in MODELS:
            rows[name] = {}
            for label, processes, threads, device, bf16 in GPU_SETTINGS if args.gpu else CPU_SETTINGS:
                out = Path(scratch) / "history.json"
                script = [__file__, "worker", args.dataset, name, str(args.epochs), str(threads), device]
                script += [str(int(bf16)), str(out)]
                if processes == 1:
                    _run([sys.executable, *script], threads)
                else:
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        port = s.getsockname()[1]
                    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
                    _run(
                        [*launch, "--master-addr", "127.0.0.1", "--master-port", str(port), *script], threads
                    )
                history = json.loads(out.read_text())
                rows[name][label] = {
                    "train_seconds": float(np.mean([r["train_seconds"] for r in history])),
                    "seconds": float(np.mean([r["seconds"] for r in history])),
                    "valid_ndcg10": [r["valid_ndcg10"] for r in history],
                }
                print(name, label, rows[name][label], flush=True)
            first, *others = (rows[name][k]["train_seconds"] for k in list(rows[name]))
            rows[name]["speedup"] = {k: first / t for k, t in zip(list(rows[name])[1:], others, strict=True)}
    result = {
        "command": f"benchmarks/ddp_epochs.py {args.dataset} --epochs {args.epochs}" + " --gpu" * args.gpu,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "models": {name: {**MODELS[name]} for name in MODELS},
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results" / "ddp_epochs" / f"{args.dataset}{'-gpu' * args.gpu}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(
            sys.argv[2],
            sys.argv[3],
            int(sys.argv[4]),
            int(sys.argv[5]),
            sys.argv[6],
            sys.argv[7] == "1",
            sys.argv[8],
        )
    else:
        main()
