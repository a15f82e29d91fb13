"""Benchmark: how well an item placed by its text alone (`POST /items`) ranks, against its learned vector.

    .venv/bin/python benchmarks/new_items.py runs/quickstart-<time> --tag ml-100k-quickstart
    .venv/bin/python benchmarks/render.py new-items      # the table of BENCHMARKS.md

`distillrec serve` places a new item at the vector of the known item whose text is nearest (`serve/placement.py`).
This measures that placement on a run's KD student and test users: the items are cut into 5 folds; each fold is
placed from the other 4 (as if its items had been posted by text), and every test user's target is ranked (full
catalogue, the user's history excluded, ties against the target) with its own vector replaced by the placed one
while every other item keeps its learned vector. Compared: the learned vector (the model as trained), the served
placement, a ridge map from text vectors to item vectors (at the median item length, and at the map's own
length), the mean item vector (a placement that knows nothing of the item), and the text-only model's rank of the
target (cosine of its text to the user's history, `TextSimilarity`). Caveat: the user vectors were trained with every item in the catalogue, so this
isolates the placement of one item; a retrained model without the items is not measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import distillrec
from distillrec.evaluate.metrics import hit_rate, ndcg
from distillrec.models.text_similarity import TextSimilarity
from distillrec.serve.placement import NearestPlacement, RidgePlacement
from distillrec.stages.data import read_prepared

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "new_items"


def metrics(ranks: np.ndarray) -> dict:
    """HR@10, NDCG@10 (the evaluation's definitions) and the median of 1-based ranks, one target a user."""
    ranks = np.asarray(ranks, dtype=np.float64)[:, None]  # (n_users, 1)
    return {
        "HR@10": float(hit_rate(ranks, 10).mean()),
        "NDCG@10": float(ndcg(ranks, np.ones(len(ranks), dtype=np.int64), 10).mean()),
        "median_rank": float(np.median(ranks)),
    }


def target_rank(scores: np.ndarray, seen: np.ndarray, target: int, target_score: float | None = None) -> int:
    """1-based rank the target takes with `target_score` (default: its own score) among `scores`, the `seen`
    items left out, ties counted against it (as the evaluation counts them)."""
    scores = scores.copy()
    target_score = scores[target] if target_score is None else target_score
    scores[seen] = -np.inf
    scores[target] = -np.inf
    return int(1 + np.sum(scores >= target_score))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run folder of `distillrec run`")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--student", help="the student folder under students/ (default: the first)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    student = args.student or sorted(p.name for p in (args.run / "students").iterdir() if p.is_dir())[0]
    saved = distillrec.load(args.run / "students" / student / "model")
    split = read_prepared(args.run / "data").split
    text = np.load(args.run / "teacher" / "text_embeddings.npy").astype(np.float32)
    table = saved.model.item_embeddings()  # (n_items, dim)
    counts = split.train.item_counts()
    trained = np.flatnonzero(counts > 0)

    nearest, ridge, shrunk = (np.empty_like(table) for _ in range(3))
    fold_of = np.full(len(table), -1)  # -1: no training interaction, no learned vector to compare with
    fold_of[np.random.default_rng(args.seed).permutation(trained)] = np.arange(len(trained)) % args.folds
    for fold in range(args.folds):
        inside = fold_of == fold
        fit_rows = (fold_of >= 0) & ~inside
        nearest[inside] = (
            NearestPlacement().fit(text[fit_rows], table[fit_rows]).place(text[inside])
        )  # served
        placement = RidgePlacement().fit(text[fit_rows], table[fit_rows])
        ridge[inside], shrunk[inside] = placement.place(text[inside]), placement.mapped(text[inside])
    mean_vector = table[trained].mean(axis=0)

    history = split.test_history()
    users = np.unique(split.test.users)
    targets = np.array([split.test.sequence(u)[0] for u in users])
    keep = fold_of[targets] >= 0  # targets with a learned vector to compare against
    users, targets = users[keep], targets[keep]
    user_vectors = saved.model.encode(users, history)  # (n_users, dim)
    text_scores = TextSimilarity(text).fit(split.train).score(users, history)  # (n_users, n_items)

    placements = {
        "nearest known item by text (served)": nearest,
        "ridge map, median length": ridge,
        "ridge map, its own length": shrunk,
        "mean vector": np.broadcast_to(mean_vector, table.shape),
    }
    ranks: dict[str, list[int]] = {"learned vector": [], **{name: [] for name in placements}, "text only": []}
    for u, user, target in zip(range(len(users)), users, targets, strict=True):
        seen = history.sequence(user)
        scores = table @ user_vectors[u]
        ranks["learned vector"].append(target_rank(scores, seen, target))
        for name, placed in placements.items():
            ranks[name].append(target_rank(scores, seen, target, float(placed[target] @ user_vectors[u])))
        ranks["text only"].append(target_rank(text_scores[u], seen, target))
    popular = np.argsort(-counts, kind="stable")[: int(0.2 * len(trained))]
    tail = ~np.isin(targets, popular)
    result = {
        "command": "benchmarks/new_items.py " + " ".join(sys.argv[1:]),
        "run": args.run.name,
        "student": student,
        "users": int(len(users)),
        "tail_users": int(tail.sum()),
        "items": int(len(table)),
        "rows": {
            name: {"all": metrics(np.array(r)), "tail": metrics(np.array(r)[tail])}
            for name, r in ranks.items()
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["rows"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
