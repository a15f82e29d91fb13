"""Benchmark: every tuned baseline on every dataset, written to benchmarks/results/baselines/<dataset>/.

    .venv/bin/python benchmarks/baselines.py                       # all four datasets, all models
    .venv/bin/python benchmarks/baselines.py --datasets ml-100k --models ease,sasrec

Each dataset runs `distillrec baselines` (the same code users run) in a subprocess with
OPENBLAS_NUM_THREADS / OMP settings fixed, then `benchmarks/render.py` turns the metrics.json files into the
tables of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("ml-100k", "ml-latest-small", "ml-1m", "amazon-beauty")
MODELS = "mostpop,itemknn,ease,ials,bpr,sasrec"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "baselines")
    args = parser.parse_args()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    exe = str(Path(sys.executable).parent / "distillrec")
    for dataset in args.datasets.split(","):
        cmd = [exe, "baselines", dataset, "--out", str(args.out / dataset), "--models", args.models]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
