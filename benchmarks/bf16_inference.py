"""Benchmark: what bfloat16 autocast does to a trained teacher's inference, in quality and in time.

    .venv/bin/python benchmarks/bf16_inference.py ml-100k ~/.cache/distillrec/bench-teacher/ml-100k \\
        --out benchmarks/results/bf16_inference/ml-100k.json

The teacher is rebuilt from its folder (`metrics.json` hyperparameters; its finished checkpoint resumes
without training), then the test users are scored three ways with the same weights: in float32; under
`distillrec.train.loop.bf16_autocast` ("bf16": the network in bfloat16, the scoring head in float32, as the
models score); and with the head in bfloat16 too ("bf16_head", the design this replaced). Reported per
bf16 variant against float32: NDCG@10 and HR@10, the paired per-user NDCG@10 difference, how many users get the
same top 10 (as a set and in order), and seconds per 1,000 users, timed in alternation over `--rounds` rounds
(the median), with their ratio from the same run since this machine is shared. Full ranking over the whole
catalogue, as in evaluation. One torch thread unless OMP_NUM_THREADS says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.data.split import make_split  # noqa: E402
from distillrec.evaluate.ranking import evaluate  # noqa: E402
from distillrec.teachers.llm_enhanced_seq import LLMEnhancedSASRec  # noqa: E402
from distillrec.train.loop import bf16_autocast, cpu_bf16_supported  # noqa: E402


def load_teacher(dataset: str, folder: Path):
    """(teacher with its best weights, split), from a folder written by `distillrec teacher`."""
    manifest = json.loads((folder / "manifest.json").read_text())
    split_config = dict(manifest["config"]["split"])
    split = make_split(load_dataset(dataset).interactions, split_config.pop("protocol"), **split_config)
    metrics = json.loads((folder / "metrics.json").read_text())
    params = metrics.get("models", metrics)["teacher"]["best_hparams"]  # a results file, or the older shape
    checkpoint_dir = folder / "checkpoints" / "teacher"
    if not (checkpoint_dir / "last.pt").exists():
        raise SystemExit(f"{checkpoint_dir}: no checkpoint; this benchmark does not train teachers")
    params.update(progress=False, checkpoint_dir=checkpoint_dir)
    teacher = LLMEnhancedSASRec(np.load(folder / "text_embeddings.npy"), **params)
    teacher.fit(split.train, split.valid)  # a finished checkpoint: loads the best weights, trains nothing
    return teacher, split


class Bf16Head:
    """A SASRec-family model scored entirely in bfloat16, its head included."""

    def __init__(self, model) -> None:
        self.model = model

    def score(self, users: np.ndarray, history) -> np.ndarray:
        with torch.inference_mode(), bf16_autocast():
            return self.model.module_.logits(self.model._encode(users, history)).float().numpy()


def compare(fp32, other, seconds_per_1000: float) -> dict:
    """`other` (a bf16 variant's RankingResult) against `fp32`, on the same users."""
    diff = other.per_user["NDCG@10"] - fp32.per_user["NDCG@10"]
    top_a, top_b = fp32.top_items[:, :10], other.top_items[:, :10]
    return {
        "NDCG@10": other.summary["NDCG@10"],
        "HR@10": other.summary["HR@10"],
        "ndcg10_diff_mean": float(diff.mean()),
        "ndcg10_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
        "users_with_changed_ndcg10": float(np.mean(diff != 0)),
        "same_top10_set": float(np.mean([set(a) == set(b) for a, b in zip(top_a, top_b, strict=True)])),
        "same_top10_order": float(np.mean((top_a == top_b).all(axis=1))),
        "seconds_per_1000_users": seconds_per_1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="teacher folder written by `distillrec teacher`")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per precision (median kept)")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args()
    if not cpu_bf16_supported():
        raise SystemExit("this CPU has no native bfloat16: nothing to measure (autocast would be emulated)")

    teacher, split = load_teacher(args.dataset, args.teacher.expanduser())
    history, targets = split.test_history(), split.test
    variants = {"fp32": teacher, "bf16": teacher, "bf16_head": Bf16Head(teacher)}
    results, seconds = {}, {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, model in variants.items():
            start = time.perf_counter()
            with bf16_autocast(name == "bf16"):
                results[name] = evaluate(model, history, targets)
            seconds[name].append(time.perf_counter() - start)

    fp32 = results["fp32"]
    per_1000 = {name: 1000 * float(np.median(s)) / len(fp32.users) for name, s in seconds.items()}
    result = {
        "dataset": args.dataset,
        "teacher_dir": str(args.teacher),
        "test_users": len(fp32.users),
        "n_items": split.train.n_items,
        "torch_threads": torch.get_num_threads(),
        "fp32": {
            "NDCG@10": fp32.summary["NDCG@10"],
            "HR@10": fp32.summary["HR@10"],
            "seconds_per_1000_users": per_1000["fp32"],
        },
        **{
            name: compare(fp32, results[name], per_1000[name])
            | {"speedup_vs_fp32": per_1000["fp32"] / per_1000[name]}
            for name in ("bf16", "bf16_head")
        },
        "seconds_all_rounds": seconds,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
