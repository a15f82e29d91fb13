"""How much rarer the test targets are than the validation targets, on each dataset's leave-one-out split.

    .venv/bin/python benchmarks/target_drift.py ml-100k ml-latest-small ml-1m amazon-beauty amazon-health
    .venv/bin/python benchmarks/render.py target-drift

A user's validation target is their second-to-last item and their test target their last, so the test targets
come later in time than the validation ones. Models that learn one vector per item are trained on the same
training interactions for both, so at test time they rank items one step further from what they saw; the
text-only model reads item text and does not age. This script measures the shift from the data alone (no
model): for the validation and the test targets, the share that falls on head, tail and cold items
(`evaluate/slices.item_groups`, by training interaction count) and the median training count of a target; and
the validation targets' shares weighted by `evaluate/drift.drift_weights`, the test's mix as predicted from the
training histories one step earlier (no test item read).
Writes `benchmarks/results/target_drift.json` (every dataset named, each run anew).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402

from distillrec.config import DatasetConfig, SplitConfig  # noqa: E402
from distillrec.data.interactions import Interactions  # noqa: E402
from distillrec.evaluate.drift import drift_weights  # noqa: E402
from distillrec.evaluate.slices import item_groups  # noqa: E402
from distillrec.stages.data import prepare_data  # noqa: E402


def target_mix(targets: Interactions, train: Interactions, weights: np.ndarray | None = None) -> dict:
    """The share of `targets`' interactions on each item group of `train`, and their median training count;
    with `weights` ((n_users,), `evaluate/drift.drift_weights`) the shares count each target with its user's
    weight (the median stays unweighted)."""
    coo = targets.user_items.tocoo()
    items = coo.col
    w = None if weights is None else weights[coo.row]
    counts = train.item_counts()
    groups = item_groups(train)
    return {
        "targets": int(len(items)),
        **{f"{name}_share": float(np.average(mask[items], weights=w)) for name, mask in groups.items()},
        "median_train_count": float(np.median(counts[items])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="+")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "target_drift.json"
    result: dict = {}
    for name in args.datasets:
        split = prepare_data(DatasetConfig(source=name), SplitConfig()).split
        result[name] = {
            "valid": target_mix(split.valid, split.train),
            "test": target_mix(split.test, split.train),
            "valid_drift_weighted": target_mix(
                split.valid, split.train, drift_weights(split.train, split.valid)
            ),
        }
        valid, test = result[name]["valid"], result[name]["test"]
        print(
            f"{name}: head share {valid['head_share']:.3f} -> {test['head_share']:.3f}, median training count "
            f"{valid['median_train_count']:g} -> {test['median_train_count']:g}",
            flush=True,
        )
    record = {"datasets": result, "command": "benchmarks/target_drift.py " + " ".join(sys.argv[1:])}
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
