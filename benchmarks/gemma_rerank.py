"""Benchmark: what the generative LLM (Gemma-3-270M) adds when it re-ranks the teacher's top-20, and its cost.

    .venv/bin/python benchmarks/gemma_rerank.py ml-100k --teacher DIR --users 100      # needs '.[gemma]'

For a seeded sample of test users: the candidates are the teacher's top-20 of the full ranking (history
masked; `test_top_items.npz` in the teacher folder), the prompt is the user's last 10 items of train + valid
(`LLMScorer`'s candidate log-likelihood, mean per token). Three orderings of the same 20 candidates are scored
with NDCG@10 / HR@10 against the held-out test item:
- `teacher`: the teacher's own order (equal to its full-ranking NDCG@10 on these users);
- `llm`: Gemma's order alone;
- `fused`: reciprocal-rank fusion of the two, 1 / (60 + rank_teacher) + 1 / (60 + rank_llm) (Cormack et al. 2009).
The differences come with a paired bootstrap interval over the sampled users. Cost: wall seconds per user of the
scoring alone (model load reported apart), bf16 and the given thread count. Output:
`benchmarks/results/gemma_rerank/<dataset>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILLREC_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from distillrec.data.dataset import load_dataset  # noqa: E402
from distillrec.data.split import make_split  # noqa: E402
from distillrec.evaluate.significance import bootstrap_diff_ci  # noqa: E402
from distillrec.teachers.llm_scorer import LLMScorer  # noqa: E402

RRF_K = 60


def ndcg_hr_at_10(order: np.ndarray, target: int) -> tuple[float, float]:
    """order: candidate ids best first -> (NDCG@10, HR@10) of the single held-out target."""
    hits = np.flatnonzero(order[:10] == target)
    if len(hits) == 0:
        return 0.0, 0.0
    return float(1.0 / np.log2(hits[0] + 2)), 1.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("--teacher", type=Path, required=True, help="folder written by `distillrec teacher`")
    parser.add_argument("--users", type=int, default=100, help="test users sampled (seeded)")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="causal LM name or path (default: Gemma-3-270M)")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset)
    split = make_split(dataset.interactions, "leave_one_out")
    history = split.test_history()
    texts = (args.teacher / "item_texts.txt").read_text(encoding="utf-8").split("\n")[: dataset.n_items]
    if len(texts) != dataset.n_items:  # one line per item (stages/teacher.py writes them so)
        raise SystemExit(f"{args.teacher}/item_texts.txt has {len(texts)} lines for {dataset.n_items} items")
    top = np.load(args.teacher / "test_top_items.npz")
    if top["top_items"].shape[1] < args.candidates:
        raise SystemExit(f"{args.teacher}/test_top_items.npz holds only the top-{top['top_items'].shape[1]}")
    target_of = dict(zip(split.test.users.tolist(), split.test.items.tolist(), strict=True))
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(top["users"]), size=min(args.users, len(top["users"])), replace=False))

    scorer_args = {"num_threads": args.threads, "progress": False}
    if args.model:
        scorer_args["model"] = args.model
    scorer = LLMScorer(**scorer_args)
    start = time.perf_counter()
    scorer.load()
    load_seconds = time.perf_counter() - start

    per_user = {"teacher": [], "llm": [], "fused": []}
    hits = {"teacher": [], "llm": [], "fused": []}
    seconds = []
    for row in rows:
        user = int(top["users"][row])
        candidates = top["top_items"][row, : args.candidates].astype(np.int64)
        past = [texts[i] for i in history.sequence(user)]
        start = time.perf_counter()
        llm_scores = scorer.score(past, [texts[i] for i in candidates])
        seconds.append(time.perf_counter() - start)
        llm_rank = np.empty(len(candidates), dtype=np.int64)
        llm_rank[np.argsort(-llm_scores, kind="stable")] = np.arange(len(candidates))
        fused = 1.0 / (RRF_K + np.arange(len(candidates))) + 1.0 / (RRF_K + llm_rank)
        orders = {
            "teacher": candidates,
            "llm": candidates[np.argsort(llm_rank, kind="stable")],
            "fused": candidates[np.argsort(-fused, kind="stable")],
        }
        for name, order in orders.items():
            n, h = ndcg_hr_at_10(order, target_of[user])
            per_user[name].append(n)
            hits[name].append(h)
        print(f"user {user}: {seconds[-1]:.2f} s", flush=True)

    base = np.array(per_user["teacher"])
    result = {
        "dataset": args.dataset,
        "teacher_folder": str(args.teacher),
        "users": len(rows),
        "candidates": args.candidates,
        "model": repr(scorer),
        "threads": args.threads,
        "load_seconds": round(load_seconds, 2),
        "seconds_per_user": {"mean": float(np.mean(seconds)), "median": float(np.median(seconds))},
        "command": "benchmarks/gemma_rerank.py " + " ".join(sys.argv[1:]),
    }
    for name in per_user:
        values = np.array(per_user[name])
        row = {"NDCG@10": float(values.mean()), "HR@10": float(np.mean(hits[name]))}
        if name != "teacher":
            low, high = bootstrap_diff_ci(values, base)
            row.update(diff_vs_teacher=float(values.mean() - base.mean()), diff_ci_low=low, diff_ci_high=high)
        result[name] = row
    out = ROOT / "benchmarks" / "results" / "gemma_rerank" / f"{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
