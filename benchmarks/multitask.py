"""Benchmark: multi-task (CTR/CVR) distillation on impressions built from ratings (a stated proxy).

    .venv/bin/python benchmarks/multitask.py ml-100k --seeds 0 1 2 --tag ml-100k
    .venv/bin/python benchmarks/render.py multitask          # the table of BENCHMARKS.md

Runs `distillrec multitask DATASET --seeds ... --out WORK/TAG [OPTIONS]` (a text-aware ESMM teacher; ESMM
students with about 5% of its parameters trained alone, with one task's soft labels, with both tasks' soft labels,
and with both tasks' soft labels and within-user rankings; once per seed) and keeps its summary with the
command in `benchmarks/results/multitask/<tag>.json`. The work folder keeps every model: an interrupted run
continues where it stopped. Options after `--` go to the command (e.g. `-- --bottom shared`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tag", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/distillrec-multitask"))
    argv = sys.argv[1:]
    options = argv[argv.index("--") + 1 :] if "--" in argv else []  # for `distillrec multitask`
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    folder = args.work / args.tag
    command = [sys.executable, "-m", "distillrec", "multitask", args.dataset, "--out", str(folder)]
    command += ["--seeds", ",".join(map(str, args.seeds)), "--no-progress", *options]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run(command, check=True, env=env)
    summary = json.loads((folder / "multitask.json").read_text())
    shown = (
        f"benchmarks/multitask.py {args.dataset} --seeds {' '.join(map(str, args.seeds))} --tag {args.tag}"
    )
    summary["command"] = shown + (" -- " + " ".join(options) if options else "")
    out = ROOT / "benchmarks" / "results" / "multitask" / f"{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
