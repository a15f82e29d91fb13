"""Benchmark: plain transfer without KD, a target student that starts from the source's student, beside KD transfer.

    .venv/bin/python benchmarks/transfer.py SOURCE_TEACHER amazon-health --fractions 0.1 --tag T   # first
    .venv/bin/python benchmarks/transfer_init.py SOURCE_STUDENT_MODEL amazon-health --fractions 0.1 --tag T
    .venv/bin/python benchmarks/render.py transfer                  # its column in the transfer table

For each fraction f of `benchmarks/transfer.py`'s result `<tag>.json` (its runs kept under `--work`): the target
prepared with the same share of users (the same draw), and a student of the source student's architecture whose
weights start at the source student's: every layer copied, and each target item's row of the item table the row
of its nearest source item by text (the source teacher's encoder; the vectors `transfer.py`'s carried-over
teacher folder keeps). It is then trained on the target with cross-entropy alone (no teacher), one run per seed,
with the budget of `transfer.py`'s students (`--student-args` as there). Kept per fraction: test NDCG@10 (mean
and interval over seeds), the tail slice, and the paired t-test over users against the same fraction's student
alone (`student_plain`, per-user NDCG@10 averaged over seeds). Added to `benchmarks/results/transfer/<tag>.json`
under `source_init` (a fraction already there is not run again).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import distillrec  # noqa: E402
from distillrec.config import DatasetConfig, SplitConfig  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.evaluate.significance import paired_test, seed_summary  # noqa: E402
from distillrec.evaluate.slices import slice_summaries  # noqa: E402
from distillrec.manifest import dataset_fingerprint  # noqa: E402
from distillrec.stages.data import prepare_data  # noqa: E402
from distillrec.stages.transfer import nearest_items  # noqa: E402
from distillrec.students.registry import make_student  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TABLE = "item_embedding.embedding.weight"  # the SASRec student's item table (row 0: padding)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source_student", type=Path, help="the source student's model folder (sasrec)")
    parser.add_argument("target")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tag", required=True, help="the tag of benchmarks/transfer.py's result")
    parser.add_argument("--work", type=Path, default=Path("/tmp/distillrec-transfer"))
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "transfer" / f"{args.tag}.json"
    result = json.loads(out.read_text())
    source = distillrec.load(args.source_student).model
    source_text = np.load(Path(result["source"]) / "text_embeddings.npy")
    budget = _budget(result["student"])
    for fraction in args.fractions:
        row = result["fractions"][str(fraction)]
        if "source_init" in row:
            continue
        folder = args.work / args.tag / str(fraction)
        data = prepare_data(DatasetConfig(source=args.target, user_fraction=fraction), SplitConfig())
        prepared = json.loads((folder / "teacher" / "manifest.json").read_text())["dataset"]
        if prepared["fingerprint"] != dataset_fingerprint(data.dataset):  # users paired by index below
            raise SystemExit(f"{folder}: its data is not the data prepared here; the runs differ")
        nearest, _ = nearest_items(np.load(folder / "teacher" / "text_embeddings.npy"), source_text)
        split = data.split
        per_seed, tails = [], []
        for seed in args.seeds:
            student = _started_from(source, nearest, split.train, seed, budget)
            student.fit(split.train, split.valid, warm_start=True)
            test = evaluate(student, split.test_history(), split.test)
            per_seed.append(test)
            tails.append(
                slice_summaries(test, split.test, split.train).get("tail", {}).get("NDCG@10", np.nan)
            )
            print(f"fraction {fraction} seed {seed}: test NDCG@10 {test.summary['NDCG@10']:.4f}", flush=True)
        plain = np.load(folder / "per_user.npz")
        users = per_seed[0].users
        mine = np.mean([r.per_user["NDCG@10"] for r in per_seed], axis=0)
        order = {u: i for i, u in enumerate(plain["users"].tolist())}
        theirs = plain["student_plain"].mean(axis=0)[[order[u] for u in users.tolist()]]
        test = paired_test(mine, theirs)
        row["source_init"] = seed_summary([r.summary["NDCG@10"] for r in per_seed])
        row["source_init_vs_plain"] = test.to_json()
        row["tail_source_init"] = float(np.mean(tails))
        out.write_text(json.dumps(result, indent=1))
        print(f"fraction {fraction}: {row['source_init']} vs plain {test.to_json()}", flush=True)
    result["source_init_command"] = (
        f"benchmarks/transfer_init.py SOURCE_STUDENT {args.target} --fractions "
        + " ".join(map(str, args.fractions))
        + f" --seeds {' '.join(map(str, args.seeds))} --tag {args.tag}"
    )
    result["source_student"] = str(args.source_student)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


def _budget(arguments: list[str]) -> dict:
    """The training budget in transfer.py's `--student-args` ("--max-epochs 40 --lr 0.003 ..."); the other
    options (the width, ...) are the source student's own."""
    names = {"--lr": ("lr", float), "--max-epochs": ("max_epochs", int), "--patience": ("patience", int)}
    budget = {}
    for flag, value in zip(arguments, arguments[1:], strict=False):
        if flag in names:
            key, kind = names[flag]
            budget[key] = kind(value)
    return budget


def _started_from(source, nearest: np.ndarray, train, seed: int, budget: dict):
    """A student of the source's settings over the target's items, its weights the source's (see the docstring)."""
    params = {k: v for k, v in source.get_params().items() if k not in ("checkpoint_dir",)}
    student = make_student("sasrec", **{**params, **budget, "seed": seed, "progress": False, "device": "cpu"})
    torch.manual_seed(seed)
    module = student._build_module(train)
    state = {k: v for k, v in source.module_.state_dict().items() if k != TABLE}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if set(missing) != {TABLE} or unexpected:
        raise ValueError(f"the source student does not fit: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        table = source.module_.state_dict()[TABLE]
        module.item_embedding.embedding.weight[1:] = table[torch.from_numpy(nearest + 1)]
    student.module_ = module
    return student


if __name__ == "__main__":
    main()
