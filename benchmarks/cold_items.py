"""Diagnostic: how a teacher folder ranks cold items (items with no training interaction), from its exports only.

    .venv/bin/python benchmarks/cold_items.py amazon-beauty ~/.cache/distillrec/bench-teacher/amazon-beauty \
        [--out benchmarks/results/cold_items/amazon-beauty.json]

For the users whose *validation* item is cold, the teacher's state after the training sequence
(`user_hidden.npy`, exactly what validation reads) scores every item through `item_embeddings.npy`; the training
items are excluded as in evaluation. Printed and written: the rank of the cold target (1 = best) under the teacher
and under the text alone (`TextSimilarity`, the `text_only` row), the share of those targets in the top 10 / 100 /
1000, and the length of the item vectors (cold vs trained items) and the cold items' scores relative to the
trained ones. One process, numpy only (the teacher is not rebuilt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distillrec.data.dataset import load_dataset
from distillrec.models.text_similarity import TextSimilarity
from distillrec.stages.teacher import read_teacher_folder


def _ranks(scores: np.ndarray, seen_rows: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """1-based rank of each row's target among the items not seen in training (ties count against it)."""
    ranks = np.empty(len(targets), dtype=np.int64)
    for r, (row, seen, target) in enumerate(zip(scores, seen_rows, targets, strict=True)):
        row = row.copy()
        row[seen] = -np.inf
        ranks[r] = int((row >= row[target]).sum())  # the target itself included
    return ranks


def _summary(ranks: np.ndarray) -> dict:
    return {
        "median_rank": float(np.median(ranks)),
        **{f"top{k}": float(np.mean(ranks <= k)) for k in (10, 100, 1000)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset")
    parser.add_argument("teacher", type=Path, help="teacher folder written by `distillrec teacher`")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args()

    try:
        _, split, _ = read_teacher_folder(args.teacher, load_dataset(args.dataset))
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    train, valid = split.train, split.valid
    counts = train.item_counts()
    cold = counts == 0
    users = valid.users[cold[valid.items]]
    targets = valid.items[cold[valid.items]]
    indptr, items = train.sequences()
    seen = [items[indptr[u] : indptr[u + 1]] for u in users]

    item_emb = np.load(args.teacher / "item_embeddings.npy")  # (n_items, dim)
    hidden = np.load(args.teacher / "user_hidden.npy", mmap_mode="r")[users]  # (n_cold_users, dim)
    teacher_scores = hidden @ item_emb.T  # (n_cold_users, n_items)
    text = TextSimilarity(np.load(args.teacher / "text_embeddings.npy")).fit(train)
    text_scores = text.score(users, train)

    norms = np.linalg.norm(item_emb, axis=1)
    trained_scores = np.where(cold[None, :], np.nan, teacher_scores)
    cold_scores = np.where(cold[None, :], teacher_scores, np.nan)
    result = {
        "dataset": args.dataset,
        "teacher_dir": str(args.teacher),
        "cold_items": int(cold.sum()),
        "users_with_a_cold_valid_item": len(users),
        "teacher": _summary(_ranks(teacher_scores, seen, targets)),
        "text_only": _summary(_ranks(text_scores, seen, targets)),
        "item_vector_norm": {
            "cold_mean": float(norms[cold].mean()),
            "trained_mean": float(norms[~cold].mean()),
        },
        "score_mean": {
            "cold_items": float(np.nanmean(cold_scores)),
            "trained_items": float(np.nanmean(trained_scores)),
            "cold_target": float(teacher_scores[np.arange(len(users)), targets].mean()),
        },
        "command": f"benchmarks/cold_items.py {args.dataset} {args.teacher}",
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
