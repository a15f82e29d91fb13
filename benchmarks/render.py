"""Render the committed benchmark results (benchmarks/results/**/metrics.json) as Markdown tables.

    .venv/bin/python benchmarks/render.py baselines    # prints the baselines tables for BENCHMARKS.md

Numbers are only ever copied into BENCHMARKS.md from this script's output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("HR@10", "NDCG@10", "MRR", "Recall@20", "NDCG@20")


def baselines_table(dataset: str) -> str:
    path = RESULTS / "baselines" / dataset / "metrics.json"
    results = json.loads(path.read_text())
    lines = [
        f"| model | {' | '.join(COLUMNS)} | valid NDCG@10 | params | train s | best hyperparameters |",
        "|---|" + "---:|" * (len(COLUMNS) + 3) + "---|",
    ]
    best = max(row["test"]["NDCG@10"] for row in results.values())
    for name, row in results.items():
        cells = [f"{row['test'][c]:.4f}" for c in COLUMNS]
        if row["test"]["NDCG@10"] == best:
            cells[1] = f"**{cells[1]}**"
        hp = ", ".join(f"{k}={v}" for k, v in row["best_hparams"].items()) or "-"
        lines.append(
            f"| {name} | {' | '.join(cells)} | {row['valid']['NDCG@10']:.4f} | {row['params']:,} | "
            f"{row['train_seconds']:.1f} | {hp} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["baselines"])
    args = parser.parse_args()
    if args.what == "baselines":
        for folder in sorted((RESULTS / "baselines").iterdir()):
            if (folder / "metrics.json").exists():
                print(f"### {folder.name}\n\n{baselines_table(folder.name)}\n")


if __name__ == "__main__":
    main()
